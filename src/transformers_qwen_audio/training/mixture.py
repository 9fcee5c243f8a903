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
the 30 s window, empty targets and clips that cannot be read are filtered out, with counts in the log.

Hub datasets are read as their repositories publish them: a Hub id with `data_files` reads those files with the
builder of their extension (`hf://datasets/<id>/<pattern>`), so no loading script runs (`datasets` >= 4 refuses a
repository that has one, as `openslr/librispeech_asr` still does beside its parquet folders). `data_roots` rewrites
the start of every location (`hf://datasets/` to a local mirror, `data/` to where the manual downloads are).
"""

import dataclasses
import io
import logging
import os
from dataclasses import dataclass, field, fields

import datasets
from datasets import Audio, ClassLabel, Features, LargeList, List, Value, concatenate_datasets, interleave_datasets, load_dataset

from ..audio_io import QWEN_AUDIO_SAMPLING_RATE, load_audio
from ..task_prompts import QUESTION_TASKS
from ..word_timestamps import MAX_TIMESTAMP_SECONDS, word_separator
from .clip_cache import DECODED_CLIP_CACHE_HELP
from .clip_folders import LABEL_SOURCES, load_clip_folder
from .targets import TaskTags, aligned_words, build_pretraining_example, first_reference, normalization_steps, normalize_text


logger = logging.getLogger(__name__)

AUDIOFOLDER_METADATA = ("metadata.jsonl", "metadata.csv")
LOCAL_DATA_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow"}
HUB_DATASETS_ROOT = "hf://datasets/"
# Unreadable clips are skipped; past this share of a source's rows, the source is broken and the run stops. A stream
# judges the share over at least this many rows.
MIN_ROWS_FOR_BAD_SHARE = 100
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

    A Hub id with `data_files` reads those files of the repository (`{split: pattern}`, relative to its root; the
    builder follows their extension), never its loading script. Released folders without metadata (`path`: a local
    folder): `audio_files` (a glob, or `{split: glob}`) finds the clips, whose rows are `{"audio", "file_name"}` plus
    `label` (`label_from: folder` or `file_name_suffix`) or `text` (`transcripts`: a `<id> <text>` file, id = file
    stem); `clip_list` (a datafile `{"data": [{"wav": ...}]}`, or `{split: file}`) keeps the clips it names (see
    `clip_folders`). `audio_dir` (a folder, or `{split: folder}`, relative to the dataset's folder) is where the
    relative clip paths of a CSV/JSON source point.

    Which columns: `audio_column` (an `Audio` column, a path string, or `{"path", "bytes"}`; relative paths are
    resolved against the local dataset's folder), `text_column` (the target text; a `ClassLabel` column gives its
    class names), `words_column` (word timestamps, a list of `{"text"|"word", "start", "end"}`, used when
    `timestamps: true`; empty and `<unk>` words are dropped), `question_column` (AQA questions), `duration_column`
    (clip lengths in seconds; read from the audio file headers when absent). `text_normalization`: `none`, `lower`,
    `remove_spaces`, or a list of them in order, applied to the target and the transcript.

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
    audio_files: str | dict | None = None
    label_from: str | None = None
    transcripts: str | None = None
    clip_list: str | dict | None = None
    audio_dir: str | dict | None = None
    audio_column: str = "audio"
    text_column: str | None = "text"
    words_column: str | None = None
    question_column: str | None = None
    duration_column: str | None = None
    text_normalization: str | list | None = None
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
        if self.label_from is not None and self.label_from not in LABEL_SOURCES:
            raise ValueError(f"Source {self.path}: `label_from` must be one of {LABEL_SOURCES}, got {self.label_from!r}.")
        tree_options = [key for key in ("label_from", "transcripts", "clip_list") if getattr(self, key) is not None]
        if tree_options and self.audio_files is None:
            raise ValueError(f"Source {self.path}: {tree_options} read a folder of clips: set `audio_files` (a glob).")
        try:
            self.normalization = normalization_steps(self.text_normalization)
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
    data_roots: dict | None = field(
        default=None,
        metadata={"help": "Prefix rewrites of every source location, e.g. `{\"hf://datasets/\": \"/mirror/\", \"data/\": "
                  "\"/downloads/\"}`: the same recipe over a local mirror of the Hub or another download folder."},
    )
    max_bad_row_share: float = field(
        default=0.01,
        metadata={"help": "Rows whose clip cannot be read are skipped and counted; a source with a larger share of "
                  "them stops the run, named."},
    )
    decoded_clip_cache_mb: float = field(
        default=0.0,
        metadata={"help": DECODED_CLIP_CACHE_HELP},
    )

    def __post_init__(self):
        self.datasets = [
            source if isinstance(source, AudioDatasetSource) else _source_from_dict(source) for source in self.datasets
        ]
        if self.stopping_strategy not in ("all_exhausted", "first_exhausted"):
            raise ValueError(f"`stopping_strategy` must be all_exhausted or first_exhausted, got {self.stopping_strategy!r}.")
        if self.streaming and self.eval_split_size:
            raise ValueError("`eval_split_size` needs a map-style dataset: name an `eval_split` per source when streaming.")
        if self.data_roots is not None and not all(
            isinstance(key, str) and isinstance(value, str) for key, value in dict(self.data_roots).items()
        ):
            raise ValueError(f"`data_roots` must map location prefixes to replacements, got {self.data_roots!r}.")
        if not 0 <= self.max_bad_row_share < 1:
            raise ValueError(f"`max_bad_row_share` must be in [0, 1), got {self.max_bad_row_share!r}.")


def _source_from_dict(source) -> AudioDatasetSource:
    if not isinstance(source, dict):
        raise ValueError(f"Each entry of `datasets` must be a mapping of source options, got {source!r}.")
    known = {item.name for item in fields(AudioDatasetSource)}
    unknown = sorted(set(source) - known)
    if unknown:
        raise ValueError(f"Unknown key(s) {unknown} in data source {source.get('path')!r}; known keys: {sorted(known)}.")
    return AudioDatasetSource(**source)


def rewrite_data_roots(location, data_roots: dict | None):
    """A location (or a list / `{split: location}` of them) with the first matching prefix of `data_roots` replaced."""
    if isinstance(location, dict):
        return {key: rewrite_data_roots(value, data_roots) for key, value in location.items()}
    if isinstance(location, (list, tuple)):
        return [rewrite_data_roots(value, data_roots) for value in location]
    for prefix, replacement in (data_roots or {}).items():
        if isinstance(location, str) and location.startswith(prefix):
            return replacement + location[len(prefix) :]
    return location


def _is_hub_id(path: str) -> bool:
    return path.count("/") == 1 and "://" not in path and not path.startswith(".") and not os.path.exists(path)


def located(source, data_roots: dict | None = None):
    """The source with a Hub id + `data_files` turned into the files' builder over `hf://datasets/<id>/...` URLs and
    every location rewritten by `data_roots`; its label (the rows' `source`) stays the one of the YAML."""
    # Local folders first: `data/clotho` looks like a Hub id until `data/` is rewritten.
    path, data_files = rewrite_data_roots(source.path, data_roots), source.data_files
    if data_files is not None and _is_hub_id(path):
        data_files = rewrite_data_roots(data_files, {"": f"{HUB_DATASETS_ROOT}{path}/"})
        patterns = list(data_files.values()) if isinstance(data_files, dict) else data_files
        patterns = [patterns] if isinstance(patterns, str) else [item for group in patterns for item in (
            [group] if isinstance(group, str) else group)]
        builders = {LOCAL_DATA_BUILDERS.get(os.path.splitext(pattern)[1].lower()) for pattern in patterns}
        if len(builders) != 1 or None in builders:
            raise ValueError(f"Source {source.path}: the `data_files` of a Hub dataset must all be one of "
                             f"{sorted(LOCAL_DATA_BUILDERS)}, got {patterns}.")
        path = builders.pop()
    changes = {
        "path": path,
        "data_dir": rewrite_data_roots(source.data_dir, data_roots),
        "data_files": rewrite_data_roots(data_files, data_roots),
    }
    if hasattr(source, "source_name"):
        changes["source_name"] = source.label
    return dataclasses.replace(source, **changes)


def _for_split(value, split: str, key: str, source):
    """A per-split option: a mapping gives each split its own value, anything else applies to every split."""
    if not isinstance(value, dict):
        return value
    if split not in value:
        raise ValueError(f"Source {source.label}: `{key}` has no entry for split {split!r} (it has {sorted(value)}).")
    return value[split]


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
    if getattr(source, "audio_files", None) is not None:
        if not os.path.isdir(source.path):
            raise ValueError(f"Source {source.label}: `audio_files` reads a local folder, but {source.path} is none.")
        return load_clip_folder(
            source.path,
            _for_split(source.audio_files, split, "audio_files", source),
            streaming=streaming,
            label_from=source.label_from,
            transcripts=source.transcripts,
            clip_list=_for_split(source.clip_list, split, "clip_list", source),
        )
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


def _undecoded(feature):
    """A feature with every `Audio` in it (nested too) at `decode=False`."""
    if isinstance(feature, Audio):
        return dataclasses.replace(feature, decode=False)
    if isinstance(feature, dict):
        return {key: _undecoded(value) for key, value in feature.items()}
    if isinstance(feature, (List, LargeList)):
        return dataclasses.replace(feature, feature=_undecoded(feature.feature))
    if isinstance(feature, list):
        return [_undecoded(feature[0])]
    return feature


def without_audio_decoding(dataset):
    """Every `Audio` column (also inside lists and structs) cast to `decode=False`: `datasets` decodes with
    torchcodec, the collators with `load_audio`."""
    for column, feature in (dataset.features or {}).items():
        undecoded = _undecoded(feature)
        if undecoded != feature:
            dataset = dataset.cast_column(column, undecoded)
    return dataset


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


# What reading a clip's header or decoding it raises on a broken or missing clip (soundfile's errors are RuntimeErrors).
CLIP_READ_ERRORS = (RuntimeError, OSError, ValueError, TypeError, AttributeError)
UNREADABLE = -1.0  # the `duration` of a row whose clip could not be read: filtered out and counted


def _to_mixture_rows(source: AudioDatasetSource, base_dir: str | None, class_names: list[str] | None = None):
    tags = source.tags

    def target_text(row):
        text = row[source.text_column] if source.text_column else None
        # A ClassLabel column holds ids; id 0 is a class like the others, not an empty target.
        return class_names[text] if class_names is not None and isinstance(text, int) else text

    def convert(row, index):
        audio = row[source.audio_column]
        if isinstance(audio, str):
            audio = {"path": audio, "bytes": None}
        if isinstance(audio, dict) and audio.get("bytes") is None and audio.get("path") and base_dir and not os.path.isabs(audio["path"]):
            # Absolute now, so the collator needs no per-source base folder.
            audio = {"path": os.path.join(base_dir, audio["path"]), "bytes": None}
        try:
            duration = float(row[source.duration_column] if source.duration_column else audio_duration(audio))
        except CLIP_READ_ERRORS as error:
            logger.debug(f"Source {source.label}, row {index}: unreadable clip ({error})")
            duration = UNREADABLE
        try:
            example = build_pretraining_example(
                tags,
                text=target_text(row),
                words=row[source.words_column] if source.words_column else None,
                question=row[source.question_column] if source.question_column else None,
                duration=max(duration, 0.0),
                text_normalization=source.normalization,
            )
            transcript = plain_transcript(source, row, target_text(row)) if source.has_transcript else ""
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"Source {source.label}, row {index}: {error}") from None
        audio = audio if isinstance(audio, dict) else {}
        return {
            "audio": {"path": audio.get("path"), "bytes": audio.get("bytes")},
            **example,
            "transcript": transcript,
            "duration": duration,
            "length": int(round(max(duration, 0.0) * 100)),
            "source": source.label,
            "row": index,
        }

    return convert


