# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The fine-tuning data mixture: audio chat and pure-text chat sources in one run, mixed by weight (the paper mixes
them), like the pre-training mixture (`mixture.py`).

Sources of conversations do not share an Arrow schema (text content is a string in one, a list of parts in another;
clips are paths here and `Audio` structs there), which `interleave_datasets` needs. Each row is therefore stored as
its example in JSON (`messages`, or TRL's conversational `prompt`/`completion`) with its audio parts left without a
source, plus an `audios` column of `{"path", "bytes"}` clips in part order; a format transform turns the JSON back
into the example on access, and the collator fills the audio parts from `audios`, in order, as it does for any
dataset with an `audios` column. `Audio` columns are read at `decode=False` (`datasets` would decode with
torchcodec; the collator decodes with `load_audio`); locations are those of the pre-training sources (a Hub id with
`data_files` reads the repository's files, `data_roots` rewrites prefixes).
"""

import io
import json
import logging
import os
from dataclasses import dataclass, field, fields

import datasets
import numpy as np
from datasets import Features, List, Value, concatenate_datasets, interleave_datasets

from ..audio_io import QWEN_AUDIO_SAMPLING_RATE, load_audio
from ..conversation import validate_conversation
from .mixture import _load_split, _local_base_dir, located, without_audio_decoding


logger = logging.getLogger(__name__)

CLIP_FEATURE = {"bytes": Value("binary"), "path": Value("string")}
CHAT_MIXTURE_FEATURES = Features({"example_json": Value("string"), "audios": List(CLIP_FEATURE)})
CHAT_KEYS = ("messages", "prompt", "completion")


@dataclass
class ChatDatasetSource:
    """One source of the fine-tuning mixture: where (`path`, `name`, `data_dir`, `data_files`, `split`,
    `eval_split`, as for pre-training), its `weight`, the column of the conversations (`messages_column`; or TRL's
    conversational `prompt`/`completion` columns) and of clips for audio parts without a source (`audios_column`)."""

    path: str
    name: str | None = None
    data_dir: str | None = None
    data_files: str | list | dict | None = None
    split: str = "train"
    eval_split: str | None = None
    messages_column: str = "messages"
    audios_column: str | None = None
    weight: float = 1.0
    max_samples: int | None = None

    def __post_init__(self):
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"A chat data source needs a `path`, got {self.path!r}.")
        if not isinstance(self.weight, (int, float)) or not self.weight > 0:
            raise ValueError(f"Source {self.path}: `weight` must be a positive number, got {self.weight!r}.")


@dataclass
class ChatMixtureArguments:
    """A weighted mixture of chat datasets (`chat_datasets:` in the SFT YAML), used instead of `dataset_name`."""

    chat_datasets: list[ChatDatasetSource] = field(
        default_factory=list,
        metadata={"help": "Chat data sources with weights (see `ChatDatasetSource`); set them in the YAML."},
    )

    data_roots: dict | None = field(
        default=None,
        metadata={"help": "Prefix rewrites of every chat source location (as the pre-training mixture's `data_roots`)."},
    )

    def __post_init__(self):
        known = {item.name for item in fields(ChatDatasetSource)}
        sources = []
        for source in self.chat_datasets:
            if isinstance(source, dict):
                unknown = sorted(set(source) - known)
                if unknown:
                    raise ValueError(f"Unknown key(s) {unknown} in chat source {source.get('path')!r}; known: {sorted(known)}.")
                source = ChatDatasetSource(**source)
            sources.append(source)
        self.chat_datasets = sources


def _clip_struct(clip, base_dir: str | None) -> dict:
    """A clip as `{"path", "bytes"}`: paths made absolute, arrays written as WAV bytes."""
    import soundfile

    if isinstance(clip, (str, os.PathLike)):
        path = os.fspath(clip)
        if base_dir and not os.path.isabs(path) and "://" not in path:
            path = os.path.join(base_dir, path)
        return {"path": path, "bytes": None}
    if isinstance(clip, dict) and clip.get("bytes") is not None:
        return {"path": clip.get("path"), "bytes": clip["bytes"]}
    if isinstance(clip, dict) and clip.get("array") is None and clip.get("path"):
        return _clip_struct(clip["path"], base_dir)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(load_audio(clip), dtype=np.float32), QWEN_AUDIO_SAMPLING_RATE, format="WAV")
    return {"path": None, "bytes": buffer.getvalue()}


def _to_chat_rows(source: ChatDatasetSource, base_dir: str | None):
    def convert(row, index):
        clips_column = row.get(source.audios_column) if source.audios_column else None
        if row.get(source.messages_column) is not None:
            parts = {"messages": row[source.messages_column]}
        elif row.get("prompt") is not None and row.get("completion") is not None:
            parts = {"prompt": row["prompt"], "completion": row["completion"]}
        else:
            raise ValueError(f"Source {source.path}, row {index}: no `{source.messages_column}` or prompt/completion.")
        messages = parts.get("messages") or list(parts["prompt"]) + list(parts["completion"])
        canonical = validate_conversation(messages, row=index, clips=clips_column)
        clips = []
        for message in canonical:
            for part in message["content"] if not isinstance(message["content"], str) else []:
                if part["type"] == "audio":
                    clips.append(_clip_struct(part.pop("audio"), base_dir))
        if "messages" in parts:
            example = {"messages": canonical}
        else:
            example = {"prompt": canonical[: len(parts["prompt"])], "completion": canonical[len(parts["prompt"]) :]}
        return {"example_json": json.dumps(example, ensure_ascii=False), "audios": clips}

    return convert


def decode_chat_rows(batch: dict) -> dict:
    """Format transform: the stored JSON back into `messages` or `prompt`/`completion`, with the `audios` column."""
    examples = [json.loads(text) for text in batch["example_json"]]
    # Only the keys the rows have: TRL tells a conversational dataset by its first row's keys.
    present = [key for key in CHAT_KEYS if any(key in example for example in examples)]
    decoded = {key: [example.get(key) for example in examples] for key in present}
    decoded["audios"] = batch["audios"]
    return decoded


def load_chat_source(source: ChatDatasetSource, split: str, streaming: bool = False, data_roots: dict | None = None):
    source = located(source, data_roots)
    dataset = without_audio_decoding(_load_split(source, split, streaming))
    if source.max_samples is not None:
        dataset = dataset.take(source.max_samples) if streaming else dataset.select(
            range(min(source.max_samples, len(dataset))))
    columns = list(dataset.features or {}) if streaming else dataset.column_names
    return dataset.map(
        _to_chat_rows(source, _local_base_dir(source)),
        with_indices=True,
        features=CHAT_MIXTURE_FEATURES,
        remove_columns=columns or None,
    ).select_columns(list(CHAT_MIXTURE_FEATURES))


def load_chat_mixture(mixture: ChatMixtureArguments, seed: int = 42, streaming: bool = False) -> datasets.DatasetDict:
    """The sources mixed by weight (`train`) and their held-out splits concatenated (`test`), rows decoded on
    access to the collator's formats."""
    if not mixture.chat_datasets:
        raise ValueError("The chat mixture has no sources: set `chat_datasets:` in the recipe YAML.")
    parts = [load_chat_source(source, source.split, streaming, mixture.data_roots) for source in mixture.chat_datasets]
    weights = [source.weight for source in mixture.chat_datasets]
    train = parts[0] if len(parts) == 1 else interleave_datasets(
        parts, probabilities=[weight / sum(weights) for weight in weights], seed=seed, stopping_strategy="all_exhausted"
    )
    splits = {"train": train}
    held_out = [
        load_chat_source(source, source.eval_split, streaming, mixture.data_roots)
        for source in mixture.chat_datasets if source.eval_split
    ]
    if held_out:
        splits["test"] = concatenate_datasets(held_out) if len(held_out) > 1 else held_out[0]
    if streaming:
        return datasets.IterableDatasetDict({name: data.map(decode_chat_rows, batched=True) for name, data in splits.items()})
    logger.info(f"Chat mixture: {', '.join(f'{name}={len(data)} rows' for name, data in splits.items())}")
    return datasets.DatasetDict({name: data.with_transform(decode_chat_rows) for name, data in splits.items()})


__all__ = ["ChatDatasetSource", "ChatMixtureArguments", "decode_chat_rows", "load_chat_mixture", "load_chat_source"]
