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
    assert {split: len(speech[split]) for split in speech} == {"train": 30, "validation": 8, "test": 8}
    assert {split: len(sounds[split]) for split in sounds} == {"train": 10, "validation": 5, "test": 5}
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
        # Speeds within 1 +- 0.1: lengths within [1/1.1, 1/0.9] x the rendering's, so at most 1.1/0.9 apart.
        assert max(lengths) / min(lengths) <= 1.1 / 0.9 + 0.01, lengths


def test_held_out_renderings_and_sentences_do_not_occur_in_train(dataset_dir):
    train = read_rows(dataset_dir, "speech", "train")
    train_renderings = {(row["voice"], word["word"]) for row in train for word in row["words"]}
    train_sentences = {row["text"] for row in train}
    for split in ("validation", "test"):
        held_out = read_rows(dataset_dir, "speech", split)
        assert not {(row["voice"], word["word"]) for row in held_out for word in row["words"]} & train_renderings
        assert not {row["text"] for row in held_out} & train_sentences


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
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
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