def plain_transcript(source: AudioDatasetSource, row, text=None) -> str:
    """The words of a row in order, without timestamps: the (normalised) target text, or the aligned words joined."""
    if source.text_column and text:
        return normalize_text(first_reference(text), source.normalization)
    words = aligned_words(row[source.words_column], source.normalization) if source.words_column else []
    separator = word_separator(source.audio_language)
    return separator.join(str(word.get("text", word.get("word", ""))).strip() for word in words).strip()


def _keep(max_audio_seconds: float):
    def keep(row):
        return 0 < row["duration"] <= max_audio_seconds and bool(row["completion"].strip())

    return keep


def _too_many_unreadable(label: str, unreadable: int, rows: int, share: float) -> ValueError:
    return ValueError(
        f"Source {label}: {unreadable} of {rows} clips cannot be read (over `max_bad_row_share` {share:g}); check "
        "its audio files or raise the share."
    )


class _StreamFilter:
    """The stream's filter: keeps what `_keep` keeps, counts unreadable clips and stops a source that has too many."""

    def __init__(self, label: str, mixture: AudioMixtureArguments):
        self.label, self.share, self.keep = label, mixture.max_bad_row_share, _keep(mixture.max_audio_seconds)
        self.rows = self.unreadable = 0

    def __call__(self, row) -> bool:
        self.rows += 1
        if row["duration"] == UNREADABLE:
            self.unreadable += 1
            if self.unreadable > self.share * max(self.rows, MIN_ROWS_FOR_BAD_SHARE):
                raise _too_many_unreadable(self.label, self.unreadable, self.rows, self.share)
            logger.warning(f"Source {self.label}, row {row['row']}: the clip cannot be read; skipped "
                           f"({self.unreadable} so far).")
        return self.keep(row)


