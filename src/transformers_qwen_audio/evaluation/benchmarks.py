# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Benchmarks declared in YAML (the packaged `recipes/benchmarks/*.yaml` of `transformers_qwen_audio`), one file per
benchmark:

```yaml
name: librispeech_test_clean
task: asr                       # asr | srwt | translation | caption | classification | aqa | note_analysis
dataset: openslr/librispeech_asr  # Hub id, local folder or file
dataset_config: clean
split: test
data_files: {test: "clean/test/*.parquet"}  # only the scored split's files, relative to the Hub repository
columns: {audio: audio, reference: text}
prompt: "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"
max_new_tokens: 256
language: en                    # text normalisation of WER (zh: by character); output language of BLEU
paper: {wer: 0.02}              # the figure the paper reports, keyed by our metric name
```

`prompt` follows `<audio>...</audio>`; `{question}` in it is filled from the `question` column (AQA).

Which rows are scored, and how they are grouped (the original prints one score per `source` of its jsonl):
- `data_files` (a pattern or list of them, or a mapping whose `split` entry is used) names the files of the scored
  split inside the Hub repository `dataset`; they are read with the builder of their extension from
  `hf://datasets/<dataset>/` (or a local mirror of it, see `load_benchmark_rows`), so no other split is downloaded.
  `dataset_config` then only names the config on the model card.
- `columns: {source: source}` names the column of a row's source. `sources: {clothoaqa_test: {accuracy: 0.579}}`
  scores those sources, each as its own result next to its paper figure (a list of names: no figures); without
  `sources`, the data must hold a single source (mixing them is refused, naming them).
