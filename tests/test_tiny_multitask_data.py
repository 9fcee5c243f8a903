"""The tiny multitask dataset: exact word timings, the five sound classes, disjoint splits, loadable with datasets."""

import json
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import soundfile

from transformers_qwen_audio.data import SOUND_LABELS, WORDS, TinyMultitaskConfig, ensure_tiny_multitask, generate_sound
from transformers_qwen_audio.data.sounds import SAMPLING_RATE


SMALL = TinyMultitaskConfig(
    seed=3, num_voices=6, num_train_speech=30, num_validation_speech=8, num_test_speech=8,
    num_train_sounds=10, num_validation_sounds=5, num_test_sounds=5,
    num_unseen_voices=3, num_validation_unseen_speech=6, num_test_unseen_speech=6, num_validation_unseen_sounds=5,
    num_test_unseen_sounds=5, num_train_long=4, num_validation_long=2, num_test_long=2,
)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return ensure_tiny_multitask(tmp_path_factory.mktemp("data") / "tiny", SMALL)


def read_rows(folder, subset, split):
    return [json.loads(line) for line in (folder / subset / f"{split}.jsonl").read_text().splitlines()]


def test_vocabulary_is_the_issues_forty_words():
    assert len(WORDS) == len(set(WORDS)) == 40
    assert SOUND_LABELS == ("tone", "chirp", "white noise", "brown noise", "clicks")


def test_loads_with_datasets_like_a_hub_dataset(dataset_dir):
    from datasets import load_dataset

    speech = load_dataset(str(dataset_dir), "speech")
    sounds = load_dataset(str(dataset_dir), "sounds")
    long_speech = load_dataset(str(dataset_dir), "long_speech")
    assert {split: len(speech[split]) for split in speech} == {
        "train": 30, "validation": 8, "test": 8, "validation_unseen": 6, "test_unseen": 6}
    assert {split: len(sounds[split]) for split in sounds} == {
        "train": 10, "validation": 5, "test": 5, "validation_unseen": 5, "test_unseen": 5}
    assert {split: len(long_speech[split]) for split in long_speech} == {"train": 4, "validation": 2, "test": 2}
    assert set(long_speech["test"].column_names) >= {"audio", "text", "words", "utterances", "duration"}
    assert set(speech["train"].column_names) >= {"audio", "text", "words", "voice", "duration"}
    assert set(sounds["test"].column_names) >= {"audio", "label", "duration"}
    assert (dataset_dir / speech["test"][0]["audio"]).is_file()


def test_word_timings_are_exact_and_match_the_text(dataset_dir):
    for row in read_rows(dataset_dir, "speech", "train") + read_rows(dataset_dir, "speech", "test"):
        words = row["words"]
        assert " ".join(word["word"] for word in words) == row["text"]
        assert 2 <= len(words) <= 6 and all(word["word"] in WORDS for word in words)
        audio, rate = soundfile.read(dataset_dir / row["audio"], dtype="float32")
        assert rate == SAMPLING_RATE and abs(len(audio) / rate - row["duration"]) < 1e-3
        for word, following in zip(words, words[1:] + [None]):
            assert 0 < word["start"] < word["end"] <= row["duration"]
            if following is not None:
                assert word["end"] < following["start"]
            # Audible inside the word; the pauses between words hold at most the faint background noise.
            inside = audio[int(word["start"] * rate) : int(word["end"] * rate)]
            assert np.abs(inside).max() > 0.05
        before_first = audio[: int(words[0]["start"] * rate) - 1]
        assert np.sqrt(np.mean(before_first**2)) <= 0.011  # silence or a hiss of at most -40 dB


def test_each_occurrence_of_a_rendering_is_played_at_its_own_speed(dataset_dir):
    """`word_speed_range`: a voice's word recurs at several lengths (exact timings are checked above), within the
    range of speeds around the rendering's own length."""
    durations = {}
    for row in read_rows(dataset_dir, "speech", "train"):
        for word in row["words"]:
            durations.setdefault((row["voice"], word["word"]), []).append(word["end"] - word["start"])
    repeated = [lengths for lengths in durations.values() if len(lengths) >= 3]
    assert repeated, "no rendering occurs three times in the small dataset"
    for lengths in repeated:
        assert len({round(length, 3) for length in lengths}) > 1, lengths
        # Speeds within 1 +- r: lengths within [1/(1+r), 1/(1-r)] x the rendering's, so at most (1+r)/(1-r) apart.
        spread = SMALL.word_speed_range
        assert max(lengths) / min(lengths) <= (1 + spread) / (1 - spread) + 0.01, lengths


