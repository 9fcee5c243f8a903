# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Folders of audio clips as the manual-download datasets unpack, read into rows without a metadata file:

- a class per folder (CochlScene: `Train/Bus/Bus_user0009_14897252_005.wav`): `label_from: folder`;
- the class as the file name's last `_` part (VocalSound: `audio_16k/f0003_0_cough.wav`): `label_from: file_name_suffix`,
  with the split's members listed by a datafile (`datafiles/tr.json`, `{"data": [{"wav": ".../f0003_0_cough.wav"}]}`,
  matched by file name since its paths are those of the machine that wrote it);
- transcripts in one text file, `<utterance id> <text>` a line, the id being the clip's file stem (AISHELL-1:
  `transcript/aishell_transcript_v0.8.txt` for `wav/train/S0002/BAC009S0002W0122.wav`).

Each row is `{"audio": {"path", "bytes": None}, "file_name"}` plus `label` or `text`; clips are never opened here.
"""

import glob
import json
import logging
import os

from datasets import Dataset, Features, IterableDataset, Value


logger = logging.getLogger(__name__)

LABEL_SOURCES = ("folder", "file_name_suffix")


def clip_label(path: str, label_from: str) -> str:
    """The class of a clip: its folder's name, or the last `_`-separated part of its file stem."""
    if label_from == "folder":
        return os.path.basename(os.path.dirname(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    if "_" not in stem:
        raise ValueError(f"{path}: `label_from: file_name_suffix` needs file names ending in `_<label>`.")
    return stem.rsplit("_", 1)[1]


def read_transcripts(path: str) -> dict[str, str]:
    """`<utterance id> <text>` lines (the text keeps its inner spaces) as `{id: text}`."""
    transcripts = {}
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            utterance, _, text = line.strip().partition(" ")
            if utterance and not text.strip():
                raise ValueError(f"{path}, line {number}: `{utterance}` has no transcript.")
            if utterance:
                transcripts[utterance] = text.strip()
    return transcripts


def read_clip_list(path: str) -> set[str]:
    """The file names a datafile lists (`{"data": [{"wav": path}, ...]}`, the AST recipes' format)."""
    with open(path, encoding="utf-8") as file:
        listing = json.load(file)
    if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
        raise ValueError(f"{path}: expected a datafile `{{\"data\": [{{\"wav\": ...}}, ...]}}`.")
    return {os.path.basename(entry["wav"]) for entry in listing["data"]}


def clip_rows(root: str, pattern: str, label_from: str | None = None, transcripts: str | None = None,
              clip_list: str | None = None) -> list[dict]:
    """The rows of the clips `pattern` matches under `root` (a glob; `**` recurses), sorted by path."""
    if label_from is not None and label_from not in LABEL_SOURCES:
        raise ValueError(f"`label_from` must be one of {LABEL_SOURCES}, got {label_from!r}.")
    paths = sorted(glob.glob(os.path.join(root, pattern), recursive=True))
    if not paths:
        raise ValueError(f"No audio files match {pattern!r} under {root}.")
    if clip_list is not None:
        members = read_clip_list(os.path.join(root, clip_list))
        paths = [path for path in paths if os.path.basename(path) in members]
        if len(paths) < len(members):
            logger.warning(f"{clip_list}: {len(members) - len(paths)} of its {len(members)} clips are not under {root}.")
    texts = read_transcripts(os.path.join(root, transcripts)) if transcripts is not None else None
    rows = []
    for path in paths:
        row = {"audio": {"bytes": None, "path": os.path.abspath(path)}, "file_name": os.path.relpath(path, root)}
        if label_from is not None:
            row["label"] = clip_label(path, label_from)
        if texts is not None:
            text = texts.get(os.path.splitext(os.path.basename(path))[0])
            if text is None:
                continue
            row["text"] = text
        rows.append(row)
    if texts is not None:
        # AISHELL-1 ships a few clips without a transcript line; they have nothing to learn.
        logger.info(f"{root}/{pattern}: {len(rows)} of {len(paths)} clips have a transcript in {transcripts}.")
    return rows


def load_clip_folder(root: str, pattern: str, streaming: bool = False, **options) -> Dataset | IterableDataset:
    """`clip_rows` as a dataset (an iterable one when streaming, like the other sources)."""
    rows = clip_rows(root, pattern, **options)
    if not rows:
        raise ValueError(f"None of the clips {pattern!r} under {root} has a transcript.")
    features = Features({
        "audio": {"bytes": Value("binary"), "path": Value("string")},
        "file_name": Value("string"),
        **{column: Value("string") for column in ("label", "text") if column in rows[0]},
    })
    if streaming:
        return IterableDataset.from_generator(lambda: iter(rows), features=features)
    return Dataset.from_list(rows, features=features)


__all__ = ["LABEL_SOURCES", "clip_label", "clip_rows", "load_clip_folder", "read_clip_list", "read_transcripts"]