- `where: {column: glob}` keeps matching rows; `max_samples` the first rows.
`build_local_data: module:function` builds a local dataset on first use (the tiny benchmarks).
"""

import dataclasses
import fnmatch
import hashlib
import importlib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from ..recipes import recipe_path


TASK_METRICS = {
    "asr": ("wer",),
    "srwt": ("wer", "average_shift", "boundary_mae"),
    "translation": ("bleu",),
    "caption": ("CIDEr", "BLEU_4", "ROUGE_L"),
    "classification": ("accuracy",),
    "aqa": ("accuracy",),
    "note_analysis": ("instrument_accuracy",),
}
# Reported when they can be: SPICE needs Java and the Stanford models (not computed here, the table says so).
OPTIONAL_METRICS = {"bi_accuracy", "wer_whisper_basic", "wer_english_normalizer", "SPICE", "METEOR"}
# Metrics where lower is better (the table marks the direction).
LOWER_IS_BETTER = {"wer", "average_shift", "boundary_mae", "wer_whisper_basic", "wer_english_normalizer"}
COLUMN_ROLES = ("audio", "reference", "question", "words", "source")
BENCHMARKS_DIR = recipe_path("benchmarks")  # package data: there in a wheel as in a checkout
HUB_DATASETS = "hf://datasets/"
FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".arrow": "arrow"}
# Fields that do not change a prediction: a run that differs only in them resumes from the rows already predicted.
NOT_PREDICTION_FIELDS = ("paper", "paper_source", "description", "max_samples")


@dataclass
class BenchmarkSpec:
    name: str
    task: str
    dataset: str
    prompt: str
    max_new_tokens: int
    split: str = "test"
    dataset_config: str | None = None
    data_files: str | list | dict | None = None
    columns: dict = field(default_factory=dict)
    language: str = "en"
    min_new_tokens: int = 1
    paper: dict = field(default_factory=dict)
    paper_source: str | None = None
    sources: dict | list | None = None
    build_local_data: str | None = None
    max_samples: int | None = None
    where: dict = field(default_factory=dict)
    description: str | None = None

    def __post_init__(self):
        if self.task not in TASK_METRICS:
            raise ValueError(f"Benchmark {self.name!r}: unknown task {self.task!r}; expected one of {sorted(TASK_METRICS)}.")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"Benchmark {self.name!r}: `max_new_tokens` must be a positive integer.")
        self.columns = {"audio": "audio", **(self.columns or {})}
        unknown_roles = sorted(set(self.columns) - set(COLUMN_ROLES))
        if unknown_roles:
            raise ValueError(f"Benchmark {self.name!r}: unknown column role(s) {unknown_roles} in `columns`; "
                             f"the roles are {list(COLUMN_ROLES)}.")
        needed = {"srwt": ("words",), "aqa": ("reference", "question")}.get(self.task, ("reference",))
        for role in needed:
            if role not in self.columns:
                raise ValueError(f"Benchmark {self.name!r}: the {self.task} task needs a `{role}` column in `columns`.")
        if "{question}" in self.prompt and "question" not in self.columns:
            raise ValueError(f"Benchmark {self.name!r}: the prompt has {{question}} but `columns` names no question.")
        self._check_figures(self.paper, "`paper`")
        self.sources = self._sources_as_mapping(self.sources)
        if self.sources and "source" not in self.columns:
            raise ValueError(f"Benchmark {self.name!r}: `sources` needs the column of a row's source in `columns` "
                             "(e.g. `columns: {source: source}`).")
        if self.paper and any(self.sources.values()):
            raise ValueError(f"Benchmark {self.name!r}: give the paper's figures either per source in `sources` "
                             "or once in `paper`, not both.")
        if isinstance(self.data_files, dict) and self.split not in self.data_files:
            raise ValueError(f"Benchmark {self.name!r}: `data_files` names the splits {sorted(self.data_files)}, "
                             f"not the scored split {self.split!r}.")

    def _sources_as_mapping(self, sources) -> dict:
        if sources is None:
            return {}
        if isinstance(sources, (list, tuple)):
            sources = {name: {} for name in sources}
        if not isinstance(sources, dict) or not all(isinstance(name, str) for name in sources):
            raise ValueError(f"Benchmark {self.name!r}: `sources` is a list of source names or a mapping of source "
                             f"name to the paper's figures, got {sources!r}.")
        mapping = {name: dict(figures or {}) for name, figures in sources.items()}
        for name, figures in mapping.items():
            self._check_figures(figures, f"source {name!r}")
        return mapping

    def _check_figures(self, figures, where: str) -> None:
        if not isinstance(figures, dict):
            raise ValueError(f"Benchmark {self.name!r}: {where} maps metric names to figures, got {figures!r}.")
        unknown = sorted(set(figures) - set(self.metric_names) - OPTIONAL_METRICS)
        if unknown:
            raise ValueError(f"Benchmark {self.name!r}: paper figures in {where} for {unknown}, which the {self.task} "
                             "task does not compute.")

    @property
    def metric_names(self) -> tuple[str, ...]:
        return TASK_METRICS[self.task]

    @property
    def source(self) -> str | None:
        """The one source this spec scores (None: every row of the split, which must hold a single source)."""
        return next(iter(self.sources)) if len(self.sources) == 1 else None

    @property
    def result_key(self) -> str:
        """Names the result and its predictions file: the benchmark, and the source when it names another one."""
        return f"{self.name}.{self.source}" if self.source not in (None, self.name) else self.name

    @property
    def paper_figures(self) -> dict:
        return dict(self.sources[self.source]) if self.source else dict(self.paper)

    def per_source(self) -> list["BenchmarkSpec"]:
        """One spec per source it names (each scored and reported on its own, as the original does)."""
        if len(self.sources) <= 1:
            return [self]
        return [dataclasses.replace(self, sources={name: figures}) for name, figures in self.sources.items()]

    def split_data_files(self):
        """`data_files` of the scored split only (None when the dataset is read by id or path alone)."""
        if self.data_files is None:
            return None
        return self.data_files[self.split] if isinstance(self.data_files, dict) else self.data_files

    def fingerprint(self) -> str:
        """What the predictions depend on: a rerun with the same fingerprint resumes from the rows already done."""
        identity = {key: value for key, value in dataclasses.asdict(self).items() if key not in NOT_PREDICTION_FIELDS}
        identity["sources"] = sorted(self.sources)
        identity["data_files"] = self.split_data_files()
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "BenchmarkSpec":
        path = Path(path)
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
        if not isinstance(config, dict):
            raise ValueError(f"{path}: a benchmark YAML is a mapping of keys, got {type(config).__name__}.")
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {unknown}; known keys: {sorted(known)}.")
        config.setdefault("name", path.stem)
        try:
            return cls(**config)
        except TypeError as error:
            raise ValueError(f"{path}: {error}") from None


def resolve_benchmark(name_or_path: str) -> Path:
    """A YAML path, or the name of one shipped in the package (`tiny_asr`, `librispeech_test_clean`, ...)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = BENCHMARKS_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    available = sorted(p.stem for p in BENCHMARKS_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"No benchmark {name_or_path!r}: not a file, and not one of {available}.")


def _call_builder(reference: str) -> None:
    module_name, _, function_name = reference.partition(":")
    if not function_name:
        raise ValueError(f"`build_local_data` must be 'module:function', got {reference!r}.")
    getattr(importlib.import_module(module_name), function_name)()


def _hub_location(spec: BenchmarkSpec, relative: str, hub_datasets_root: str | None) -> str:
    """`hf://datasets/<dataset>/<relative>`, or the same path under a local mirror of `hf://datasets/`."""
    location = f"{HUB_DATASETS}{spec.dataset}/{relative}"
    if hub_datasets_root is None:
        return location
    return location.replace(HUB_DATASETS, str(hub_datasets_root).rstrip("/") + "/", 1)


def _split_file_patterns(spec: BenchmarkSpec, hub_datasets_root: str | None) -> list[str]:
    patterns = spec.split_data_files()
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    builders = {FILE_BUILDERS.get(os.path.splitext(pattern)[1].lower()) for pattern in patterns}
    if len(builders) != 1 or None in builders:
        raise ValueError(f"Benchmark {spec.name!r}: `data_files` must all end in one of {sorted(FILE_BUILDERS)}, "
                         f"got {patterns}.")
    return [_hub_location(spec, pattern, hub_datasets_root) for pattern in patterns]


