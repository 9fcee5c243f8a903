# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Runs a checkpoint on a benchmark the way the original evaluation does, batched with left padding.

Generation is greedy, at least one and at most `max_new_tokens` new tokens, stopping at `<|endoftext|>`; the reply
is decoded with special tokens kept and stripped (the original's `decode(skip_special_tokens=False).strip()`).
Left padding with positions taken from the attention mask makes each row's reply what it gives alone: batch 8 scores
what batch 1 scores (the original's padding changed its ClothoAQA accuracy from 0.579 to 0.181).

A clip that cannot be decoded is reported (row, source, reason) and skipped; when more than `max_bad_clip_fraction`
of the rows fail, the benchmark stops with their list (`TooManyBadClipsError`). Predictions are appended to
`predictions/<benchmark>.jsonl` as batches finish and the summary is rewritten after each benchmark, so a stopped
run keeps what it scored; a rerun of the same checkpoint and spec predicts only the rows not done yet.

Distributed: under `accelerate launch`, each process takes a contiguous shard of the rows still to predict and the
replies are gathered on the main process in dataset order.
"""

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..audio_io import load_audio
from ..word_timestamps import words_as_list  # a word-timestamp cell: list of dicts or dict of lists
from . import metrics
from .benchmarks import BenchmarkSpec, build_prompt, load_benchmark_rows
from .predictions import PredictionsFile


END_OF_TEXT = "<|endoftext|>"
DEFAULT_MAX_BAD_CLIP_FRACTION = 0.01
LISTED_BAD_CLIPS = 10  # the error names this many; the predictions file holds them all
DECODE_ERRORS = (OSError, ValueError, TypeError)  # what `load_audio` raises for a missing or undecodable clip


class TooManyBadClipsError(ValueError):
    """More clips of a benchmark failed to decode than its threshold allows."""


def generate_batch(model, processor, prompts: list[str], waveforms: list, max_new_tokens: int,
                   min_new_tokens: int = 1) -> list[str]:
    """Greedy replies to one left-padded batch of `<audio></audio>PROMPT` prompts and their decoded waveforms."""
    tokenizer = processor.tokenizer
    eod_id = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    inputs = processor(
        text=prompts, audio=waveforms, padding=True, padding_side="left", return_tensors="pt",
    ).to(model.device)
    if "input_features" in inputs:
        inputs["input_features"] = inputs["input_features"].to(model.dtype)
    with torch.inference_mode():
        output = model.generate(
            **inputs, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
            eos_token_id=eod_id, pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eod_id,
        )
    replies = []
    for tokens in output[:, inputs["input_ids"].shape[1] :].tolist():
        if eod_id in tokens:
            tokens = tokens[: tokens.index(eod_id)]
        replies.append(tokenizer.decode(tokens, skip_special_tokens=False).strip())
    return replies


def generate_replies(
    model, processor, prompts: list[str], clips: list, max_new_tokens: int, min_new_tokens: int = 1,
    batch_size: int = 8, audio_base_dir: str | None = None, progress: bool = True, description: str = "generating",
) -> list[str]:
    """Greedy replies to `<audio></audio>PROMPT` prompts (one clip each), decoded with special tokens, stripped."""
    if len(prompts) != len(clips):
        raise ValueError(f"{len(prompts)} prompts but {len(clips)} clips.")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be positive, got {batch_size}.")
    replies = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=description, disable=not progress, unit="batch"):
        waveforms = [load_audio(clip, base_dir=audio_base_dir) for clip in clips[start : start + batch_size]]
        replies += generate_batch(model, processor, prompts[start : start + batch_size], waveforms, max_new_tokens,
                                  min_new_tokens)
    return replies


def score(spec: BenchmarkSpec, rows: list[dict], replies: list[str]) -> dict:
    """The benchmark's metrics from its rows (references) and the replies."""
    references = [row.get("reference") for row in rows]
    task = spec.task
    if task == "asr":
        result = {"wer": metrics.corpus_word_error_rate(references, replies, spec.language)}
        if spec.language == "en":
            result["wer_whisper_basic"] = metrics.whisper_basic_word_error_rate(references, replies)
            result["wer_english_normalizer"] = metrics.english_normalizer_word_error_rate(references, replies)
        else:
            result["wer_whisper_basic"] = math.nan  # an English normaliser says nothing about Chinese
        return result
    if task == "srwt":
        # The prompt ends with the first timestamp: the parser needs it back in front of the reply.
        first = spec.prompt[spec.prompt.rfind("<|") :] if spec.prompt.rstrip().endswith("|>") else ""
        timed = [first + reply for reply in replies]
        words = [[dict(word) for word in words_as_list(row["words"])] for row in rows]
        transcripts = [" ".join(word["word"] for word in row_words) for row_words in words]
        return {"wer": metrics.corpus_word_error_rate(transcripts, replies, spec.language),
                **metrics.word_boundary_errors(words, timed)}
    if task == "translation":
        return {"bleu": metrics.corpus_bleu(references, replies, spec.language)}
    if task == "caption":
        return metrics.caption_scores([ref if isinstance(ref, list) else [ref] for ref in references], replies)
    if task == "classification":
        return {"accuracy": metrics.exact_match_accuracy(references, replies)}
    if task == "aqa":
        result = {"accuracy": metrics.exact_match_accuracy(references, replies)}
        yes_no = metrics.yes_no_accuracy(references, replies)
        if yes_no is not None:
            result["bi_accuracy"] = yes_no
        return result
    if task == "note_analysis":
        return {"instrument_accuracy": metrics.instrument_accuracy(references, replies)}
    raise ValueError(f"Unknown task {task!r}.")


def run_benchmark(
    model, processor, spec: BenchmarkSpec, batch_size: int = 8, accelerator=None, progress: bool = True, *,
    predictions_path: str | os.PathLike | None = None, model_fingerprint: str = "",
    max_bad_clip_fraction: float = DEFAULT_MAX_BAD_CLIP_FRACTION, hub_datasets_root: str | None = None,
) -> dict:
    """
    Generates and scores one benchmark (one source of it: see `BenchmarkSpec.per_source`). Returns `{"benchmark",
    "source", "task", "dataset", "dataset_config", "split", "num_samples", "metrics", "paper", "skipped",
    "predictions"}` on the main process (None elsewhere when distributed). With `predictions_path`, the predictions
    are appended there as batches finish and rows already there (same `model_fingerprint`, same spec) are not
    predicted again.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be positive, got {batch_size}.")
    if not 0 <= max_bad_clip_fraction <= 1:
        raise ValueError(f"`max_bad_clip_fraction` is a fraction of the rows, got {max_bad_clip_fraction}.")
    distributed = accelerator is not None and accelerator.num_processes > 1
    is_main = accelerator is None or accelerator.is_main_process
    # A local benchmark built on first use is built once.
    with accelerator.main_process_first() if distributed else contextlib.nullcontext():
        rows, base_dir = load_benchmark_rows(spec, hub_datasets_root)
    if not rows:
        raise ValueError(f"Benchmark {spec.name!r} has no rows in split {spec.split!r} (after `where`/`sources`).")
    done, store = {}, None
    if predictions_path is not None:
        store = PredictionsFile(predictions_path, {"model": model_fingerprint, "benchmark": spec.fingerprint()},
                                rank=accelerator.process_index if distributed else 0)
        done, stale = store.done()
        done = {row["row"]: done[row["row"]] for row in rows if row["row"] in done}
        if is_main and stale:
            print(f"{spec.result_key}: {predictions_path} holds predictions of another checkpoint or benchmark spec: "
                  "starting over.", flush=True)
        elif is_main and done:
            print(f"{spec.result_key}: resuming, {len(done)} of {len(rows)} rows already done ({predictions_path}).",
                  flush=True)
        if distributed:
            accelerator.wait_for_everyone()  # every process has read the files before any starts one over
        store.open()
    pending = [row for row in rows if row["row"] not in done]
    if distributed:
        with accelerator.split_between_processes(pending) as shard:
            pending = list(shard)
    allowed_failures = math.floor(max_bad_clip_fraction * len(rows))
    failures = [line for line in done.values() if "error" in line]
    new_lines = []
    batches = range(0, len(pending), batch_size)
    for start in tqdm(batches, desc=spec.result_key, disable=not progress, unit="batch"):
        batch_lines, decoded = [], []
        for row in pending[start : start + batch_size]:
            try:
                decoded.append((row, load_audio(row["audio"], base_dir=base_dir)))
            except DECODE_ERRORS as error:
                reason = " ".join(f"{type(error).__name__}: {error}".split())
                batch_lines.append({**_line_identity(row), "error": reason})
        if decoded:
            replies = generate_batch(model, processor, [build_prompt(spec, row) for row, _ in decoded],
                                     [waveform for _, waveform in decoded], spec.max_new_tokens, spec.min_new_tokens)
            batch_lines += [{**_line_identity(row), "reference": _jsonable(row.get("reference", row.get("words"))),
                             "prediction": reply} for (row, _), reply in zip(decoded, replies)]
        if store is not None:
            store.append(batch_lines)
        new_lines += batch_lines
        failures += [line for line in batch_lines if "error" in line]
        if len(failures) > allowed_failures:
            raise TooManyBadClipsError(_bad_clips_message(spec, failures, len(rows), max_bad_clip_fraction, store))
    if distributed:
        from accelerate.utils import gather_object

        new_lines = gather_object(new_lines)
        if not accelerator.is_main_process:
            return None
    lines = sorted([*done.values(), *new_lines], key=lambda line: line["row"])
    failures = [line for line in lines if "error" in line]
    if len(failures) > allowed_failures:  # the shards' failures together
        raise TooManyBadClipsError(_bad_clips_message(spec, failures, len(rows), max_bad_clip_fraction, store))
    if store is not None:
        store.merge(lines)
    by_row = {row["row"]: row for row in rows}
    scored = [line for line in lines if "error" not in line]
    if not scored:
        raise TooManyBadClipsError(_bad_clips_message(spec, failures, len(rows), max_bad_clip_fraction, store))
    return {
        "benchmark": spec.name,
        "source": spec.source,
        "task": spec.task,
        "dataset": spec.dataset,
        "dataset_config": spec.dataset_config,
        "split": spec.split,
        "num_samples": len(scored),
        "metrics": score(spec, [by_row[line["row"]] for line in scored], [line["prediction"] for line in scored]),
        "paper": spec.paper_figures,
        "skipped": [{key: line[key] for key in ("row", "source", "error") if key in line} for line in failures],
        "predictions": scored,
    }


def _line_identity(row: dict) -> dict:
    return {"row": row["row"], **({"source": row["source"]} if "source" in row else {})}


def _bad_clips_message(spec, failures: list[dict], num_rows: int, fraction: float, store) -> str:
    listed = "; ".join(f"row {line['row']}" + (f" ({line['source']})" if "source" in line else "")
                       + f": {line['error']}" for line in failures[:LISTED_BAD_CLIPS])
    more = f"; and {len(failures) - LISTED_BAD_CLIPS} more" if len(failures) > LISTED_BAD_CLIPS else ""
    where = f" (all in {store.path})" if store is not None else ""
    return (f"Benchmark {spec.result_key!r} stopped: {len(failures)} of {num_rows} clips could not be decoded, over "
            f"the {fraction:g} allowed (max_bad_clip_fraction): {listed}{more}{where}.")


def _jsonable(value):
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def checkpoint_fingerprint(model_name_or_path: str, dtype: str) -> str:
    """Identifies the weights a prediction came from: the files' names, sizes and modification times for a folder
    (a retrained checkpoint in the same folder is another model), the id alone for a Hub model; and the dtype."""
    folder = Path(model_name_or_path)
    if folder.is_dir():
        identity = [(path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in sorted(folder.iterdir())
                    if path.is_file() and path.suffix in (".safetensors", ".bin", ".json", ".tiktoken")]
    else:
        identity = [model_name_or_path]
    return hashlib.sha256(json.dumps([identity, dtype]).encode()).hexdigest()[:16]


def _looks_like_a_folder(name: str) -> bool:
    """A name that cannot be a Hub id (`owner/name`): absolute, relative with `./` or `~`, or with more parts."""
    return os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.strip("/").count("/") > 1


def load_checkpoint(model_name_or_path: str, dtype: str, device):
    """The model and processor, or a one-line error that says when the folder does not exist."""
    from transformers import AutoModelForCausalLM, AutoProcessor

    exists = os.path.exists(model_name_or_path)
    if not os.path.isdir(model_name_or_path) and (exists or _looks_like_a_folder(model_name_or_path)):
        what = "is not a folder" if exists else "does not exist"
        raise FileNotFoundError(f"The checkpoint folder {model_name_or_path} {what}.")
    try:
        model = AutoModelForCausalLM.from_pretrained(model_name_or_path, dtype=dtype)
        processor = AutoProcessor.from_pretrained(model_name_or_path)
    except OSError as error:
        if os.path.isdir(model_name_or_path):
            raise
        raise FileNotFoundError(
            f"The checkpoint folder {os.path.abspath(model_name_or_path)} does not exist, and {model_name_or_path!r} "
            f"could not be loaded as a Hub model either: {' '.join(str(error).split())[:300]}"
        ) from None
    return model.to(device).eval(), processor


def evaluate_checkpoint(
    model_name_or_path: str,
    benchmarks: list,
    output_dir: str | None = None,
    batch_size: int = 8,
    max_samples: int | None = None,
    dtype: str = "auto",
    update_model_card: bool = False,
    progress: bool = True,
    max_bad_clip_fraction: float = DEFAULT_MAX_BAD_CLIP_FRACTION,
    hub_datasets_root: str | None = None,
) -> list[dict] | None:
    """
    Loads a checkpoint, runs the benchmarks (names of the packaged benchmark YAMLs, YAML paths or `BenchmarkSpec`s),
    one result per source they name, and on the main process writes to `output_dir` (default: `<checkpoint>/eval`)
    `predictions/<result>.jsonl` as batches finish, then `results.json`, `results.md` and `model_index.yaml` after
    each result; with `update_model_card`, the `model-index` into the checkpoint's README.md at the end.
    A rerun resumes from the predictions already written. `hub_datasets_root` stands for `hf://datasets/` (a local
    mirror, `ROOT/<owner>/<name>/...`).
    Under `accelerate launch` every process evaluates a shard. Returns the results (None on other processes).
    """
    from accelerate import Accelerator

    from .benchmarks import resolve_benchmark
    from .results import write_results

    specs = [spec if isinstance(spec, BenchmarkSpec) else BenchmarkSpec.from_yaml(resolve_benchmark(spec))
             for spec in benchmarks]
    specs = [part for spec in specs for part in spec.per_source()]
    if max_samples is not None:
        for spec in specs:
            spec.max_samples = max_samples if spec.max_samples is None else min(spec.max_samples, max_samples)
    accelerator = Accelerator()
    model, processor = load_checkpoint(model_name_or_path, dtype, accelerator.device)
    output_dir = Path(output_dir or os.path.join(model_name_or_path, "eval"))
    model_name = os.path.basename(os.path.normpath(model_name_or_path))
    fingerprint = checkpoint_fingerprint(model_name_or_path, dtype)
    results = []
    for spec in specs:
        result = run_benchmark(
            model, processor, spec, batch_size, accelerator, progress=progress and accelerator.is_local_main_process,
            predictions_path=output_dir / "predictions" / f"{spec.result_key}.jsonl", model_fingerprint=fingerprint,
            max_bad_clip_fraction=max_bad_clip_fraction, hub_datasets_root=hub_datasets_root,
        )
        if accelerator.is_main_process:
            results.append(result)
            write_results(results, output_dir, model_name=model_name)  # a stopped run keeps what it scored
    if not accelerator.is_main_process:
        return None
    if update_model_card:
        _update_model_card(model_name_or_path, model_name, results)
    return results


def _update_model_card(model_name_or_path: str, model_name: str, results: list[dict]) -> None:
    from huggingface_hub import ModelCard

    from ..cards import render_card
    from .results import markdown_table, model_card_data

    card_path = os.path.join(model_name_or_path, "README.md")
    if os.path.isfile(card_path):  # e.g. the training recipe's card: its text stays, the results join its metadata
        card = ModelCard.load(card_path)
        card.data.model_name = card.data.model_name or model_name
        card.data.eval_results = model_card_data(results, card.data.model_name).eval_results
    else:
        card = render_card("evaluated", model_card_data(results, model_name), model_name=model_name,
                           results_table=markdown_table(results))
    card.save(card_path)
