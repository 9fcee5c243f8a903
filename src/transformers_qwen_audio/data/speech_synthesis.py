# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Single words spoken by eSpeak NG, driven through the library that the `espeakng-loader` wheel bundles.

No system package is needed: the wheel ships `libespeak-ng` and its data. There is no Python binding in the HF stack
or on PyPI that exposes voice variants, rate and pitch without a system install, so the few C calls we need are
declared here with `ctypes` (the API of `speak_lib.h`).
"""

import ctypes
import threading
from dataclasses import dataclass

import numpy as np


# speak_lib.h constants.
_AUDIO_OUTPUT_RETRIEVAL = 1
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE, _ESPEAK_VOLUME, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 2, 3, 4
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True)
class Voice:
    """One way of speaking: an English accent, a voice variant (timbre), a rate (words/min) and a pitch (0-100)."""

    accent: str
    variant: str
    rate: int
    pitch: int

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def key(self) -> str:
        return f"{self.accent}+{self.variant}@{self.rate}/{self.pitch}"


class ESpeakSynthesizer:
    """Synthesises text to a float32 waveform at `self.sampling_rate` (22050 Hz) with a given [`Voice`].

    One instance per process (`ESpeakSynthesizer.shared()`): libespeak-ng keeps global state and must not be
    initialised twice.
    """

    _lock = threading.Lock()  # one synthesis at a time per process
    _shared = None

    @classmethod
    def shared(cls) -> "ESpeakSynthesizer":
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
        return cls._shared

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as error:
            raise ImportError(
                "Synthesising the tiny dataset's speech needs the `espeakng-loader` wheel: pip install espeakng-loader"
            ) from error
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        # eSpeak NG draws its noise sources (breath, frication) from libc's rand(): seeding it makes renderings
        # reproducible.
        self._libc = ctypes.CDLL(None)
        data_path = espeakng_loader.get_data_path().encode()
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self.sampling_rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_RETRIEVAL, 0, data_path, 0)
        if self.sampling_rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise from {data_path.decode()}")
        self._chunks: list[np.ndarray] = []

        def collect(samples, num_samples, events):
            if num_samples > 0:
                self._chunks.append(np.ctypeslib.as_array(samples, shape=(num_samples,)).copy())
            return 0

        self._callback = _SYNTH_CALLBACK(collect)  # kept on self: ctypes must not free it
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]

    def synthesize(self, text: str, voice: Voice, seed: int = 0) -> np.ndarray:
        with self._lock:
            self._libc.srand(ctypes.c_uint(seed))
            if self._lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice.name!r}")
            self._lib.espeak_SetParameter(_ESPEAK_RATE, voice.rate, 0)
            self._lib.espeak_SetParameter(_ESPEAK_PITCH, voice.pitch, 0)
            self._lib.espeak_SetParameter(_ESPEAK_VOLUME, 100, 0)
            self._chunks = []
            encoded = text.encode("utf-8") + b"\0"
            buffer = ctypes.create_string_buffer(encoded)
            status = self._lib.espeak_Synth(buffer, len(encoded), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            if status != 0:
                raise RuntimeError(f"eSpeak NG failed to synthesise {text!r} (status {status})")
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32) / 32768.0
