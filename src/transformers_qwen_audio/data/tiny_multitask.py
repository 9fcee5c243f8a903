# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The tiny multitask dataset: built on any machine from the repository alone, seeded, cached.

- `speech`: English utterances of 2-6 words from a fixed 40-word vocabulary. Each word is synthesised alone by eSpeak NG
  (the `espeakng-loader` wheel bundles the library) with one of many voices (accent, timbre, rate, pitch), trimmed to
  its audible part, and the words are concatenated with random pauses, so every word has an exact start and end:
  targets for transcription and for word timestamps (SRWT).
- `sounds`: `tone`, `chirp`, `white noise`, `brown noise`, `clicks` by seeded numpy (`sounds.py`).

Splits `train`, `validation` and `test` (held-out): each voice speaks a disjoint set of words in each split, so no
word rendering (voice + word) of `validation` or `test` occurs in `train`, and no sentence of theirs does either.
Tune on `validation`; `test` is the held-out benchmark.

Layout (JSON Lines with a dataset card declaring two configs, loadable like a Hub dataset; `audio` holds FLAC paths
relative to the folder, because `datasets`' own audio feature needs torchcodec to even read the column):

    tiny-multitask/README.md
    tiny-multitask/speech/{train,validation,test}.jsonl   # audio, text, words [{word, start, end}], voice, duration
    tiny-multitask/sounds/{train,validation,test}.jsonl   # audio, label, duration
    tiny-multitask/{speech,sounds}/{train,validation,test}/*.flac

```python
>>> from datasets import Audio, load_dataset
>>> folder = ensure_tiny_multitask()            # built on first use (about a minute), then cached
>>> speech = load_dataset(str(folder), "speech", split="test")
>>> speech[0]["audio"], speech[0]["text"], speech[0]["words"][0]
('speech/test/00000.flac', 'left turn seven', {'word': 'left', 'start': 0.31, 'end': 0.62})
```

Command line: `python -m transformers_qwen_audio.data --output-dir DIR [--seed N] [--num-train-speech N]`.
"""

import argparse
import json
import os
import shutil
import tempfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from .sounds import SAMPLING_RATE, SOUND_LABELS, generate_sound
from .speech_synthesis import ESpeakSynthesizer, Voice


WORDS = tuple(
    "zero one two three four five six seven eight nine yes no up down left right on off stop go red green blue black "
    "white big small cat dog bird house water light door open close turn please and the".split()
)
SPLITS = ("train", "validation", "test")
# Voices (and sound generator settings) that no training clip uses: `validation_unseen` to tune on, `test_unseen`
# held out, beside the splits of the training voices.
UNSEEN_SPLITS = ("validation_unseen", "test_unseen")
ALL_SPLITS = SPLITS + UNSEEN_SPLITS
# Bump when the generated data changes, so that caches built by an older version are not reused.
DATASET_VERSION = 4

ACCENTS = ("en", "en-US", "en-GB-x-rp", "en-GB-scotland", "en-029", "en-US-nyc", "en-GB-x-gbclan", "en-GB-x-gbcwmd")
# Voice variants that stay intelligible (the whisper/robot/croak ones are left out).
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "adam", "Andy", "annie", "antonio",
    "benjamin", "caleb", "david", "ed", "edward", "Gene", "grandma", "grandpa", "iven", "john", "linda", "max",
    "michel", "Mike", "norbert", "steph", "travis", "Alex", "Alicia", "Hugo", "Storm", "Reed",
)
RATES, PITCHES = (120, 240), (25, 80)
# The `*_unseen` splits' voices: variants that no training voice has (with any accent), at rates and pitches drawn
# from wider ranges than training's.
UNSEEN_RATES, UNSEEN_PITCHES = (100, 260), (15, 90)
MIN_WORDS, MAX_WORDS = 2, 6


@dataclass
class TinyMultitaskConfig:
    """What to build. The defaults are the dataset of the tiny pre-training recipe."""

    seed: int = 0
    num_voices: int = 48
    num_train_speech: int = 3000
    num_validation_speech: int = 200
    num_test_speech: int = 200
    num_train_sounds: int = 1000
    num_validation_sounds: int = 100
    num_test_sounds: int = 100
    # The `*_unseen` splits: voices of variants no training voice has, at rates and pitches from wider ranges
    # (`UNSEEN_RATES`, `UNSEEN_PITCHES`), this many per split, and sounds from the `unseen` generator settings
    # (`sounds.SETTINGS`).
    num_unseen_voices: int = 12
    num_validation_unseen_speech: int = 200
    num_test_unseen_speech: int = 200
    num_validation_unseen_sounds: int = 100
    num_test_unseen_sounds: int = 100
    # `long_speech`: recordings of several utterances of the same split joined by pauses, 10-30 s (the window the
    # model reads), to score a whole window against its utterances alone (`benchmarks/tiny_long_asr.yaml`).
    num_train_long: int = 300
    num_validation_long: int = 40
    num_test_long: int = 40
    long_min_seconds: float = 10.0
    long_max_seconds: float = 30.0
    # Words each voice keeps for the validation and for the test split (the rest are its training words).
    held_out_words_per_voice: int = 6
    # Each word of an utterance is played at a random speed within 1 +- this (resampled: tempo and pitch move
    # together, Kaldi's speed perturbation), so no two occurrences of a rendering are the same samples: a model has
    # to learn the word, not the recording (without it, the tiny recipe's WER was 0.07 on train and 0.20 on
    # validation).
    word_speed_range: float = 0.1

    def num_examples(self, subset: str, split: str) -> int:
        return getattr(self, f"num_{split}_{subset}", 0)

    def fingerprint(self) -> str:
        fields = "-".join(f"{value}" for value in asdict(self).values())
        return f"v{DATASET_VERSION}-{fields}"


def default_cache_dir() -> Path:
    """`$QWEN_AUDIO_CACHE`, else `transformers_qwen_audio` in the user's cache folder (`$XDG_CACHE_HOME`, by default
    `~/.cache`), where the Hugging Face libraries keep theirs."""
    if os.environ.get("QWEN_AUDIO_CACHE"):
        return Path(os.environ["QWEN_AUDIO_CACHE"])
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "transformers_qwen_audio"


def sample_voices(rng: np.random.Generator, num_voices: int, variants: tuple = VARIANTS,
                  rates: tuple = RATES, pitches: tuple = PITCHES, taken: set | None = None) -> list[Voice]:
    """Distinct voices (accent + variant) of the given variants, rates and pitches, none of the names in `taken`."""
    voices, seen = [], set(taken or ())
    while len(voices) < num_voices:
        voice = Voice(
            accent=str(rng.choice(ACCENTS)),
            variant=str(rng.choice(variants)),
            rate=int(rng.integers(rates[0], rates[1] + 1)),
            pitch=int(rng.integers(pitches[0], pitches[1] + 1)),
        )
        if voice.name not in seen:  # distinct timbres, so that held-out renderings are really new
            seen.add(voice.name)
            voices.append(voice)
    return voices


def unseen_variants(training_voices: list[Voice]) -> tuple:
    """The variants no training voice has: the timbres of the `*_unseen` splits. (Some of them, the breathy `f*`
    ones, carry eSpeak NG noise that libc's srand does not reach: a word's trimmed end can move by one 10 ms frame
    from one process to the next, which `tests/test_tiny_multitask_data.py` allows in these splits only.)"""
    used = {voice.variant for voice in training_voices}
    return tuple(variant for variant in VARIANTS if variant not in used)


def trim_silence(waveform: np.ndarray, threshold: float = 0.02, frame: int = 160) -> np.ndarray:
    """Keeps the audible part: from the first to the last 10 ms frame whose peak exceeds `threshold` x the clip's peak."""
    peak = np.abs(waveform).max() if len(waveform) else 0.0
    if peak == 0:
        return waveform[:0]
    num_frames = len(waveform) // frame
    frame_peaks = np.abs(waveform[: num_frames * frame]).reshape(num_frames, frame).max(-1)
    loud = np.nonzero(frame_peaks > threshold * peak)[0]
    return waveform[loud[0] * frame : (loud[-1] + 1) * frame]


class WordBank:
    """Renderings of the vocabulary: `bank(voice, word)` -> 16 kHz waveform, trimmed, peak 1, synthesised once."""

    def __init__(self):
        self.synthesizer = ESpeakSynthesizer.shared()
        self._renderings: dict[tuple[str, str], np.ndarray] = {}

    def __call__(self, voice: Voice, word: str) -> np.ndarray:
        key = (voice.key, word)
        if key not in self._renderings:
            seed = zlib.crc32(f"{voice.key}/{word}".encode())
            waveform = self.synthesizer.synthesize(word, voice, seed=seed)
            waveform = soxr.resample(waveform, self.synthesizer.sampling_rate, SAMPLING_RATE)
            waveform = trim_silence(waveform)
            if len(waveform) == 0:
                raise RuntimeError(f"eSpeak NG produced silence for {word!r} with voice {voice.key}")
            self._renderings[key] = (waveform / np.abs(waveform).max()).astype(np.float32)
        return self._renderings[key]


def split_words_per_voice(rng: np.random.Generator, voices: list[Voice], held_out: int) -> dict:
    """For each voice, disjoint word sets per split: {split: [(voice, words), ...]}."""
    if 2 * held_out + MAX_WORDS > len(WORDS):
        raise ValueError(f"held_out_words_per_voice={held_out} leaves too few training words per voice.")
    assignment = {split: [] for split in SPLITS}
    for voice in voices:
        order = [WORDS[index] for index in rng.permutation(len(WORDS))]
        assignment["validation"].append((voice, order[:held_out]))
        assignment["test"].append((voice, order[held_out : 2 * held_out]))
        assignment["train"].append((voice, order[2 * held_out :]))
    return assignment


def compose_utterance(rng: np.random.Generator, renderings: list[tuple[str, np.ndarray]],
                      speed_range: float = 0.0) -> tuple[np.ndarray, list]:
    """Words in order with random pauses, each at a random speed within 1 +- `speed_range`; returns the waveform and
    [{word, start, end}] in seconds."""
    gain = rng.uniform(0.2, 0.9)
    pieces = [np.zeros(int(rng.uniform(0.1, 0.6) * SAMPLING_RATE), dtype=np.float32)]
    words, position = [], len(pieces[0])
    for index, (word, waveform) in enumerate(renderings):
        if index:
            pause = np.zeros(int(rng.uniform(0.05, 0.5) * SAMPLING_RATE), dtype=np.float32)
            pieces.append(pause)
            position += len(pause)
        if speed_range:
            # Played `speed` times faster: fewer samples at the same rate.
            speed = rng.uniform(1.0 - speed_range, 1.0 + speed_range)
            waveform = soxr.resample(waveform, SAMPLING_RATE * speed, SAMPLING_RATE).astype(np.float32)
        # Slight per-word loudness changes, as in natural speech.
        pieces.append(waveform * gain * rng.uniform(0.7, 1.0))
        words.append({"word": word, "start": round(position / SAMPLING_RATE, 3),
                      "end": round((position + len(waveform)) / SAMPLING_RATE, 3)})
        position += len(waveform)
    pieces.append(np.zeros(int(rng.uniform(0.1, 0.4) * SAMPLING_RATE), dtype=np.float32))
    audio = np.concatenate(pieces)
    # The hiss comes from its own generator, so that the main stream does not depend on the clip's length.
    noise_rng = np.random.default_rng(rng.integers(2**32))
    if rng.random() < 0.5:
        audio = audio + noise_rng.standard_normal(len(audio)).astype(np.float32) * 10 ** (rng.uniform(-60, -40) / 20)
    return np.clip(audio, -1.0, 1.0), words


def _write_split(root: Path, subset: str, split: str, rows: list[dict], clips: list[np.ndarray]) -> None:
    """Clips under `subset/split/`, rows in `subset/split.jsonl` with `audio` relative to the dataset folder."""
    (root / subset / split).mkdir(parents=True, exist_ok=True)
    for index, (row, clip) in enumerate(zip(rows, clips)):
        row["audio"] = f"{subset}/{split}/{index:05d}.flac"
        soundfile.write(root / row["audio"], clip, SAMPLING_RATE, format="FLAC")
    with open(root / subset / f"{split}.jsonl", "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def draw_utterances(config: TinyMultitaskConfig, split: str, assignment: list, bank: WordBank,
                    rng: np.random.Generator, used_sentences: set) -> tuple[list[dict], list[np.ndarray]]:
    """The split's utterances: each from one (voice, words) of `assignment`, a sentence no other split has."""
    rows, clips = [], []
    attempts, count = 0, config.num_examples("speech", split)
    while len(rows) < count:
        attempts += 1
        if attempts > 100 * count + 1000:
            raise RuntimeError(f"Could not draw enough distinct {split} sentences; lower the count.")
        voice, words = assignment[int(rng.integers(len(assignment)))]
        length = int(rng.integers(MIN_WORDS, min(MAX_WORDS, len(words)) + 1))
        sentence_words = [words[index] for index in rng.choice(len(words), size=length, replace=True)]
        sentence = " ".join(sentence_words)
        if sentence in used_sentences:
            continue
        used_sentences.add(sentence)
        audio, timings = compose_utterance(rng, [(word, bank(voice, word)) for word in sentence_words],
                                           config.word_speed_range)
        rows.append({
            "audio": None, "text": sentence, "words": timings,
            "voice": voice.key, "duration": round(len(audio) / SAMPLING_RATE, 3),
        })
        clips.append(audio)
    return rows, clips


def build_speech(config: TinyMultitaskConfig, root: Path, bank: WordBank,
                 rng: np.random.Generator) -> tuple[dict, dict]:
    """Writes `speech/` (every split) and `long_speech/` (train, validation, test); returns their counts per split.
    The unseen splits and the long recordings draw from generators of their own, so that adding them left the
    training, validation and test utterances of version 3 as they were."""
    voices = sample_voices(rng, config.num_voices)
    assignment = split_words_per_voice(rng, voices, config.held_out_words_per_voice)
    unseen_rng = np.random.default_rng([config.seed, 1])
    long_rng = np.random.default_rng([config.seed, 2])
    variants = unseen_variants(voices)
    if len(variants) * len(ACCENTS) < 2 * config.num_unseen_voices:
        raise ValueError(f"Only {len(variants)} variants are left for the unseen splits; lower num_voices or "
                         "num_unseen_voices.")
    # The unseen voices speak every word: none of their renderings is in training whatever the words.
    taken = {voice.name for voice in voices}
    for split in UNSEEN_SPLITS:
        unseen_voices = sample_voices(unseen_rng, config.num_unseen_voices, variants, UNSEEN_RATES, UNSEEN_PITCHES,
                                      taken)
        taken |= {voice.name for voice in unseen_voices}
        assignment[split] = [(voice, list(WORDS)) for voice in unseen_voices]
    used_sentences: set[str] = set()
    counts, long_counts = {}, {}
    # Held-out splits first, so that their sentences are reserved before train draws; train then skips them; the
    # unseen splits last, skipping every sentence of the others.
    for split in ("test", "validation", "train", *UNSEEN_SPLITS):
        rows, clips = draw_utterances(config, split, assignment[split], bank,
                                      unseen_rng if split in UNSEEN_SPLITS else rng, used_sentences)
        _write_split(root, "speech", split, rows, clips)
        counts[split] = len(rows)
        if split in SPLITS:
            long_rows, long_clips = join_utterances(config, split, rows, clips, long_rng)
            _write_split(root, "long_speech", split, long_rows, long_clips)
            long_counts[split] = len(long_rows)
    return counts, long_counts


def join_utterances(config: TinyMultitaskConfig, split: str, rows: list[dict], clips: list[np.ndarray],
                    rng: np.random.Generator) -> tuple[list[dict], list[np.ndarray]]:
    """`long_speech` recordings: utterances of the split (each with its own pauses around it) joined by 0.2-1.5 s
    of silence until a length drawn in `long_min/max_seconds`; the word times follow, and
    `utterances` names the rows of `speech/SPLIT.jsonl` in order (to compare with transcribing them one by one)."""
    long_rows, long_clips = [], []
    for _ in range(config.num_examples("long", split)):
        target = rng.uniform(config.long_min_seconds, config.long_max_seconds)
        pieces, words, indices, position = [], [], [], 0
        while True:
            index = int(rng.integers(len(rows)))
            pause = np.zeros(int(rng.uniform(0.2, 1.5) * SAMPLING_RATE) if pieces else 0, dtype=np.float32)
            if (position + len(pause) + len(clips[index])) / SAMPLING_RATE > config.long_max_seconds:
                if position / SAMPLING_RATE >= config.long_min_seconds:
                    break
                continue  # past the longest: another, shorter one (below the shortest, most of the range is left)
            pieces += [pause, clips[index]]
            position += len(pause)
            offset = position / SAMPLING_RATE
            words += [{"word": item["word"], "start": round(item["start"] + offset, 3),
                       "end": round(item["end"] + offset, 3)} for item in rows[index]["words"]]
            indices.append(index)
            position += len(clips[index])
            if position / SAMPLING_RATE >= target:
                break
        audio = np.concatenate(pieces)
        long_rows.append({
            "audio": None, "text": " ".join(item["word"] for item in words), "words": words,
            "utterances": indices, "duration": round(len(audio) / SAMPLING_RATE, 3),
        })
        long_clips.append(audio)
    return long_rows, long_clips


def build_sounds(config: TinyMultitaskConfig, root: Path, rng: np.random.Generator) -> dict:
    counts = {}
    unseen_rng = np.random.default_rng([config.seed, 3])  # its own: the other splits stay those of version 3
    for split in ALL_SPLITS:
        settings = "unseen" if split in UNSEEN_SPLITS else "train"
        split_rng = unseen_rng if split in UNSEEN_SPLITS else rng
        rows, clips = [], []
        for index in range(config.num_examples("sounds", split)):
            label = SOUND_LABELS[index % len(SOUND_LABELS)]  # balanced classes
            audio = generate_sound(label, split_rng, settings)
            rows.append({"audio": None, "label": label,
                         "duration": round(len(audio) / SAMPLING_RATE, 3)})
            clips.append(audio)
        order = split_rng.permutation(len(rows))
        _write_split(root, "sounds", split, [rows[i] for i in order], [clips[i] for i in order])
        counts[split] = len(rows)
    return counts


DATASET_CARD = """---
configs:
- config_name: speech
  default: true
  data_files:
  - {{split: train, path: speech/train.jsonl}}
  - {{split: validation, path: speech/validation.jsonl}}
  - {{split: test, path: speech/test.jsonl}}
  - {{split: validation_unseen, path: speech/validation_unseen.jsonl}}
  - {{split: test_unseen, path: speech/test_unseen.jsonl}}
- config_name: sounds
  data_files:
  - {{split: train, path: sounds/train.jsonl}}
  - {{split: validation, path: sounds/validation.jsonl}}
  - {{split: test, path: sounds/test.jsonl}}
  - {{split: validation_unseen, path: sounds/validation_unseen.jsonl}}
  - {{split: test_unseen, path: sounds/test_unseen.jsonl}}
- config_name: long_speech
  data_files:
  - {{split: train, path: long_speech/train.jsonl}}
  - {{split: validation, path: long_speech/validation.jsonl}}
  - {{split: test, path: long_speech/test.jsonl}}
task_categories:
- automatic-speech-recognition
- audio-classification
language:
- en
---
# tiny-multitask

Built by `transformers_qwen_audio.data.tiny_multitask` (version {version}, seed {seed}); synthetic, nothing downloaded.

Audio files are FLAC (16 kHz mono); the `audio` column holds their paths relative to this folder (cast it to
`datasets.Audio(decode=False)` and resolve against this folder, or decode with `transformers_qwen_audio.audio_io`).

- `speech`: utterances of 2-6 words from a 40-word vocabulary, single words synthesised by eSpeak NG with
  {num_voices} voices, each occurrence at a random speed (1 +- {word_speed_range}), joined by random pauses.
  Columns: `audio`, `text`, `words` (each word with its exact `start` and `end` in seconds), `voice`, `duration`.
- `sounds`: `tone`, `chirp`, `white noise`, `brown noise`, `clicks` generated by seeded numpy. Columns: `audio`,
  `label`, `duration`.
- `long_speech`: recordings of {long_seconds} s, utterances of the same split of `speech` joined by pauses.
  Columns: `audio`, `text`, `words`, `utterances` (their rows in `speech`, in order), `duration`.

Splits (speech / sounds / long_speech): {counts}. No word rendering (voice + word) and no sentence of `validation`
or `test` occurs in `train`. Tune on `validation`; `test` is held out. `validation_unseen` and `test_unseen` hold
voices of variants no training voice has, at rates and pitches from wider ranges than training's, and sounds from
other generator settings of the same five definitions (`sounds.SETTINGS`): tune on the first, hold out the second.

Build settings: `{settings}`
"""


def build_tiny_multitask(output_dir: str | os.PathLike, config: TinyMultitaskConfig | None = None) -> Path:
    """Builds the dataset into `output_dir` (replaced atomically: a crash never leaves a half-built folder there)."""
    config = config or TinyMultitaskConfig()
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.building-", dir=output_dir.parent))
    try:
        rng = np.random.default_rng(config.seed)
        bank = WordBank()
        speech_counts, long_counts = build_speech(config, staging, bank, np.random.default_rng(rng.integers(2**32)))
        sound_counts = build_sounds(config, staging, np.random.default_rng(rng.integers(2**32)))
        counts = ", ".join(f"{split} {speech_counts[split]} / {sound_counts[split]} / {long_counts.get(split, 0)}"
                           for split in ALL_SPLITS)
        (staging / "README.md").write_text(DATASET_CARD.format(
            version=DATASET_VERSION, seed=config.seed, num_voices=config.num_voices,
            word_speed_range=config.word_speed_range, counts=counts,
            long_seconds=f"{config.long_min_seconds:g}-{config.long_max_seconds:g}",
            settings=json.dumps(asdict(config)),
        ))
        (staging / "build_config.json").write_text(json.dumps({"version": DATASET_VERSION, **asdict(config)}, indent=1))
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir


def ensure_tiny_multitask(
    output_dir: str | os.PathLike | None = None, config: TinyMultitaskConfig | None = None
) -> Path:
    """The dataset folder, built on first use: reused when a complete build with the same settings is there."""
    config = config or TinyMultitaskConfig()
    if output_dir is None:
        output_dir = default_cache_dir() / f"tiny-multitask-{config.fingerprint()}"
    output_dir = Path(output_dir)
    marker = output_dir / "build_config.json"
    if marker.is_file() and json.loads(marker.read_text()) == {"version": DATASET_VERSION, **asdict(config)}:
        return output_dir
    return build_tiny_multitask(output_dir, config)


# Where the tiny recipes (the packaged `recipes/tiny/pretrain.yaml`, the demo, the tiny benchmarks) expect the data, relative to
# the working directory, as the recipes' other local paths are.
RECIPE_DATA_DIR = Path("data") / "tiny-multitask"


def build_recipe_data() -> Path:
    """`build_local_data` hook of the tiny pre-training recipe: the default dataset in `data/tiny-multitask`."""
    return ensure_tiny_multitask(RECIPE_DATA_DIR)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build the tiny multitask dataset (speech + sounds).")
    parser.add_argument("--output-dir", type=Path, help="default: a folder in the cache, reused when complete")
    for field, default in asdict(TinyMultitaskConfig()).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args(argv)
    settings = {field: getattr(args, field) for field in asdict(TinyMultitaskConfig())}
    folder = ensure_tiny_multitask(args.output_dir, TinyMultitaskConfig(**settings))
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
