# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Qwen-Audio's front end: transformers' `WhisperFeatureExtractor` with the original's settings, and the arithmetic of
30 s windows, log-mel frames and audio tokens that the processor, the pipeline and the server share.
"""

import numpy as np
from transformers import WhisperFeatureExtractor

from .audio_io import QWEN_AUDIO_SAMPLING_RATE
from .conversation import MIN_AUDIO_SAMPLES
from .modeling_qwen_audio import audio_token_lengths


# Whisper front end of the original: 30 s windows, 10 ms hop, 80 mel bins.
MAX_AUDIO_SECONDS = 30
HOP_LENGTH = 160
MAX_AUDIO_SAMPLES = MAX_AUDIO_SECONDS * QWEN_AUDIO_SAMPLING_RATE
MAX_MEL_FRAMES = MAX_AUDIO_SAMPLES // HOP_LENGTH


def default_feature_extractor() -> WhisperFeatureExtractor:
    """Whisper's log-mel front end with Qwen-Audio's settings (80 mel bins, 16 kHz, 30 s window)."""
    return WhisperFeatureExtractor(
        feature_size=80,
        sampling_rate=QWEN_AUDIO_SAMPLING_RATE,
        hop_length=HOP_LENGTH,
        chunk_length=MAX_AUDIO_SECONDS,
        n_fft=400,
        padding_value=0.0,
        return_attention_mask=False,
    )


def num_mel_frames(num_samples: int) -> int:
    """Valid log-mel frames of a clip, as the original counts them (the first 30 s only)."""
    return min(num_samples, MAX_AUDIO_SAMPLES) // HOP_LENGTH


def feature_window_samples(longest_window: int, n_fft: int = 400) -> int:
    """
    Samples that `feature_padding="longest"` pads every window of a batch to, given its longest window.

    Whisper's log-mel of a zero-padded clip does not depend on how far the zeros go, on every frame of the shorter
    padding: the centred STFT frames near the end reflect only zeros as long as at least `n_fft // 2 + 1` zeros follow
    the clip, and the per-clip maximum (the `max - 8` floor) is never taken on an all-zero frame (log10(1e-10), the
    smallest value). The frame count is even and covers what the encoder reads: its stride-2 convolution trims each
    clip to `2 * ceil(mel_frames / 2)` frames. Never more than the 30 s window.
    """
    frames = -(-(longest_window + n_fft // 2 + 1) // HOP_LENGTH)
    frames += frames % 2
    return min(frames, MAX_MEL_FRAMES) * HOP_LENGTH


def split_into_windows(waveform: np.ndarray) -> list[np.ndarray]:
    """Consecutive 30 s windows of a 16 kHz waveform (a tail too short to give an audio token is dropped)."""
    windows = [waveform[start : start + MAX_AUDIO_SAMPLES] for start in range(0, len(waveform), MAX_AUDIO_SAMPLES)]
    if len(windows) > 1 and len(windows[-1]) < MIN_AUDIO_SAMPLES:
        windows.pop()
    return windows


def audio_span_length(num_samples: int) -> int:
    """
    Number of tokens the span `<audio>...</audio>` of a clip takes: its audio tokens plus `<audio>` and `</audio>`.
    Two stride-2 steps follow the log-mel: the encoder's second convolution and the average pooling.
    """
    return audio_token_lengths(num_mel_frames(num_samples)) + 2


__all__ = [
    "HOP_LENGTH",
    "MAX_AUDIO_SAMPLES",
    "MAX_AUDIO_SECONDS",
    "MAX_MEL_FRAMES",
    "audio_span_length",
    "default_feature_extractor",
    "feature_window_samples",
    "num_mel_frames",
    "split_into_windows",
]
