# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Checks on a checkpoint's weight files that turn deep loader errors into one clear message naming the file.

safetensors reports a truncated or corrupted file as "Error while deserializing header: ..." without its name, and
torch refuses a pickle holding more than tensors with a text that suggests `weights_only=False` (which would run the
pickle's code). `verify_weight_files` opens every safetensors header of a local folder before loading (cheap: a few
bytes per file), and `explain_load_error` rewrites what a loader raised.
"""

import json
import os
import pickle
from pathlib import Path


class CorruptCheckpointError(ValueError):
    """A weight file of a checkpoint is missing, truncated, corrupted, or a refused pickle."""


def weight_files(folder: str | os.PathLike) -> list[Path]:
    """The safetensors files a loader would read from `folder`: those its index names, else `*.safetensors`."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (ValueError, KeyError, TypeError) as error:
            raise CorruptCheckpointError(f"unreadable safetensors index {index}: {error}") from None
        return [folder / name for name in sorted(set(weight_map.values()))]
    return sorted(folder.glob("*.safetensors"))


def verify_weight_files(folder: str | os.PathLike) -> None:
    """Raises `CorruptCheckpointError` naming the first safetensors file of `folder` that is missing, truncated or
    corrupted. Reads only the headers (safetensors checks that they cover the whole file)."""
    from safetensors import SafetensorError, safe_open

    for path in weight_files(folder):
        if not path.is_file():
            raise CorruptCheckpointError(f"weight file {path} is missing (named by {path.parent / 'model.safetensors.index.json'})")
        try:
            with safe_open(path, framework="pt"):
                pass
        except (SafetensorError, OSError) as error:
            raise CorruptCheckpointError(f"corrupted or truncated safetensors file {path}: {error}") from None


def pickle_files(folder: str | os.PathLike) -> list[Path]:
    return sorted(Path(folder).glob("*.bin")) if Path(folder).is_dir() else []


def explain_load_error(error: BaseException, source: str) -> Exception | None:
    """A one-line replacement for an error raised while loading checkpoint `source`, or None when not one of ours."""
    from safetensors import SafetensorError

    if isinstance(error, pickle.UnpicklingError):
        names = ", ".join(str(path) for path in pickle_files(source)) or f"the pickle weights of {source}"
        if "weights only" not in str(error).lower():
            return CorruptCheckpointError(f"corrupted or truncated pickle weights {names}: {error}")
        # Never repeat torch's advice to pass weights_only=False: that would execute the pickle's code.
        return CorruptCheckpointError(
            f"refused to load {names}: the pickle holds objects other than tensors, and unpickling them could run "
            "code. Use a safetensors version of this checkpoint."
        )
    if isinstance(error, SafetensorError):
        return CorruptCheckpointError(f"a safetensors file of {source} is corrupted or truncated: {error}")
    return None
