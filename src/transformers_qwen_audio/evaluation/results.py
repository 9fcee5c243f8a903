# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""Evaluation results as JSON, a markdown table (ours vs the paper), and the model card's `model-index`."""

import json
import math
import os
import tempfile
from pathlib import Path

from .benchmarks import LOWER_IS_BETTER


TASK_TYPES = {  # Hub task ids of the model-index
    "asr": ("automatic-speech-recognition", "Automatic Speech Recognition"),
    "srwt": ("automatic-speech-recognition", "Speech Recognition with Word Timestamps"),
    "translation": ("translation", "Speech Translation"),
    "caption": ("audio-to-text", "Audio Captioning"),
    "classification": ("audio-classification", "Audio Classification"),
    "aqa": ("audio-text-to-text", "Audio Question Answering"),
    "note_analysis": ("audio-classification", "Music Note Analysis"),
}


def _format(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def result_label(result: dict) -> str:
    """The benchmark, and the source of the original's jsonl it scored when that is not the benchmark's name."""
    source = result.get("source")
    return f"{result['benchmark']} ({source})" if source not in (None, result["benchmark"]) else result["benchmark"]


def markdown_table(results: list[dict]) -> str:
    """One row per (benchmark and source, metric): ours next to the paper's figure for that source or split where it
    reports one ("–": not computed, e.g. SPICE, which needs Java); then the clips skipped as undecodable."""
    lines = ["| benchmark | metric | ours | paper | samples |", "| --- | --- | --- | --- | --- |"]
    for result in results:
        names = list(result["metrics"]) + [name for name in result["paper"] if name not in result["metrics"]]
        for metric in names:
            if metric in ("matched_words", "reference_words"):
                continue
            value = result["metrics"].get(metric)
            arrow = " ↓" if metric in LOWER_IS_BETTER else ""
            lines.append(
                f"| {result_label(result)} | {metric}{arrow} | {_format(value)} | {_format(result['paper'].get(metric))} "
                f"| {result['num_samples']} |"
            )
    skipped = [(result_label(result), result["skipped"]) for result in results if result.get("skipped")]
    if skipped:
        lines.append("")
        lines += [f"Skipped as undecodable in {label}: "
                  + ", ".join(f"row {item['row']} ({item['error']})" for item in items) for label, items in skipped]
    return "\n".join(lines) + "\n"


def eval_results(results: list[dict], model_name: str | None = None):
    """`huggingface_hub.EvalResult`s for the model card's `model-index` (finite metrics only), one dataset entry per
    source (or split) scored."""
    from huggingface_hub import EvalResult

    entries = []
    for result in results:
        task_type, task_name = TASK_TYPES[result["task"]]
        for metric, value in result["metrics"].items():
            if metric in ("matched_words", "reference_words") or not isinstance(value, (int, float)) or math.isnan(value):
                continue
            entries.append(EvalResult(
                task_type=task_type, task_name=task_name, dataset_type=result["dataset"], dataset_name=result["benchmark"],
                dataset_config=result.get("dataset_config"), dataset_split=result.get("source") or result["split"],
                metric_type=metric.lower(), metric_name=metric, metric_value=float(value),
            ))
    return entries


def model_card_data(results: list[dict], model_name: str):
    from huggingface_hub import ModelCardData

    return ModelCardData(model_name=model_name, eval_results=eval_results(results), library_name="transformers")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write through a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_results(results: list[dict], output_dir: str | os.PathLike, model_name: str) -> dict:
    """`results.json` (the metrics; the predictions are in `predictions/*.jsonl`), `results.md` (the table) and
    `model_index.yaml` in `output_dir`, each replaced whole."""
    output_dir = Path(output_dir)
    summary = [{key: value for key, value in result.items() if key != "predictions"} for result in results]
    atomic_write_text(output_dir / "results.json", json.dumps({"model": model_name, "results": summary}, indent=1,
                                                              ensure_ascii=False) + "\n")
    atomic_write_text(output_dir / "results.md", markdown_table(results))
    card = model_card_data(results, model_name)
    atomic_write_text(output_dir / "model_index.yaml", card.to_yaml() + "\n")
    return {"json": output_dir / "results.json", "markdown": output_dir / "results.md",
            "model_index": output_dir / "model_index.yaml"}
