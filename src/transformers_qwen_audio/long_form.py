# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Long-form transcription: recordings longer than the 30 s window the model hears, cut where the words end.

Two ways to place the windows, both on the recording's time line:

- `"sequential"`, as Whisper's sequential long-form decoding does with its segment timestamps: a window is
  transcribed with word timestamps, the words that end before the window's tail (`tail_seconds`) are kept, and the
  next window starts at the last kept word's end. A word cut by the window edge is heard again, whole, in the next
  window. Windows of one recording depend on each other; several recordings advance together, one batch a step.
- `"vad"`: a voice-activity detector (silero-vad, the `vad` extra; its wheel ships its model) finds the pauses first,
  and windows of up to 30 s end in them. The windows are independent, so all of them, of every recording, are
  transcribed as batches.

`"chunk"` (back-to-back 30 s windows, in the pipeline itself) stays the fastest choice for audio without long words
at the edges.

Both take `transcribe_windows(windows) -> list[list[word]]`: word chunks `{"text", "timestamp": (start, end)}` relative
to each window, as `pipeline("audio-chat")(..., task="transcribe", return_timestamps="word")` gives them. That keeps
this module free of the model, and testable on constructed timestamps.
"""

from collections.abc import Callable, Sequence

import numpy as np

from .audio_io import QWEN_AUDIO_SAMPLING_RATE


WINDOW_SECONDS = 30.0
# Words that end in the last second of a window (that is not the recording's last) may be cut by its edge: they are
# heard again at the start of the next window instead.
TAIL_SECONDS = 1.0
# A window shorter than this is not worth a model call (and Qwen-Audio needs some audio to hear).
MIN_WINDOW_SECONDS = 0.1
# With a VAD, a pause must last this long to end a window there.
MIN_PAUSE_SECONDS = 0.1
LONG_FORM_METHODS = ("sequential", "vad")

Word = dict
TranscribeWindows = Callable[[list[np.ndarray]], list[list[Word]]]


def _shifted(words: Sequence[Word], offset: float) -> list[Word]:
    return [{**word, "timestamp": (round(word["timestamp"][0] + offset, 2), round(word["timestamp"][1] + offset, 2))}
            for word in words]


def _check_window_result(words, index: int) -> list[Word]:
    if not isinstance(words, list):
        raise TypeError(f"transcribe_windows must return one list of words per window; window {index} got "
                        f"{type(words).__name__}.")
    return words


def sequential_long_form(
    waveforms: Sequence[np.ndarray],
    transcribe_windows: TranscribeWindows,
    window_seconds: float = WINDOW_SECONDS,
    tail_seconds: float = TAIL_SECONDS,
    sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE,
    progress: Callable[[float], None] | None = None,
) -> list[list[Word]]:
    """
    The words of each recording (timestamps on its own time line), transcribed window after window: each window
    starts where the last kept word of the previous one ended. All recordings advance together, one batch per step.
    `progress(seconds)` is called with the audio seconds each step settled.
    """
    if not 0 <= tail_seconds < window_seconds:
        raise ValueError(f"`tail_seconds` must be at least 0 and less than the window ({window_seconds} s), got "
                         f"{tail_seconds}.")
    window = int(round(window_seconds * sampling_rate))
    starts = [0] * len(waveforms)
    results: list[list[Word]] = [[] for _ in waveforms]
    while True:
        active = [index for index, waveform in enumerate(waveforms)
                  if len(waveform) - starts[index] >= MIN_WINDOW_SECONDS * sampling_rate]
        if not active:
            return results
        windows = [waveforms[index][starts[index]: starts[index] + window] for index in active]
        transcribed = transcribe_windows(windows)
        if len(transcribed) != len(windows):
            raise ValueError(f"transcribe_windows returned {len(transcribed)} results for {len(windows)} windows.")
        for index, piece, words in zip(active, windows, transcribed):
            words = _check_window_result(words, index)
            offset = starts[index] / sampling_rate
            is_last = starts[index] + len(piece) >= len(waveforms[index])
            if is_last:
                kept, advance = words, len(piece)
            else:
                limit = len(piece) / sampling_rate - tail_seconds
                kept = [word for word in words if word["timestamp"][1] <= limit]
                # The next window starts at the last kept word's end; with none kept (silence, or one word longer
                # than the window), after the settled part of this one, so that the loop always advances.
                advance = int(kept[-1]["timestamp"][1] * sampling_rate) if kept else int(limit * sampling_rate)
                advance = max(advance, int(MIN_WINDOW_SECONDS * sampling_rate))
            results[index].extend(_shifted(kept, offset))
            starts[index] += advance
            if progress is not None:
                progress(advance / sampling_rate)


def speech_segments(waveform: np.ndarray, sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE) -> list[tuple[int, int]]:
    """(start, end) samples of the speech in `waveform`, by silero-vad (the `vad` extra)."""
    try:
        import torch
        from silero_vad import get_speech_timestamps, load_silero_vad
    except ImportError:
        raise ImportError("long_audio='vad' needs silero-vad: pip install 'transformers-qwen-audio[vad]'") from None
    model = _silero_model(load_silero_vad)
    found = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)), model,
                                  sampling_rate=sampling_rate, min_silence_duration_ms=int(MIN_PAUSE_SECONDS * 1000))
    return [(int(segment["start"]), int(segment["end"])) for segment in found]


_SILERO = {}


def _silero_model(load):
    if "model" not in _SILERO:  # loading takes ~0.5 s; the model keeps no state between calls
        _SILERO["model"] = load()
    return _SILERO["model"]


def windows_at_pauses(
    segments: Sequence[tuple[int, int]],
    total: int,
    window_seconds: float = WINDOW_SECONDS,
    sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE,
) -> list[tuple[int, int]]:
    """
    Windows of at most `window_seconds` that cover every speech segment (sorted (start, end) samples) and end in
    pauses, half-way between two segments; a window opens a little before its first segment (`MIN_PAUSE_SECONDS`
    of context), and a segment longer than a window is cut into window-long pieces. Returns (start, end) samples.
    """
    window = int(round(window_seconds * sampling_rate))
    context = int(MIN_PAUSE_SECONDS * sampling_rate)
    windows: list[tuple[int, int]] = []
    start = last_end = None
    for segment_start, segment_end in segments:
        if start is not None and segment_end - start > window:
            windows.append((start, min((last_end + segment_start) // 2, start + window)))
            start = None
        if start is None:
            start = max(windows[-1][1] if windows else 0, segment_start - context)
        while segment_end - start > window:
            windows.append((start, start + window))
            start += window
        last_end = segment_end
    if start is not None:
        windows.append((start, min(total, last_end + context, start + window)))
    return [(begin, end) for begin, end in windows if end - begin >= MIN_WINDOW_SECONDS * sampling_rate]


def vad_long_form(
    waveforms: Sequence[np.ndarray],
    transcribe_windows: TranscribeWindows,
    window_seconds: float = WINDOW_SECONDS,
    sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE,
    batch_size: int = 8,
    segments_of: Callable[[np.ndarray], list[tuple[int, int]]] | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[list[Word]]:
    """
    The words of each recording, from windows that end in pauses found by a VAD (`segments_of`, by default
    `speech_segments`); every window of every recording is independent, so they are transcribed `batch_size` at a time.
    """
    segments_of = segments_of or (lambda waveform: speech_segments(waveform, sampling_rate))
    planned = [(index, begin, end) for index, waveform in enumerate(waveforms)
               for begin, end in windows_at_pauses(segments_of(waveform), len(waveform), window_seconds, sampling_rate)]
    results: list[list[Word]] = [[] for _ in waveforms]
    for first in range(0, len(planned), batch_size):
        batch = planned[first: first + batch_size]
        transcribed = transcribe_windows([waveforms[index][begin:end] for index, begin, end in batch])
        if len(transcribed) != len(batch):
            raise ValueError(f"transcribe_windows returned {len(transcribed)} results for {len(batch)} windows.")
        for (index, begin, end), words in zip(batch, transcribed):
            results[index].extend(_shifted(_check_window_result(words, index), begin / sampling_rate))
            if progress is not None:
                progress((end - begin) / sampling_rate)
    return results


def long_form_words(
    waveforms: Sequence[np.ndarray],
    transcribe_windows: TranscribeWindows,
    method: str = "sequential",
    **kwargs,
) -> list[list[Word]]:
    """The words of each recording by `method` (`"sequential"` or `"vad"`); see the module's docstring."""
    if method == "sequential":
        return sequential_long_form(waveforms, transcribe_windows, **kwargs)
    if method == "vad":
        return vad_long_form(waveforms, transcribe_windows, **kwargs)
    raise ValueError(f"Unknown long-form method {method!r}; expected one of {', '.join(LONG_FORM_METHODS)}.")


__all__ = ["LONG_FORM_METHODS", "long_form_words", "sequential_long_form", "speech_segments", "vad_long_form",
           "windows_at_pauses"]
