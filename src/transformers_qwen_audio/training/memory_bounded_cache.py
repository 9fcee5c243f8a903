# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Values kept between epochs within a memory budget, the least recently used dropped first: what the training caches
(decoded clips, a frozen encoder's audio embeddings) share. `functools.lru_cache` bounds entries, not bytes, hence
this small class.
"""

from collections import OrderedDict
from typing import Any


class MemoryBoundedCache:
    """Values (NumPy arrays or torch tensors: anything with `nbytes`) by key, up to `max_bytes` in all."""

    def __init__(self, max_bytes: int, what: str = "cache"):
        if max_bytes < 0:
            raise ValueError(f"The {what} needs a size of 0 or more bytes, got {max_bytes}.")
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._values: OrderedDict[Any, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key) -> bool:
        return key in self._values

    def get(self, key):
        value = self._values.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._values.move_to_end(key)
        return value

    def put(self, key, value):
        """Keeps `value` if it fits the budget at all (dropping the least recently used ones) and returns it."""
        size = value.nbytes
        if size > self.max_bytes or key in self._values:
            return value
        while self.bytes + size > self.max_bytes:
            _, dropped = self._values.popitem(last=False)
            self.bytes -= dropped.nbytes
        self._values[key] = value
        self.bytes += size
        return value


__all__ = ["MemoryBoundedCache"]