def test_held_out_renderings_and_sentences_do_not_occur_in_train(dataset_dir):
    train = read_rows(dataset_dir, "speech", "train")
    train_renderings = {(row["voice"], word["word"]) for row in train for word in row["words"]}
    train_sentences = {row["text"] for row in train}
    for split in ("validation", "test"):
        held_out = read_rows(dataset_dir, "speech", split)
        assert not {(row["voice"], word["word"]) for row in held_out for word in row["words"]} & train_renderings
        assert not {row["text"] for row in held_out} & train_sentences


def test_unseen_splits_hold_voices_training_never_uses(dataset_dir):
    from transformers_qwen_audio.data.tiny_multitask import (
        PITCHES, RATES, UNSEEN_PITCHES, UNSEEN_RATES)

    def voice_parts(key):  # accent+variant@rate/pitch
        name, rest = key.split("@")
        accent, variant = name.split("+")
        rate, pitch = (int(value) for value in rest.split("/"))
        return accent, variant, rate, pitch

    trained = {row["voice"] for split in ("train", "validation", "test") for row in read_rows(dataset_dir, "speech", split)}
    for accent, variant, rate, pitch in map(voice_parts, trained):
        assert RATES[0] <= rate <= RATES[1] and PITCHES[0] <= pitch <= PITCHES[1]
    trained_variants = {voice_parts(key)[1] for key in trained}
    trained_names = {key.split("@")[0] for key in trained}
    voices_per_split = {}
    for split in ("validation_unseen", "test_unseen"):
        rows = read_rows(dataset_dir, "speech", split)
        voices_per_split[split] = {row["voice"].split("@")[0] for row in rows}
        for row in rows:
            accent, variant, rate, pitch = voice_parts(row["voice"])
            assert variant not in trained_variants
            assert UNSEEN_RATES[0] <= rate <= UNSEEN_RATES[1] and UNSEEN_PITCHES[0] <= pitch <= UNSEEN_PITCHES[1]
            assert " ".join(word["word"] for word in row["words"]) == row["text"]
    assert not voices_per_split["validation_unseen"] & trained_names
    assert not voices_per_split["validation_unseen"] & voices_per_split["test_unseen"]
    unseen_sounds = read_rows(dataset_dir, "sounds", "test_unseen")
    assert {row["label"] for row in unseen_sounds} == set(SOUND_LABELS)
    assert all(4.0 <= row["duration"] <= 6.0 for row in unseen_sounds)  # the `unseen` settings' lengths


def test_long_recordings_join_utterances_of_their_split_and_keep_the_word_times(dataset_dir):
    for split in ("train", "test"):
        utterances = read_rows(dataset_dir, "speech", split)
        for row in read_rows(dataset_dir, "long_speech", split):
            assert SMALL.long_min_seconds <= row["duration"] <= SMALL.long_max_seconds
            assert row["text"] == " ".join(utterances[index]["text"] for index in row["utterances"])
            assert [word["word"] for word in row["words"]] == row["text"].split()
            ends = [word["end"] for word in row["words"]]
            assert all(a["start"] < a["end"] < b["start"] for a, b in zip(row["words"], row["words"][1:]))
            assert 0 < row["words"][0]["start"] and ends[-1] <= row["duration"]
            audio, rate = soundfile.read(dataset_dir / row["audio"], dtype="float32")
            assert abs(len(audio) / rate - row["duration"]) < 1e-3
            for word in row["words"]:  # audible where the joined times say each word is
                assert np.abs(audio[int(word["start"] * rate) : int(word["end"] * rate)]).max() > 0.05


