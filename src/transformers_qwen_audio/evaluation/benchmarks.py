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
columns: {audio: audio, reference: text}
prompt: "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"
max_new_tokens: 256
language: en                    # text normalisation of WER (zh: by character); output language of BLEU
paper: {wer: 2.0}               # the figure the paper reports, keyed by our metric name
```

`prompt` follows `<audio>...</audio>`; `{question}` in it is filled from the `question` column (AQA).
`where: {column: glob}` keeps matching rows (the original's jsonl files mix sources: `{source: "covost2_en_de*"}`).
`build_local_data: module:function` builds a local dataset on first use (the tiny benchmarks).
"""

import fnmatch
import importlib
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
OPTIONAL_METRICS = {"bi_accuracy", "wer_whisper_basic", "SPICE", "METEOR"}
# Metrics where lower is better (the table marks the direction).
LOWER_IS_BETTER = {"wer", "average_shift", "boundary_mae", "wer_whisper_basic"}
BENCHMARKS_DIR = recipe_path("benchmarks")  # package data: there in a wheel as in a checkout


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
        needed = {"srwt": ("words",), "aqa": ("reference", "question")}.get(self.task, ("reference",))
        for role in needed:
            if role not in self.columns:
                raise ValueError(f"Benchmark {self.name!r}: the {self.task} task needs a `{role}` column in `columns`.")
        if "{question}" in self.prompt and "question" not in self.columns:
            raise ValueError(f"Benchmark {self.name!r}: the prompt has {{question}} but `columns` names no question.")
        unknown = sorted(set(self.paper) - set(self.metric_names) - OPTIONAL_METRICS)
        if unknown:
            raise ValueError(f"Benchmark {self.name!r}: paper figures for {unknown}, which the {self.task} task does not compute.")

    @property
    def metric_names(self) -> tuple[str, ...]:
        return TASK_METRICS[self.task]

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "BenchmarkSpec":
        path = Path(path)
        config = yaml.safe_load(path.read_text())
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


def load_benchmark_rows(spec: BenchmarkSpec) -> tuple[list[dict], str | None]:
    """The benchmark's rows (audio left undecoded) and the folder relative audio paths resolve against."""
    from datasets import Audio, load_dataset

    if spec.build_local_data and not os.path.exists(spec.dataset):
        _call_builder(spec.build_local_data)
    base_dir = None
    if os.path.exists(spec.dataset):
        base_dir = os.path.abspath(spec.dataset if os.path.isdir(spec.dataset) else os.path.dirname(spec.dataset))
    extension = os.path.splitext(spec.dataset)[1].lower()
    if os.path.isfile(spec.dataset) and extension in (".json", ".jsonl", ".parquet", ".csv"):
        builder = {".jsonl": "json", ".json": "json"}.get(extension, extension[1:])
        dataset = load_dataset(builder, data_files={spec.split: spec.dataset}, split=spec.split)
    else:
        dataset = load_dataset(spec.dataset, name=spec.dataset_config, data_files=spec.data_files, split=spec.split)
    missing = [column for column in spec.columns.values() if column not in dataset.column_names]
    if missing:
        raise ValueError(f"Benchmark {spec.name!r}: the dataset has no column(s) {missing}; it has {dataset.column_names}.")
    if isinstance(dataset.features[spec.columns["audio"]], Audio):
        dataset = dataset.cast_column(spec.columns["audio"], Audio(decode=False))  # torchcodec-free: load_audio decodes
    for column, pattern in (spec.where or {}).items():
        # e.g. `where: {source: covost2_en_de*}`: one benchmark out of the original's multi-source jsonl files.
        dataset = dataset.filter(lambda value: fnmatch.fnmatchcase(str(value), pattern), input_columns=column)
    if spec.max_samples is not None:
        dataset = dataset.select(range(min(spec.max_samples, len(dataset))))
    rows = [{role: row[column] for role, column in spec.columns.items()} for row in dataset]
    return rows, base_dir


def build_prompt(spec: BenchmarkSpec, row: dict) -> str:
    prompt = spec.prompt.replace("{question}", str(row.get("question", ""))) if "{question}" in spec.prompt else spec.prompt
    return "<audio></audio>" + prompt
