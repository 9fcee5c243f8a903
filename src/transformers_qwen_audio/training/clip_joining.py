# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Clip-joining augmentation for pre-training on short clips: some batches' transcription examples of the same task are
joined, a short pause between them, into one recording of several utterances, and their targets into one target
(the words one after the other; word timestamps moved to each clip's place on the joined recording).

A model trained only on utterances of 2-6 words has never written a longer transcript: on two held-out utterances
joined in one window the tiny recipe's stage-1 model reaches WER 0.42-0.49 and on four 0.83-1.11, even once time
shifting (`training.time_shift`) has taught it to read speech anywhere in the window (one utterance after 10 s of
silence: WER 0.20). Joining teaches long targets and later positions with the audio the batch already holds: unlike
leading silence it adds no audio, though the batch's other examples are padded to the joined one's length, so it
is not free either (docs/main_job.md). This is
the usual concatenation augmentation of speech recognition; nothing in the HF stack does it on the fly for
task-tagged targets with timestamps, hence this module.
"""

import re
from dataclasses import dataclass

import numpy as np

from ..audio_io import QWEN_AUDIO_SAMPLING_RATE
from ..word_timestamps import MAX_TIMESTAMP_SECONDS, SILENCE_TOKEN, TIMESTAMP_STEP_SECONDS, TIMESTAMP_TOKEN_PATTERN
from .time_shift import shift_timestamps


# Transcripts concatenate; a sound label, a caption or an answer does not.
JOINABLE_TASK_TAG = "<|transcribe|>"
_TRAILING_SILENCE = re.compile(re.escape(SILENCE_TOKEN) + TIMESTAMP_TOKEN_PATTERN.pattern + "$")


@dataclass
class ClipJoining:
    """With `probability`, a training batch's transcription examples that share a prompt are joined in groups of up
    to `max_clips` (in batch order, while the joined recording stays within `max_seconds`), with a pause of
    `min_pause_seconds`-`max_pause_seconds` before each clip after the first."""

    probability: float = 0.0
    max_clips: int = 3
    max_seconds: float = MAX_TIMESTAMP_SECONDS
    min_pause_seconds: float = 0.2
    max_pause_seconds: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if not 0 <= self.probability <= 1:
            raise ValueError(f"`clip_joining_probability` must be in [0, 1], got {self.probability!r}.")
        if not isinstance(self.max_clips, int) or self.max_clips < 2:
            raise ValueError(f"`clip_joining_max_clips` must be an integer >= 2, got {self.max_clips!r}.")
        if not 0 < self.max_seconds <= MAX_TIMESTAMP_SECONDS:
            raise ValueError(f"`max_seconds` must be in (0, {MAX_TIMESTAMP_SECONDS:g}], got {self.max_seconds!r}.")
        if not 0 <= self.min_pause_seconds <= self.max_pause_seconds:
            raise ValueError(f"pauses must satisfy 0 <= min <= max, got {self.min_pause_seconds!r} and "
                             f"{self.max_pause_seconds!r}.")
        self.rng = np.random.default_rng(self.seed)

    def joins_this_batch(self) -> bool:
        return self.probability > 0 and self.rng.random() < self.probability

    def groups(self, prompts: list[str | None], seconds: list[float]) -> list[list[int]]:
        """Indices of the examples to join, each group of 2 or more sharing a prompt (None: never joined), in batch
        order; the others stay as they are."""
        groups, open_groups = [], {}  # prompt -> (indices, seconds so far)
        for index, (prompt, length) in enumerate(zip(prompts, seconds)):
            if prompt is None:
                continue
            indices, total = open_groups.get(prompt, ([], 0.0))
            needed = length + (self.max_pause_seconds + TIMESTAMP_STEP_SECONDS if indices else 0.0)
            if indices and (len(indices) == self.max_clips or total + needed > self.max_seconds):
                groups.append(indices)
                indices, total, needed = [], 0.0, length
            open_groups[prompt] = (indices + [index], total + needed)
        groups += [indices for indices, _ in open_groups.values()]
        return sorted((group for group in groups if len(group) > 1), key=lambda group: group[0])

    def starts(self, seconds: list[float]) -> list[float]:
        """Where each clip of a group starts on the joined recording: on the 10 ms timestamp grid, after the previous
        clip's end and a pause."""
        starts, end = [0.0], seconds[0]
        for length in seconds[1:]:
            pause = self.rng.uniform(self.min_pause_seconds, self.max_pause_seconds)
            start = round(np.ceil(round((end + pause) / TIMESTAMP_STEP_SECONDS, 6)) * TIMESTAMP_STEP_SECONDS, 2)
            starts.append(start)
            end = start + length
        return starts


def join_waveforms(waveforms: list[np.ndarray], starts: list[float]) -> np.ndarray:
    """The clips placed at `starts` (seconds) on one recording, silence between them."""
    offsets = [int(round(start * QWEN_AUDIO_SAMPLING_RATE)) for start in starts]
    joined = np.zeros(offsets[-1] + len(waveforms[-1]), dtype=waveforms[0].dtype)
    for offset, waveform in zip(offsets, waveforms):
        joined[offset: offset + len(waveform)] = waveform
    return joined


def join_completions(completions: list[str], starts: list[float], opens_after_timestamp: bool) -> str:
    """
    One target for the joined clips (each completion without its eos). Plain transcripts are joined with a space.
    Word-timestamp targets (`opens_after_timestamp`: the prompt ends with the window's `<|0.00|>`) are moved to each
    clip's start, and the silence between two clips becomes one `<|sil|>` segment: a clip's trailing silence is merged
    into the pause and the next clip's leading silence.
    """
    if not any(TIMESTAMP_TOKEN_PATTERN.search(completion) for completion in completions):
        return " ".join(completion.strip() for completion in completions)
    joined = completions[0]
    for completion, start in zip(completions[1:], starts[1:]):
        shifted = shift_timestamps(completion, start, opens_after_timestamp=opens_after_timestamp)
        if shifted.startswith(SILENCE_TOKEN):
            joined = _TRAILING_SILENCE.sub("", joined)
        joined += shifted
    return joined


__all__ = ["ClipJoining", "JOINABLE_TASK_TAG", "join_completions", "join_waveforms"]
