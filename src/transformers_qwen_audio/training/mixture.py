# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The multitask pre-training data mixture: several audio datasets, each with its columns and task tags, turned into
one stream of `{"audio", "prompt", "completion", "transcript", "duration", "length", "source", "row"}` rows and mixed
by weight.

Laid out like TRL's `DatasetMixtureConfig` (a `datasets:` list in the recipe YAML), with what audio needs on top:
which columns hold the audio, the text and the word timestamps, the task tags of the source, and a sampling weight.
Sources are mixed with `datasets.interleave_datasets(probabilities=...)`; audio columns stay `Audio(decode=False)`
(the collator decodes them with `audio_io.load_audio`: `datasets`' own decoding needs torchcodec); clips longer than
the 30 s window and empty targets are filtered out, with counts in the log.
"""

import io
import logging
import os
from dataclasses import dataclass, field, fields

import datasets
from datasets import Audio, Features, Value, concatenate_datasets, interleave_datasets, load_dataset

from ..audio_io import QWEN_AUDIO_SAMPLING_RATE, load_audio
from ..task_prompts import QUESTION_TASKS
from ..word_timestamps import MAX_TIMESTAMP_SECONDS, word_separator, words_as_list
from .targets import TaskTags, build_pretraining_example, first_reference


logger = logging.getLogger(__name__)

AUDIOFOLDER_METADATA = ("metadata.jsonl", "metadata.csv")
LOCAL_DATA_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow"}
# One row of the mixture. The audio is the `{"bytes", "path"}` struct of `Audio(decode=False)`, kept as a plain struct
# because encoding `Audio` values in `datasets` needs torchcodec. `length` (10 ms log-mel frames of the clip) is what `train_sampling_strategy:
# group_by_length` sorts by: the encoder's cost follows the clip's length, since it trims to the clip. `source` (the
# source's label) and `row` (the row's index in that source's split) name a row that fails later, in the collator.
MIXTURE_FEATURES = Features(
    {
        "audio": {"bytes": Value("binary"), "path": Value("string")},
        "prompt": Value("string"),
        "completion": Value("string"),
        "transcript": Value("string"),
        "duration": Value("float64"),
        "length": Value("int64"),
        "source": Value("string"),
        "row": Value("int64"),
    }
)


@dataclass(kw_only=True)
class AudioDatasetSource(TaskTags):
    """
    One source of the pre-training mixture (one entry of the YAML's `datasets:` list).

    Where the data is: `path` is a Hub dataset id, a local folder (`load_dataset` folder: parquet/jsonl files, a
    `README.md` with configs, or an `audiofolder` of clips + `metadata.csv`/`metadata.jsonl`), a local
    `.json`/`.jsonl`/`.csv`/`.parquet` file, or a builder name (`audiofolder`, `parquet`, ...) with `data_dir` /
    `data_files`. `name` is the dataset config, `split` the training split, `eval_split` an optional held-out split.

    Which columns: `audio_column` (an `Audio` column, a path string, or `{"path", "bytes"}`; relative paths are
    resolved against the local dataset's folder), `text_column` (the target text), `words_column` (word timestamps,
    a list of `{"text"|"word", "start", "end"}`, used when `timestamps: true`), `question_column` (AQA questions),
    `duration_column` (clip lengths in seconds; read from the audio file headers when absent).

    Task tags (see `task_prompts.build_task_prompt`): `task`, `audio_language`, `output_language`, `timestamps`,
    `itn` (true: `<|itn|>`, false: `<|wo_itn|>`, null: neither), `caption_style` (the task-specific tag of
    captioning: `clotho`, `audiocaps`, `plain`, `audioset_ontology`).

    `source_name`: what the rows' `source` column and the log call the source (default: `path[/name]`).

    `weight`: relative sampling probability in the mixture. `max_samples`: keep only the first N rows (smoke runs).
    `encoder_ctc`: whether the rows carry a `transcript` for the auxiliary encoder CTC loss (`encoder_ctc_weight`);
    default: transcription sources (the target is the audio's own words, in order), not translation or the others.
    """

    path: str
    name: str | None = None
    data_dir: str | None = None
    data_files: str | list | dict | None = None
    split: str = "train"
    eval_split: str | None = None
    source_name: str | None = None
    audio_column: str = "audio"
    text_column: str | None = "text"
    words_column: str | None = None
    question_column: str | None = None
    duration_column: str | None = None
    weight: float = 1.0
    max_samples: int | None = None
    encoder_ctc: bool | None = None
    # The task tags are TaskTags' fields (one declaration): task, audio_language, output_language, timestamps, itn,
    # caption_style.

    def __post_init__(self):
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"A data source needs a `path` (Hub id, local folder or file), got {self.path!r}.")
        if not isinstance(self.weight, (int, float)) or not self.weight > 0:
            raise ValueError(f"Source {self.path}: `weight` must be a positive number, got {self.weight!r}.")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"Source {self.path}: `max_samples` must be positive, got {self.max_samples!r}.")
        if self.timestamps and not self.words_column:
            raise ValueError(f"Source {self.path}: `timestamps: true` needs a `words_column` with word times.")
        if not self.timestamps and not self.text_column:
            raise ValueError(f"Source {self.path}: set `text_column` (the target text).")
        if self.task in QUESTION_TASKS and not self.question_column:
            raise ValueError(f"Source {self.path}: the question task needs a `question_column`.")
        try:
            self.tags.validate()
        except ValueError as error:
            raise ValueError(f"Source {self.path}: {error}") from None

    @property
    def has_transcript(self) -> bool:
        if self.encoder_ctc is not None:
            return self.encoder_ctc
        return self.task == "transcribe" and self.output_language in (None, self.audio_language)

    @property
    def tags(self) -> TaskTags:
        return TaskTags(**{tag.name: getattr(self, tag.name) for tag in fields(TaskTags)})

    @property
    def label(self) -> str:
        return self.source_name or "/".join(part for part in (self.path, self.name) if part)


@dataclass
class AudioMixtureArguments:
    """
    The pre-training data: a weighted mixture of audio sources.

    YAML:

    ```yaml
    datasets:
      - path: openslr/librispeech_asr
        name: clean
        split: train.100
        text_column: text
        task: transcribe
        audio_language: en
        itn: false
        weight: 2.0
      - path: data/my_captions          # a local folder
        task: caption
        caption_style: clotho
        text_column: caption
    streaming: false
    ```
    """

    datasets: list[AudioDatasetSource] = field(
        default_factory=list, metadata={"help": "The data sources (see `AudioDatasetSource`); set them in the YAML."}
    )
    streaming: bool = field(default=False, metadata={"help": "Stream the sources instead of downloading them."})
    eval_split_size: float | None = field(
        default=None,
        metadata={"help": "Hold out this fraction (or number) of the mixed rows for evaluation, when no source names "
                  "an `eval_split` (not with streaming)."},
    )
    max_audio_seconds: float = field(
        default=MAX_TIMESTAMP_SECONDS, metadata={"help": "Drop longer clips (the encoder sees one 30 s window)."}
    )
    stopping_strategy: str = field(
        default="all_exhausted",
        metadata={"help": "`interleave_datasets` stopping strategy: `all_exhausted` (oversample small sources) or "
                  "`first_exhausted`."},
    )
    max_length: int | None = field(
        default=1024,
        metadata={"help": "Longest training sequence in tokens (audio span included); longer ones are cut on the "
                  "right by the collator, with a warning."},
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for reading durations and building targets (not with streaming)."}
    )
    build_local_data: str | None = field(
        default=None,
        metadata={"help": "`module:function` called (on the main process) with no arguments before loading, when a "
                  "local source path is missing: recipes that build their own small dataset on first use."},
    )

    def __post_init__(self):
        self.datasets = [
            source if isinstance(source, AudioDatasetSource) else _source_from_dict(source) for source in self.datasets
        ]
        if self.stopping_strategy not in ("all_exhausted", "first_exhausted"):
            raise ValueError(f"`stopping_strategy` must be all_exhausted or first_exhausted, got {self.stopping_strategy!r}.")
        if self.streaming and self.eval_split_size:
            raise ValueError("`eval_split_size` needs a map-style dataset: name an `eval_split` per source when streaming.")


def _source_from_dict(source) -> AudioDatasetSource:
    if not isinstance(source, dict):
        raise ValueError(f"Each entry of `datasets` must be a mapping of source options, got {source!r}.")
    known = {item.name for item in fields(AudioDatasetSource)}
    unknown = sorted(set(source) - known)
    if unknown:
        raise ValueError(f"Unknown key(s) {unknown} in data source {source.get('path')!r}; known keys: {sorted(known)}.")
    return AudioDatasetSource(**source)


def _local_base_dir(source: AudioDatasetSource) -> str | None:
    """Relative audio paths of a local dataset are relative to it."""
    for candidate in (source.data_dir, source.path):
        if candidate and os.path.exists(candidate):
            candidate = os.path.abspath(candidate)
            return candidate if os.path.isdir(candidate) else os.path.dirname(candidate)
    return None


def _local_audiofolder_metadata(source: AudioDatasetSource, split: str) -> str | None:
    """The metadata file of a local `audiofolder` split (`FOLDER/SPLIT/metadata.jsonl`, or `FOLDER/metadata.*`)."""
    folder = source.data_dir or source.path
    if source.path not in (folder, "audiofolder") or not os.path.isdir(folder):
        return None
    for candidate in (os.path.join(folder, split), folder):
        for name in AUDIOFOLDER_METADATA:
            if os.path.isfile(os.path.join(candidate, name)):
                return os.path.join(candidate, name)
    return None


def _load_audiofolder(metadata_file: str, split: str, streaming: bool):
    """A local `audiofolder` read from its metadata, clips as absolute paths in an `audio` column. `datasets`'
    `audiofolder` builder encodes every clip with torchcodec while generating, which fails where torchcodec cannot
    load (CPU machines without its ffmpeg); the clips are decoded later by `load_audio` anyway."""
    builder = "csv" if metadata_file.endswith(".csv") else "json"
    dataset = load_dataset(builder, data_files={split: metadata_file}, split=split, streaming=streaming)
    folder = os.path.dirname(os.path.abspath(metadata_file))
    if "file_name" not in (dataset.column_names or []):
        raise ValueError(f"{metadata_file} has no `file_name` column naming the clips of the audiofolder.")
    return dataset.map(
        lambda row: {"audio": {"path": os.path.join(folder, row["file_name"]), "bytes": None}},
        remove_columns=["file_name"],
    )


def _load_split(source: AudioDatasetSource, split: str, streaming: bool):
    metadata_file = _local_audiofolder_metadata(source, split)
    if metadata_file is not None:
        return _load_audiofolder(metadata_file, split, streaming)
    extension = os.path.splitext(source.path)[1].lower()
    if os.path.isfile(source.path) and extension in LOCAL_DATA_BUILDERS:
        return load_dataset(
            LOCAL_DATA_BUILDERS[extension], data_files={split: source.path}, split=split, streaming=streaming
        )
    return load_dataset(
        source.path,
        name=source.name,
        data_dir=source.data_dir,
        data_files=source.data_files,
        split=split,
        streaming=streaming,
    )


def audio_duration(audio, base_dir: str | None = None) -> float:
    """Seconds of audio of an `Audio(decode=False)` value (`{"path", "bytes"}`) or a path, from the file header
    when libsndfile can read it (no decoding), else by decoding."""
    import soundfile

    if isinstance(audio, dict) and audio.get("array") is not None:
        return len(audio["array"]) / audio["sampling_rate"]
    data, path = (audio.get("bytes"), audio.get("path")) if isinstance(audio, dict) else (None, audio)
    if data is None and path is not None and base_dir is not None and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    try:
        info = soundfile.info(io.BytesIO(data) if data is not None else path)
        if info.frames > 0:
            return info.frames / info.samplerate
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        pass
    return len(load_audio(audio if data is not None else path)) / QWEN_AUDIO_SAMPLING_RATE


def _to_mixture_rows(source: AudioDatasetSource, base_dir: str | None):
    tags = source.tags

    def convert(row, index):
        audio = row[source.audio_column]
        if isinstance(audio, str):
            audio = {"path": audio, "bytes": None}
        if audio.get("bytes") is None and audio.get("path") and base_dir and not os.path.isabs(audio["path"]):
            # Absolute now, so the collator needs no per-source base folder.
            audio = {"path": os.path.join(base_dir, audio["path"]), "bytes": None}
        duration = row[source.duration_column] if source.duration_column else audio_duration(audio)
        try:
            example = build_pretraining_example(
                tags,
                text=row[source.text_column] if source.text_column else None,
                words=row[source.words_column] if source.words_column else None,
                question=row[source.question_column] if source.question_column else None,
                duration=float(duration),
            )
        except (ValueError, KeyError) as error:
            raise ValueError(f"Source {source.label}, row {index}: {error}") from None
        return {
            "audio": {"path": audio.get("path"), "bytes": audio.get("bytes")},
            **example,
            "transcript": plain_transcript(source, row) if source.has_transcript else "",
            "duration": float(duration),
            "length": int(round(float(duration) * 100)),
            "source": source.label,
            "row": index,
        }

    return convert


def plain_transcript(source: AudioDatasetSource, row) -> str:
    """The words of a row in order, without timestamps: the text column, or the timestamped words joined."""
    if source.text_column and row.get(source.text_column):
        return first_reference(row[source.text_column])
    words = words_as_list(row[source.words_column]) if source.words_column else []
    separator = word_separator(source.audio_language)
    return separator.join(str(word.get("text", word.get("word", ""))).strip() for word in words).strip()


def _keep(max_audio_seconds: float):
    def keep(row):
        return 0 < row["duration"] <= max_audio_seconds and bool(row["completion"].strip())

    return keep


def load_source(source: AudioDatasetSource, split: str, mixture: AudioMixtureArguments):
    """One source as mixture rows, filtered (clips over `max_audio_seconds`, empty targets) with counts logged."""
    dataset = _load_split(source, split, mixture.streaming)
    columns = dataset.column_names if not mixture.streaming else list((dataset.features or {}).keys())
    needed = [source.audio_column, source.text_column, source.words_column, source.question_column, source.duration_column]
    missing = [column for column in needed if column and columns and column not in columns]
    if missing:
        raise ValueError(f"Source {source.label} has no column(s) {missing}; its columns are {columns}.")
    if source.max_samples is not None:
        dataset = dataset.take(source.max_samples) if mixture.streaming else dataset.select(
            range(min(source.max_samples, len(dataset)))
        )
    if isinstance(dataset.features.get(source.audio_column) if dataset.features else None, Audio):
        # Never let `datasets` decode (it needs torchcodec): the collator decodes with `load_audio`.
        dataset = dataset.cast_column(source.audio_column, Audio(decode=False))
    map_kwargs = {"with_indices": True, "features": MIXTURE_FEATURES, "remove_columns": columns or None}
    if not mixture.streaming:
        map_kwargs.update(num_proc=mixture.preprocessing_num_workers, desc=f"Building targets of {source.label}")
    dataset = dataset.map(_to_mixture_rows(source, _local_base_dir(source)), **map_kwargs)
    if mixture.streaming:  # the columns of a stream are not always known up front
        dataset = dataset.select_columns(list(MIXTURE_FEATURES))
    if mixture.streaming:
        return dataset.filter(_keep(mixture.max_audio_seconds))
    total = len(dataset)
    too_long = sum(duration > mixture.max_audio_seconds for duration in dataset["duration"])
    dataset = dataset.filter(_keep(mixture.max_audio_seconds), num_proc=mixture.preprocessing_num_workers)
    logger.info(
        f"Source {source.label} ({split}): {len(dataset)} of {total} rows kept; {too_long} clips over "
        f"{mixture.max_audio_seconds:g} s and {total - len(dataset) - too_long} empty (or zero-length) targets removed."
    )
    if len(dataset) == 0:
        raise ValueError(f"Source {source.label} ({split}) has no usable rows left after filtering.")
    return dataset


def build_local_data_if_missing(mixture: AudioMixtureArguments) -> None:
    if mixture.build_local_data is None:
        return
    if all(os.path.exists(source.data_dir or source.path) for source in mixture.datasets):
        return
    import importlib

    module_name, _, function_name = mixture.build_local_data.partition(":")
    if not function_name:
        raise ValueError(f"`build_local_data` must be `module:function`, got {mixture.build_local_data!r}.")
    builder = getattr(importlib.import_module(module_name), function_name)
    logger.info(f"Building the local data with {mixture.build_local_data}")
    builder()


def load_audio_mixture(mixture: AudioMixtureArguments, seed: int = 42) -> datasets.DatasetDict:
    """
    Loads every source, builds the released-format targets and mixes the sources by weight.

    Returns a `DatasetDict` with `train` and, when a source has an `eval_split` or `eval_split_size` is set, `test`
    (the held-out rows of every source, concatenated: evaluation should see each source, not a weighted sample).
    """
    if not mixture.datasets:
        raise ValueError("The mixture has no data sources: set `datasets:` in the recipe YAML.")
    build_local_data_if_missing(mixture)
    train_parts = [load_source(source, source.split, mixture) for source in mixture.datasets]
    weights = [source.weight for source in mixture.datasets]
    if len(train_parts) == 1:
        train = train_parts[0]
    else:
        train = interleave_datasets(
            train_parts,
            probabilities=[weight / sum(weights) for weight in weights],
            seed=seed,
            stopping_strategy=mixture.stopping_strategy,
        )
    splits = {"train": train}
    eval_parts = [load_source(source, source.eval_split, mixture) for source in mixture.datasets if source.eval_split]
    if eval_parts:
        splits["test"] = concatenate_datasets(eval_parts) if len(eval_parts) > 1 else eval_parts[0]
    elif mixture.eval_split_size:
        split = train.train_test_split(test_size=mixture.eval_split_size, seed=seed)
        splits = {"train": split["train"], "test": split["test"]}
    if not mixture.streaming:
        logger.info(f"Mixture: {', '.join(f'{name}={len(data)} rows' for name, data in splits.items())}")
    return datasets.DatasetDict(splits) if not mixture.streaming else datasets.IterableDatasetDict(splits)


__all__ = [
    "MIXTURE_FEATURES",
    "AudioDatasetSource",
    "AudioMixtureArguments",
    "audio_duration",
    "load_audio_mixture",
    "load_source",
]