def load_source(source: AudioDatasetSource, split: str, mixture: AudioMixtureArguments):
    """One source as mixture rows, filtered (clips over `max_audio_seconds`, empty targets, unreadable clips) with
    counts logged."""
    source = located(source, mixture.data_roots)
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
    # Never let `datasets` decode (it needs torchcodec): the collator decodes with `load_audio`.
    dataset = without_audio_decoding(dataset)
    text_feature = (dataset.features or {}).get(source.text_column)
    class_names = text_feature.names if isinstance(text_feature, ClassLabel) else None
    base_dir = _local_base_dir(source)
    if source.audio_dir is not None and base_dir is not None:
        base_dir = os.path.join(base_dir, _for_split(source.audio_dir, split, "audio_dir", source))
    map_kwargs = {"with_indices": True, "features": MIXTURE_FEATURES, "remove_columns": columns or None}
    if not mixture.streaming:
        map_kwargs.update(num_proc=mixture.preprocessing_num_workers, desc=f"Building targets of {source.label}")
    dataset = dataset.map(_to_mixture_rows(source, base_dir, class_names), **map_kwargs)
    if mixture.streaming:  # the columns of a stream are not always known up front
        return dataset.select_columns(list(MIXTURE_FEATURES)).filter(_StreamFilter(source.label, mixture))
    total = len(dataset)
    durations = dataset["duration"]
    too_long = sum(duration > mixture.max_audio_seconds for duration in durations)
    unreadable = sum(duration == UNREADABLE for duration in durations)
    if unreadable > mixture.max_bad_row_share * total:
        raise _too_many_unreadable(source.label, unreadable, total, mixture.max_bad_row_share)
    dataset = dataset.filter(_keep(mixture.max_audio_seconds), num_proc=mixture.preprocessing_num_workers)
    logger.info(
        f"Source {source.label} ({split}): {len(dataset)} of {total} rows kept; {too_long} clips over "
        f"{mixture.max_audio_seconds:g} s and {total - len(dataset) - too_long - unreadable} empty (or zero-length) "
        f"targets removed, {unreadable} unreadable clips skipped."
    )
    if len(dataset) == 0:
        raise ValueError(f"Source {source.label} ({split}) has no usable rows left after filtering.")
    return dataset


def build_local_data_if_missing(mixture: AudioMixtureArguments) -> None:
    if mixture.build_local_data is None:
        return
    sources = [located(source, mixture.data_roots) for source in mixture.datasets]
    if all(os.path.exists(source.data_dir or source.path) for source in sources):
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
    "located",
    "rewrite_data_roots",
    "without_audio_decoding",
]
