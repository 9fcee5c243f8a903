# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Which checkpoint a training run resumes from, checked before `Trainer.train` reads it.

`Trainer` loads whatever the newest `checkpoint-N` folder holds: a checkpoint whose tensor bytes were overwritten
resumes into `train_loss 0.0`, `eval_loss nan` and a saved model of non-finite weights with exit status 0, and a
truncated `model.safetensors` fails with a safetensors error that names no file. Here every checkpoint is checked
(the trainer state parses; the weight files are complete, their tensors finite; the optimizer state loads with
`weights_only=True` and is finite), newest first: a damaged one is named in the log and the previous complete one is
used, and when none is complete the run stops with a message naming the damaged files.
"""

import json
import logging
import math
import os
import re
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..checkpoint_files import CorruptCheckpointError, verify_weight_files, weight_files


logger = logging.getLogger(__name__)

CHECKPOINT_FOLDER = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
TRAINER_STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"


class DamagedCheckpointError(ValueError):
    """A training checkpoint is incomplete or holds non-finite values; the message names the file."""


def checkpoint_folders(output_dir: str | os.PathLike) -> list[Path]:
    """The `checkpoint-N` folders of `output_dir`, newest (largest N) first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in output_dir.iterdir()
             if path.is_dir() and (match := CHECKPOINT_FOLDER.match(path.name))]
    return [path for _, path in sorted(found, reverse=True)]


def _check_finite(tensor, where: str) -> None:
    import torch

    if tensor.is_floating_point() or tensor.is_complex():
        if not bool(torch.isfinite(tensor).all()):
            raise DamagedCheckpointError(f"{where} holds NaN or infinite values")


def _check_weights(folder: Path) -> None:
    from safetensors import safe_open

    try:
        verify_weight_files(folder)
    except CorruptCheckpointError as error:
        raise DamagedCheckpointError(str(error)) from None
    files = weight_files(folder)
    if not files:
        raise DamagedCheckpointError(f"{folder} holds no safetensors weights")
    for path in files:
        with safe_open(path, framework="pt") as weights:
            for name in weights.keys():  # one tensor at a time: memory stays at the largest tensor
                _check_finite(weights.get_tensor(name), f"tensor {name!r} of {path}")


def _check_optimizer(path: Path) -> None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001 - truncated zip, refused pickle, ...: all mean "damaged"
        raise DamagedCheckpointError(f"optimizer state {path} cannot be read: {' '.join(str(error).split())[:200]}")
    stack = [state]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            _check_finite(item, f"optimizer state {path}")
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise DamagedCheckpointError(f"optimizer state {path} holds a non-finite setting ({item})")


def check_training_checkpoint(folder: str | os.PathLike) -> None:
    """Raises `DamagedCheckpointError` naming the file when `folder` cannot be resumed from safely."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DamagedCheckpointError(f"checkpoint folder {folder} does not exist")
    state = folder / TRAINER_STATE_FILE
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DamagedCheckpointError(f"trainer state {state} is missing or unreadable ({error})") from None
    _check_weights(folder)
    optimizer = folder / OPTIMIZER_FILE
    if optimizer.exists():
        _check_optimizer(optimizer)


def resumable_checkpoint(output_dir: str | os.PathLike, requested: str | os.PathLike | None = None) -> str | None:
    """
    The checkpoint to resume from: `requested` (`--resume_from_checkpoint`) after checking it, else the newest
    complete `checkpoint-N` of `output_dir` (damaged newer ones are named in the log and skipped), else None when
    there is none. Raises `DamagedCheckpointError` when the requested one, or every one found, is damaged.
    """
    if requested is not None:
        check_training_checkpoint(requested)
        return str(requested)
    damaged = []
    for folder in checkpoint_folders(output_dir):
        try:
            check_training_checkpoint(folder)
        except DamagedCheckpointError as error:
            logger.warning("Skipping damaged checkpoint %s: %s", folder, error)
            damaged.append(str(error))
            continue
        if damaged:
            logger.warning("Resuming from %s, the newest complete checkpoint.", folder)
        return str(folder)
    if damaged:
        raise DamagedCheckpointError(
            f"no complete checkpoint to resume from in {output_dir}: " + "; ".join(damaged)
            + ". Remove the damaged folders to start over, or restore them."
        )
    return None


__all__ = ["DamagedCheckpointError", "check_training_checkpoint", "checkpoint_folders", "resumable_checkpoint"]
