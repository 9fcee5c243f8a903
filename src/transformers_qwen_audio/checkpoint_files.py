# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
A checkpoint's files: reading them safely, and publishing a checkpoint folder so that a crash never leaves half of one.

Reading. safetensors reports a truncated or corrupted file as "Error while deserializing header: ..." without its
name, and torch refuses a pickle holding more than tensors with a text that suggests `weights_only=False` (which would run the
pickle's code). `verify_weight_files` opens every safetensors header of a local folder before loading (cheap: a few
bytes per file), and `explain_load_error` rewrites what a loader raised.

Publishing (`staged_output`, used by convert and merge-lora). A folder DST is written into a staging folder
`.DST.partial-*` beside it and renamed into place only once complete; an existing DST is moved aside
(`.DST.previous-*`) and deleted only after the new one is in place. `clean_stale_staging` removes what an
interrupted run left (or restores a DST it had moved aside), and refuses to run beside a live writer of the same DST.
"""

import contextlib
import errno
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import torch
from transformers.utils import logging


logger = logging.get_logger(__name__)

# The dtypes a checkpoint can be loaded or written in ("auto": as stored), and the other names users give them.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16", "float": "float32"}
STAGING_KINDS = ("partial", "previous")


class CorruptCheckpointError(ValueError):
    """A weight file of a checkpoint is missing, truncated, corrupted, or a refused pickle."""


class OutputInUseError(ValueError):
    """Another live process is writing the same output folder."""


def dtype_name(value: str) -> str:
    """The key of `DTYPES` that `value` names (an alias such as fp16 included, any case); `ValueError` otherwise."""
    name = DTYPE_ALIASES.get(value.lower(), value.lower()) if isinstance(value, str) else value
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {value!r}")
    return name


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


# ----------------------------------------------------------------------------------------------------------------
# Crash-safe publishing of a folder
# ----------------------------------------------------------------------------------------------------------------
def _lock(folder: Path):
    """An exclusive lock on `folder` held while this process lives (the kernel drops it when the process dies, even
    killed): a staging folder whose lock can be taken belongs to no running writer. None where flock is missing
    (Windows)."""
    try:
        import fcntl
    except ImportError:
        return None
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise
    return descriptor


def _unlock(descriptor) -> None:
    if descriptor is not None:
        os.close(descriptor)


def staging_folders(dst: Path) -> list[Path]:
    return sorted(path for kind in STAGING_KINDS for path in dst.parent.glob(f".{dst.name}.{kind}-*") if path.is_dir())


def clean_stale_staging(dst: Path, job: str) -> list[str]:
    """Removes the staging folders that interrupted runs of `job` (a noun: "conversion", "merge") into `dst` left,
    or restores a DST one had moved aside (`.DST.previous-*` while DST is missing). Raises `OutputInUseError`
    beside a live run into the same DST. Returns what was done, one line each (also logged as warnings)."""
    report = []
    for folder in staging_folders(dst):
        try:
            descriptor = _lock(folder)
        except BlockingIOError:
            raise OutputInUseError(f"another {job} into {dst} is running (its staging folder {folder} is in use)") from None
        except OSError as error:
            report.append(f"could not inspect the staging folder {folder} of an earlier {job} ({error.strerror}): remove it by hand")
            continue
        if descriptor is None:  # no locks: cannot tell whether a run is live, so only report
            report.append(f"staging folder {folder} of an earlier or running {job} into {dst}: remove it if none is running")
            continue
        try:
            moved_aside = folder / dst.name
            if folder.name.startswith(f".{dst.name}.previous-") and moved_aside.is_dir() and not dst.exists():
                os.replace(moved_aside, dst)
                report.append(f"restored {dst} from {folder}, where an interrupted {job} had moved it aside")
            shutil.rmtree(folder)
            report.append(f"removed {folder}, left by an interrupted {job} into {dst}")
        except OSError as error:
            report.append(f"could not remove {folder}, left by an interrupted {job} ({error}): remove it by hand")
        finally:
            _unlock(descriptor)
    for line in report:
        logger.warning(line)
    return report


def _make_staging(dst: Path, kind: str) -> Path:
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{dst.name}.{kind}-", dir=dst.parent))
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise PermissionError(f"cannot write into {dst.parent} ({error.strerror}): choose a writable DST") from None
        raise


def _publish_permissions_and_sync(folder: Path) -> None:
    """Files get the permissions the umask gives (safetensors writes 0600), and reach the disk before the rename
    that makes the folder visible as DST."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)  # mkdtemp creates 0700
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems cannot sync folders
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def staged_output(dst: Path):
    """Yields a locked staging folder beside DST; on success its files are synced and it replaces DST, on any failure
    (KeyboardInterrupt included) it is removed and DST stays as it was. Every writer of a checkpoint folder uses it."""
    staging = _make_staging(dst, "partial")
    lock = _lock(staging)
    try:
        yield staging
        _publish_permissions_and_sync(staging)
        replace_directory(staging, dst)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        _unlock(lock)


def replace_directory(staging: Path, dst: Path) -> None:
    """Moves the complete `staging` folder to `dst`; an existing `dst` is moved aside first and deleted only once the
    new one is in place (a kill in between leaves it in `.DST.previous-*`, which the next run restores)."""
    if not dst.exists():
        os.replace(staging, dst)
        _fsync_folder(dst.parent)
        return
    previous = _make_staging(dst, "previous")
    lock = _lock(previous)
    try:
        os.replace(dst, previous / dst.name)
        os.replace(staging, dst)
        _fsync_folder(dst.parent)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        _unlock(lock)
