# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Decoded clips kept between epochs, within a memory budget.

A training run reads each clip of a small dataset many times (the tiny pre-training recipe: 40,000 reads of 4,000
clips), and decoding one (a FLAC file of a few seconds, `audio_io.load_audio`) costs about 1.8 ms on the 2-core
machine: 72 s of stage 1 and 38 s of stage 2 went to decoding the same files again. Only clips read from a file
path are kept: a path names the same samples for the whole run, where `{"bytes": ...}` values of different rows may
share a file name. `datasets` caches Arrow tables, not decoded audio.
"""

import os

import numpy as np

from .memory_bounded_cache import MemoryBoundedCache


# The recipes' `decoded_clip_cache_mb` (pre-training's mixture arguments and SFT's audio arguments).
DECODED_CLIP_CACHE_HELP = (
    "Keep the clips decoded from files in memory, up to this many megabytes, so that later epochs do not decode them "
    "again (0: decode every read). The tiny recipes set 1024 (their clips take ~700 MB)."
)


class DecodedClipCache(MemoryBoundedCache):
    """
    Waveforms by the path they were decoded from, up to `max_bytes` in all; the least recently used go first. The
    waveforms handed out are read-only (one array serves every read of its clip).
    """

    def __init__(self, max_bytes: int):
        super().__init__(max_bytes, what="decoded clip cache")

    @staticmethod
    def key(clip, base_dir=None) -> str | None:
        """The file a clip is read from, as one string, or None for a clip that is not a plain local path (bytes,
        arrays, URLs)."""
        if isinstance(clip, dict):
            if clip.get("bytes") is not None or set(clip) - {"path", "bytes"}:
                return None
            clip = clip.get("path")
        if not isinstance(clip, (str, os.PathLike)):
            return None
        path = os.fspath(clip)
        if "://" in path:
            return None
        if base_dir is not None and not os.path.isabs(path):
            path = os.path.join(os.fspath(base_dir), path)
        return os.path.abspath(path)

    def put(self, key: str, waveform: np.ndarray) -> np.ndarray:
        """Keeps `waveform` (if it fits the budget at all) and returns it, read-only."""
        waveform.flags.writeable = False
        return super().put(key, waveform)


__all__ = ["DECODED_CLIP_CACHE_HELP", "DecodedClipCache"]