def test_build_is_cached_and_seeded(dataset_dir, tmp_path):
    assert ensure_tiny_multitask(dataset_dir, SMALL) == dataset_dir  # same settings, complete: reused, not rebuilt
    # Two fresh processes give the same files bit for bit. (Within one process eSpeak NG carries a little state
    # from earlier syntheses, which can move a trimmed word edge by a few ms: builds are compared across processes.)
    arguments = [f"--{key.replace('_', '-')}={value}" for key, value in asdict(SMALL).items()]
    for name in ("first", "second"):
        subprocess.run([sys.executable, "-m", "transformers_qwen_audio.data", "--output-dir", str(tmp_path / name),
                        *arguments], check=True, capture_output=True)
    first, second = tmp_path / "first", tmp_path / "second"
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file())
    assert len(files) > 60
    # Bit for bit, but in the unseen splits: some of their variants (the breathy f* ones, which the training voices
    # of this build do not use) carry eSpeak NG noise that libc's srand does not reach, so a word's trimmed end can
    # move by one 10 ms frame between processes; their texts and times are compared to that frame.
    for relative in files:
        if "_unseen" in str(relative):
            continue
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    for subset in ("speech", "sounds"):
        for split in ("validation_unseen", "test_unseen"):
            for a, b in zip(read_rows(first, subset, split), read_rows(second, subset, split), strict=True):
                assert a.get("text") == b.get("text") and a.get("label") == b.get("label")
                assert abs(a["duration"] - b["duration"]) <= 0.0105
                for word_a, word_b in zip(a.get("words", []), b.get("words", []), strict=True):
                    assert abs(word_a["start"] - word_b["start"]) <= 0.0105
                    assert abs(word_a["end"] - word_b["end"]) <= 0.0105
    # The texts do not depend on the process at all.
    assert [row["text"] for row in read_rows(first, "speech", "train")] == [row["text"] for row in read_rows(dataset_dir, "speech", "train")]


def _dominant_frequency(signal):
    spectrum = np.abs(np.fft.rfft(signal))
    return np.fft.rfftfreq(len(signal), 1 / SAMPLING_RATE)[spectrum.argmax()]


def test_sounds_follow_their_definitions():
    rng = np.random.default_rng(0)
    for label in SOUND_LABELS:
        for _ in range(5):
            clip = generate_sound(label, rng)
            assert 0.5 <= len(clip) / SAMPLING_RATE <= 4.0 and np.abs(clip).max() <= 1.0
    tone = generate_sound("tone", np.random.default_rng(1))
    assert 140 <= _dominant_frequency(tone) <= 3100
    chirp = generate_sound("chirp", np.random.default_rng(2))
    quarter = len(chirp) // 4
    start, end = _dominant_frequency(chirp[:quarter]), _dominant_frequency(chirp[-quarter:])
    assert max(start, end) / min(start, end) >= 1.5  # at least an octave end to end (the quarters blur the ends)
    white, brown = generate_sound("white noise", np.random.default_rng(3)), generate_sound("brown noise", np.random.default_rng(3))
    low_share = lambda signal: (np.abs(np.fft.rfft(signal))[: len(signal) // 40] ** 2).sum() / (np.abs(np.fft.rfft(signal)) ** 2).sum()
    assert low_share(brown) > 0.9 > 0.2 > low_share(white)  # brown's energy sits below 200 Hz, white's is flat
    clicks = generate_sound("clicks", np.random.default_rng(4))
    peaks = np.abs(clicks) > 0.5 * np.abs(clicks).max()
    onsets = np.count_nonzero(peaks[1:] & ~peaks[:-1])
    assert 1 <= onsets / (len(clicks) / SAMPLING_RATE) <= 25
    with pytest.raises(ValueError, match="Unknown sound label"):
        generate_sound("bark", rng)
    with pytest.raises(ValueError, match="Unknown sound generator settings"):
        generate_sound("tone", rng, "loud")


def test_unseen_sound_settings_leave_the_training_ranges():
    frequencies = [_dominant_frequency(generate_sound("tone", np.random.default_rng(seed), "unseen")) for seed in range(12)]
    assert all(frequency <= 155 or frequency >= 2950 for frequency in frequencies)
    assert min(frequencies) < 155 and max(frequencies) > 2950  # both sides of the training range
    for label in SOUND_LABELS:
        assert 4.0 <= len(generate_sound(label, np.random.default_rng(5), "unseen")) / SAMPLING_RATE <= 6.0


def test_cache_folder_follows_qwen_audio_cache_then_xdg_cache_home(monkeypatch, tmp_path):
    from pathlib import Path

    from transformers_qwen_audio.data.tiny_multitask import default_cache_dir

    monkeypatch.delenv("QWEN_AUDIO_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_cache_dir() == Path.home() / ".cache" / "transformers_qwen_audio"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "transformers_qwen_audio"
    monkeypatch.setenv("QWEN_AUDIO_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
