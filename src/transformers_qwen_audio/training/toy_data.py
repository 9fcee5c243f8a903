# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
A small synthetic pre-training set, written on first use by the packaged `recipes/tiny/pretrain_smoke.yaml` and by the tests, in the
two local layouts users have most: an `audiofolder` (clips + `metadata.jsonl`) and a Hub-like parquet folder (a
`README.md` with `configs:`, audio stored as bytes).

- `tones/` (audiofolder, train/test): one to three tone bursts with silences between; each burst is a "word" named
  after its pitch (`low`, `mid`, `high`), with its start and end time: a transcription task with word timestamps
  that a tiny model can actually learn (the answer is in the audio).
- `chirps/` (parquet): rising or falling chirps captioned "a rising chirp" / "a falling chirp".

Deterministic (seeded): the same files on every machine.
"""

import io
import json
import os
from pathlib import Path

import numpy as np


SAMPLING_RATE = 16000
PITCHES = {"low": 300.0, "mid": 800.0, "high": 2000.0}
DEFAULT_ROOT = "data/tiny-pretrain"


def _tone(frequency: float, seconds: float) -> np.ndarray:
    time_axis = np.arange(int(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    envelope = np.minimum(1.0, np.minimum(time_axis, seconds - time_axis) / 0.01)  # 10 ms fades: no clicks
    return (0.3 * envelope * np.sin(2 * np.pi * frequency * time_axis)).astype(np.float32)


def tone_words_clip(rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """A clip of 1-3 tone bursts and its words `{"text", "start", "end"}` on the 10 ms grid."""
    pieces, words, cursor = [], [], 0.0
    for _ in range(int(rng.integers(1, 4))):
        silence = round(float(rng.uniform(0.0, 0.4)), 2)
        burst = round(float(rng.uniform(0.2, 0.5)), 2)
        name = str(rng.choice(list(PITCHES)))
        pieces += [np.zeros(int(round(silence * SAMPLING_RATE)), np.float32), _tone(PITCHES[name], burst)]
        start = round(cursor + silence, 2)
        words.append({"text": name, "start": start, "end": round(start + burst, 2)})
        cursor = words[-1]["end"]
    pieces.append(np.zeros(int(round(float(rng.uniform(0.0, 0.3)) * SAMPLING_RATE)), np.float32))
    return np.concatenate(pieces), words


def chirp_clip(rising: bool, seconds: float) -> np.ndarray:
    time_axis = np.arange(int(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    start, stop = (300.0, 1500.0) if rising else (1500.0, 300.0)
    phase = 2 * np.pi * (start * time_axis + (stop - start) * time_axis**2 / (2 * seconds))
    return (0.3 * np.sin(phase)).astype(np.float32)


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def build_tone_words_audiofolder(folder: Path, num_train: int = 48, num_test: int = 12, seed: int = 0) -> Path:
    import soundfile

    rng = np.random.default_rng(seed)
    for split, count in (("train", num_train), ("test", num_test)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        rows = []
        for index in range(count):
            waveform, words = tone_words_clip(rng)
            name = f"tones_{index:04d}.wav"
            soundfile.write(folder / split / name, waveform, SAMPLING_RATE)
            rows.append({"file_name": name, "text": " ".join(word["text"] for word in words), "words": words})
        _write_atomically(folder / split / "metadata.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    return folder


def build_chirp_captions_parquet(folder: Path, num_train: int = 24, num_test: int = 8, seed: int = 1) -> Path:
    import soundfile
    from datasets import Audio, Dataset, Features, Value

    rng = np.random.default_rng(seed)
    # Written as a plain struct and cast to `Audio` afterwards: encoding `Audio` values in `datasets` needs torchcodec.
    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "caption": Value("string")})
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for split, count in (("train", num_train), ("test", num_test)):
        rows = {"audio": [], "caption": []}
        for index in range(count):
            rising = bool(rng.integers(0, 2))
            buffer = io.BytesIO()
            soundfile.write(buffer, chirp_clip(rising, round(float(rng.uniform(0.5, 1.5)), 2)), SAMPLING_RATE, format="WAV")
            rows["audio"].append({"bytes": buffer.getvalue(), "path": f"chirp_{split}_{index:04d}.wav"})
            rows["caption"].append("a rising chirp" if rising else "a falling chirp")
        dataset = Dataset.from_dict(rows, features=features).cast_column("audio", Audio(decode=False))
        dataset.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    _write_atomically(
        folder / "README.md",
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*.parquet\n"
        "  - split: test\n    path: data/test-*.parquet\n---\n\n# Chirp captions\n\nSynthetic rising and falling chirps "
        "with one-line captions (built by `transformers_qwen_audio.training.toy_data`).\n",
    )
    return folder


def build_toy_pretraining_data(root: str | os.PathLike = DEFAULT_ROOT) -> Path:
    """Writes `ROOT/tones` (audiofolder) and `ROOT/chirps` (parquet with README configs) unless already there."""
    root = Path(root)
    if not (root / "tones" / "test" / "metadata.jsonl").exists():
        build_tone_words_audiofolder(root / "tones")
    if not (root / "chirps" / "README.md").exists():
        build_chirp_captions_parquet(root / "chirps")
    return root


__all__ = ["build_toy_pretraining_data", "build_tone_words_audiofolder", "build_chirp_captions_parquet"]