def _load_split(spec: BenchmarkSpec, hub_datasets_root: str | None):
    """The scored split, and nothing else of the dataset: the folder relative audio paths resolve against."""
    from datasets import load_dataset

    extension = os.path.splitext(spec.dataset)[1].lower()
    if spec.data_files is not None:
        patterns = _split_file_patterns(spec, hub_datasets_root)
        builder = FILE_BUILDERS[os.path.splitext(patterns[0])[1].lower()]
        return load_dataset(builder, data_files={spec.split: patterns}, split=spec.split), None
    if extension in FILE_BUILDERS:  # a local file, e.g. the original's converted jsonl
        if not os.path.isfile(spec.dataset):
            raise FileNotFoundError(f"Benchmark {spec.name!r}: the dataset file {spec.dataset} does not exist "
                                    f"(relative paths start from {os.getcwd()}).")
        dataset = load_dataset(FILE_BUILDERS[extension], data_files={spec.split: spec.dataset}, split=spec.split)
        return dataset, os.path.dirname(os.path.abspath(spec.dataset))
    location = spec.dataset
    if not os.path.exists(location) and hub_datasets_root:
        location = _hub_location(spec, "", hub_datasets_root).rstrip("/")
    dataset = load_dataset(location, name=spec.dataset_config, split=spec.split)
    return dataset, os.path.abspath(location) if os.path.isdir(location) else None


def load_benchmark_rows(
    spec: BenchmarkSpec, hub_datasets_root: str | os.PathLike | None = None,
) -> tuple[list[dict], str | None]:
    """
    The benchmark's rows (audio left undecoded) and the folder relative audio paths resolve against.

    Each row maps the roles of `spec.columns` to its cells, plus `row` (its index in the split). Only the scored
    split is read. `hub_datasets_root` stands for `hf://datasets/` (a local mirror: `ROOT/<owner>/<name>/<files>`).
    """
    from datasets import Audio
    from datasets.exceptions import DatasetNotFoundError

    if spec.build_local_data and not os.path.exists(spec.dataset):
        _call_builder(spec.build_local_data)
    try:
        dataset, base_dir = _load_split(spec, hub_datasets_root)
    except (DatasetNotFoundError, FileNotFoundError) as error:
        message = " ".join(str(error).split())
        raise FileNotFoundError(message if message.startswith("Benchmark") else
                                f"Benchmark {spec.name!r}: dataset {spec.dataset!r} not found: {message}") from None
    missing = [column for column in spec.columns.values() if column not in dataset.column_names]
    if missing:
        raise ValueError(f"Benchmark {spec.name!r}: the dataset has no column(s) {missing}; it has {dataset.column_names}.")
    if isinstance(dataset.features[spec.columns["audio"]], Audio):
        dataset = dataset.cast_column(spec.columns["audio"], Audio(decode=False))  # torchcodec-free: load_audio decodes
    kept = _kept_indices(spec, dataset)
    if spec.max_samples is not None:
        kept = kept[: spec.max_samples]
    selected = dataset.select(kept)
    rows = [{"row": index, **{role: row[column] for role, column in spec.columns.items()}}
            for index, row in zip(kept, selected)]
    return rows, base_dir


def _kept_indices(spec: BenchmarkSpec, dataset) -> list[int]:
    """Indices of the rows `where` keeps, of the sources scored; refuses a split that mixes sources unscored."""
    kept = list(range(len(dataset)))
    for column, pattern in (spec.where or {}).items():
        if column not in dataset.column_names:
            raise ValueError(f"Benchmark {spec.name!r}: `where` names the column {column!r}, which the dataset lacks.")
        values = list(dataset[column])
        kept = [index for index in kept if fnmatch.fnmatchcase(str(values[index]), pattern)]
    if "source" not in spec.columns:
        return kept
    values = list(dataset[spec.columns["source"]])
    present = sorted({str(values[index]) for index in kept})
    if not spec.sources:
        if len(present) > 1:
            raise ValueError(f"Benchmark {spec.name!r}: the data holds the sources {present}, scored one by one in "
                             "the original: name the ones to score in `sources`.")
        return kept
    absent = sorted(set(spec.sources) - set(present))
    if absent:
        raise ValueError(f"Benchmark {spec.name!r}: no rows of the source(s) {absent}; the data's sources are "
                         f"{present}.")
    return [index for index in kept if str(values[index]) in spec.sources]


def build_prompt(spec: BenchmarkSpec, row: dict) -> str:
    prompt = spec.prompt.replace("{question}", str(row.get("question", ""))) if "{question}" in spec.prompt else spec.prompt
    return "<audio></audio>" + prompt
