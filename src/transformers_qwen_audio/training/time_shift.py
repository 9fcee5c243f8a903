# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Time-shift augmentation for pre-training on short clips: a batch's clips start after a stretch of silence, so that
the speech lies anywhere in the 30 s window the model reads, and the word timestamps of the targets move with it.

A model trained only on clips of a few seconds reads speech only where those clips had it: the tiny recipe's
stage-1 model transcribes a held-out utterance at WER 0.10, the same utterance after 3 s of silence at 0.57 and
after 6 s at 1.17 (Whisper's encoder positions and the decoder's timestamps past the clips' length are never
trained). Recordings of 10-30 s then fail whatever their words. Shifting in time teaches those positions at the cost
of the silence the encoder reads, and the shift is drawn per batch (one total length for the batch, each clip its own
offset within it), so that a shifted clip never pads a batch of unshifted ones to its length.
"""

import re
from dataclasses import dataclass

import numpy as np

from ..audio_io import QWEN_AUDIO_SAMPLING_RATE
from ..word_timestamps import (
    MAX_TIMESTAMP_SECONDS,
    SILENCE_TOKEN,
    TIMESTAMP_STEP_SECONDS,
    TIMESTAMP_TOKEN_PATTERN,
    timestamp_token,
)



@dataclass
class TimeShift:
    """With `probability`, a training batch is shifted: a total length is drawn uniformly between its longest clip
    and `max_seconds`, and each clip gets leading silence drawn uniformly so that it ends within that length."""

    probability: float = 0.0
    max_seconds: float = MAX_TIMESTAMP_SECONDS
    seed: int = 0

    def __post_init__(self):
        if not 0 <= self.probability <= 1:
            raise ValueError(f"`time_shift_probability` must be in [0, 1], got {self.probability!r}.")
        if not 0 < self.max_seconds <= MAX_TIMESTAMP_SECONDS:
            raise ValueError(f"`time_shift_max_seconds` must be in (0, {MAX_TIMESTAMP_SECONDS:g}], got {self.max_seconds!r}.")
        self.rng = np.random.default_rng(self.seed)

    def batch_length(self, longest_seconds: float) -> float | None:
        """The total length the batch's clips are shifted within, or None when this batch is not shifted."""
        if self.probability == 0 or self.rng.random() >= self.probability or longest_seconds >= self.max_seconds:
            return None
        return float(self.rng.uniform(longest_seconds, self.max_seconds))

    def offset(self, clip_seconds: float, batch_length: float) -> float:
        """Leading silence for one clip, on the timestamp grid (so that shifted targets are exact), keeping it within
        `batch_length`."""
        steps = int(np.floor(max(batch_length - clip_seconds, 0.0) / TIMESTAMP_STEP_SECONDS))
        return int(self.rng.integers(steps + 1)) * TIMESTAMP_STEP_SECONDS


def shift_waveform(waveform: np.ndarray, seconds: float) -> np.ndarray:
    """`seconds` of silence, then the clip."""
    silence = np.zeros(int(round(seconds * QWEN_AUDIO_SAMPLING_RATE)), dtype=waveform.dtype)
    return np.concatenate([silence, waveform])


def shift_timestamps(completion: str, seconds: float, opens_after_timestamp: bool) -> str:
    """
    A target with every timestamp token moved `seconds` later. `opens_after_timestamp`: the prompt ends with the
    window's `<|0.00|>` (a word-timestamp target), so a target whose first word started at 0 now opens with the
    silence before it: `<|sil|><|seconds|>`.
    """
    if not seconds:
        return completion
    shifted = TIMESTAMP_TOKEN_PATTERN.sub(lambda match: timestamp_token(round(float(match.group(1)) + seconds, 2)), completion)
    if opens_after_timestamp and not completion.startswith(SILENCE_TOKEN) and TIMESTAMP_TOKEN_PATTERN.search(completion):
        shifted = SILENCE_TOKEN + timestamp_token(seconds) + shifted
    return shifted


__all__ = ["TimeShift", "shift_timestamps", "shift_waveform"]
