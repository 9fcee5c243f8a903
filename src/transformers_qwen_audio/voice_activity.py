# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Where the speech is, by silero-vad (the `vad` extra; its wheel ships its model): for a whole recording
(`speech_segments`) and for a stream as it arrives (`StreamingSpeechSegments`). Both hear the same frames from the
same starting state and decide with the same rule, so a stream cut into windows live is cut where the whole recording
would be (`long_form.LiveTranscript` and `long_form.vad_long_form`).
"""

import copy
import threading

import numpy as np

from .audio_io import QWEN_AUDIO_SAMPLING_RATE


# A pause must last this long to end a speech segment (and so, possibly, a window).
MIN_PAUSE_SECONDS = 0.1
# Speech shorter than this is dropped as noise. silero-vad's default, 0.25 s, drops short words said alone ("the",
# "up": 0.15-0.25 s): the main job's model lost them in long-form `vad` (validation recordings, 3 s windows: WER
# 0.114 against the text with 0.25 s; 0.063 with 0.15, 0.1 or 0.05 s; 0.070 utterance by utterance).
MIN_SPEECH_SECONDS = 0.1
VAD_INSTALL_HINT = "pip install 'transformers-qwen-audio[vad]'"

_SILERO = {}
_SILERO_LOCK = threading.Lock()


def vad_available() -> bool:
    """Whether silero-vad (with `get_speech_timestamps_from_probs`, 6.2.2 or later) can be imported."""
    try:
        from silero_vad import get_speech_timestamps_from_probs  # noqa: F401
    except ImportError:
        return False
    return True


def _silero():
    try:
        import torch
        from silero_vad import get_speech_timestamps_from_probs, load_silero_vad
    except ImportError:
        raise ImportError(f"Voice-activity detection (long_audio='vad', live transcription cut at pauses) needs "
                          f"silero-vad 6.2.2 or later: {VAD_INSTALL_HINT}") from None
    if "model" not in _SILERO:  # loading takes ~0.1 s
        _SILERO["model"] = load_silero_vad()
    return torch, _SILERO["model"], get_speech_timestamps_from_probs


def _frame_samples(sampling_rate: int) -> int:
    if sampling_rate not in (8000, 16000):
        raise ValueError(f"silero-vad hears 8 or 16 kHz audio, got {sampling_rate} Hz.")
    return 512 if sampling_rate == 16000 else 256


def _segments(probabilities: list[float], samples: int, sampling_rate: int, decide) -> list[tuple[int, int]]:
    found = decide(probabilities, sampling_rate=sampling_rate, audio_length_samples=samples,
                   min_silence_duration_ms=int(MIN_PAUSE_SECONDS * 1000),
                   min_speech_duration_ms=int(MIN_SPEECH_SECONDS * 1000))
    return [(int(segment["start"]), int(segment["end"])) for segment in found]


def _probabilities(model, torch, waveform: np.ndarray, frame: int, sampling_rate: int) -> list[float]:
    """Speech probability per frame; the last one zero-padded, as silero-vad's `get_speech_timestamps` pads it."""
    audio = np.ascontiguousarray(waveform, dtype=np.float32)
    if len(audio) % frame:
        audio = np.concatenate([audio, np.zeros(frame - len(audio) % frame, np.float32)])
    frames = torch.from_numpy(audio).reshape(-1, frame)
    with torch.no_grad():
        return [model(chunk, sampling_rate).item() for chunk in frames]


def speech_segments(waveform: np.ndarray, sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE) -> list[tuple[int, int]]:
    """(start, end) samples of the speech in `waveform`."""
    torch, model, decide = _silero()
    frame = _frame_samples(sampling_rate)
    with _SILERO_LOCK:  # the model carries its recurrent state from frame to frame: one recording at a time
        model.reset_states()
        probabilities = _probabilities(model, torch, waveform, frame, sampling_rate)
    return _segments(probabilities, len(waveform), sampling_rate, decide)


class StreamingSpeechSegments:
    """
    silero-vad over a stream: `push(samples)` hears every whole frame as it comes, with a model state of its own (one
    per stream); `segments()` gives the speech so far, (start, end) samples on the stream's time line, and
    `segments(final=True)` at the stream's end, its last part frame included. The segments of the whole stream are
    those `speech_segments` finds on the same audio; a segment still open at the end of what has come may grow, and
    one shorter than silero's minimum may be dropped once more has come.
    """

    def __init__(self, sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE):
        self.torch, shared, self._decide = _silero()
        self.sampling_rate = sampling_rate
        self.frame = _frame_samples(sampling_rate)
        with _SILERO_LOCK:
            self.model = copy.deepcopy(shared)  # ~5 ms: its own recurrent state
        self.model.reset_states()
        self.probabilities: list[float] = []
        self.pending = np.zeros(0, np.float32)  # the samples of the next, incomplete frame
        self.samples = 0

    def push(self, samples: np.ndarray) -> None:
        self.pending = np.concatenate([self.pending, np.asarray(samples, dtype=np.float32)])
        self.samples += len(samples)
        whole = len(self.pending) - len(self.pending) % self.frame
        if whole:
            self.probabilities += _probabilities(self.model, self.torch, self.pending[:whole], self.frame,
                                                 self.sampling_rate)
            self.pending = self.pending[whole:]

    def segments(self, final: bool = False) -> list[tuple[int, int]]:
        if final and len(self.pending):  # the stream has ended: its last part frame is heard, once
            self.probabilities += _probabilities(self.model, self.torch, self.pending, self.frame, self.sampling_rate)
            self.pending = self.pending[:0]
        heard = self.samples if final else len(self.probabilities) * self.frame
        return _segments(self.probabilities, heard, self.sampling_rate, self._decide)


__all__ = ["MIN_PAUSE_SECONDS", "StreamingSpeechSegments", "speech_segments", "vad_available"]
