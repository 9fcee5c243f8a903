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

Distributed: under `accelerate launch`, each process takes a contiguous shard of the rows and the replies are
gathered on the main process in dataset order.
"""

import math
import os

import torch
from tqdm.auto import tqdm

from ..audio_io import load_audio
from ..word_timestamps import words_as_list  # a word-timestamp cell: list of dicts or dict of lists
from . import metrics
from .benchmarks import BenchmarkSpec, build_prompt, load_benchmark_rows


END_OF_TEXT = "<|endoftext|>"


def generate_replies(
    model, processor, prompts: list[str], clips: list, max_new_tokens: int, min_new_tokens: int = 1,
    batch_size: int = 8, audio_base_dir: str | None = None, progress: bool = True, description: str = "generating",
) -> list[str]:
    """Greedy replies to `<audio></audio>PROMPT` prompts (one clip each), decoded with special tokens, stripped."""
    if len(prompts) != len(clips):
        raise ValueError(f"{len(prompts)} prompts but {len(clips)} clips.")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be positive, got {batch_size}.")
    tokenizer = processor.tokenizer
    eod_id = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    device = model.device
    replies = []
    batches = range(0, len(prompts), batch_size)
    for start in tqdm(batches, desc=description, disable=not progress, unit="batch"):
        waveforms = [load_audio(clip, base_dir=audio_base_dir) for clip in clips[start : start + batch_size]]
        inputs = processor(
            text=prompts[start : start + batch_size], audio=waveforms, padding=True, padding_side="left",
            return_tensors="pt",
        ).to(device)
        if "input_features" in inputs:
            inputs["input_features"] = inputs["input_features"].to(model.dtype)
        with torch.inference_mode():
            output = model.generate(
                **inputs, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                eos_token_id=eod_id, pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eod_id,
            )
        for tokens in output[:, inputs["input_ids"].shape[1] :].tolist():
            if eod_id in tokens:
                tokens = tokens[: tokens.index(eod_id)]
            replies.append(tokenizer.decode(tokens, skip_special_tokens=False).strip())
    return replies


def score(spec: BenchmarkSpec, rows: list[dict], replies: list[str]) -> dict:
    """The benchmark's metrics from its rows (references) and the replies."""
    references = [row.get("reference") for row in rows]
    task = spec.task
    if task == "asr":
        return {
            "wer": metrics.corpus_word_error_rate(references, replies, spec.language),
            "wer_whisper_basic": metrics.whisper_basic_word_error_rate(references, replies)
            if spec.language != "zh" else math.nan,
        }
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
    model, processor, spec: BenchmarkSpec, batch_size: int = 8, accelerator=None, progress: bool = True,
) -> dict:
    """
    Generates and scores one benchmark. Returns `{"benchmark", "task", "num_samples", "metrics", "paper",
    "predictions"}` on the main process (None elsewhere when distributed).
    """
    rows, base_dir = load_benchmark_rows(spec)
    if not rows:
        raise ValueError(f"Benchmark {spec.name!r} has no rows in split {spec.split!r}.")
    indices = list(range(len(rows)))
    if accelerator is not None and accelerator.num_processes > 1:
        with accelerator.split_between_processes(indices) as shard:
            local = list(shard)
    else:
        local = indices
    replies = generate_replies(
        model, processor, [build_prompt(spec, rows[i]) for i in local], [rows[i]["audio"] for i in local],
        spec.max_new_tokens, spec.min_new_tokens, batch_size, base_dir, progress, description=spec.name,
    )
    if accelerator is not None and accelerator.num_processes > 1:
        from accelerate.utils import gather_object

        gathered = gather_object([(index, reply) for index, reply in zip(local, replies)])
        if not accelerator.is_main_process:
            return None
        replies = [reply for _, reply in sorted(gathered)]
    return {
        "benchmark": spec.name,
        "task": spec.task,
        "dataset": spec.dataset,
        "split": spec.split,
        "num_samples": len(rows),
        "metrics": score(spec, rows, replies),
        "paper": dict(spec.paper),
        "predictions": [
            {"reference": _jsonable(rows[i].get("reference", rows[i].get("words"))), "prediction": reply}
            for i, reply in enumerate(replies)
        ],
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def evaluate_checkpoint(
    model_name_or_path: str,
    benchmarks: list,
    output_dir: str | None = None,
    batch_size: int = 8,
    max_samples: int | None = None,
    dtype: str = "auto",
    update_model_card: bool = False,
    progress: bool = True,
) -> list[dict] | None:
    """
    Loads a checkpoint, runs the benchmarks (names of the packaged benchmark YAMLs, YAML paths or `BenchmarkSpec`s),
    and on the main process writes `results.json`, `predictions.json`, `results.md` and `model_index.yaml` to
    `output_dir` (default: `<checkpoint>/eval`) and, with `update_model_card`, the `model-index` into the checkpoint's
    README.md.
    Under `accelerate launch` every process evaluates a shard. Returns the results (None on other processes).
    """
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM, AutoProcessor

    from .benchmarks import resolve_benchmark
    from .results import model_card_data, write_results

    specs = [spec if isinstance(spec, BenchmarkSpec) else BenchmarkSpec.from_yaml(resolve_benchmark(spec)) for spec in benchmarks]
    if max_samples is not None:
        for spec in specs:
            spec.max_samples = max_samples if spec.max_samples is None else min(spec.max_samples, max_samples)
    accelerator = Accelerator()
    model = AutoModelForCausalLM.from_pretrained(model_name_or_path, dtype=dtype).to(accelerator.device).eval()
    processor = AutoProcessor.from_pretrained(model_name_or_path)
    results = []
    for spec in specs:
        with accelerator.main_process_first():  # a local benchmark built on first use is built once
            result = run_benchmark(model, processor, spec, batch_size, accelerator,
                                   progress=progress and accelerator.is_local_main_process)
        results.append(result)
    if not accelerator.is_main_process:
        return None
    output_dir = output_dir or os.path.join(model_name_or_path, "eval")
    write_results(results, output_dir, model_name=os.path.basename(os.path.normpath(model_name_or_path)))
    if update_model_card:
        from huggingface_hub import ModelCard

        from ..cards import render_card
        from .results import markdown_table

        card_path = os.path.join(model_name_or_path, "README.md")
        model_name = os.path.basename(os.path.normpath(model_name_or_path))
        if os.path.isfile(card_path):  # e.g. the training recipe's card: its text stays, the results join its metadata
            card = ModelCard.load(card_path)
            card.data.model_name = card.data.model_name or model_name
            card.data.eval_results = model_card_data(results, card.data.model_name).eval_results
        else:
            card = render_card("evaluated", model_card_data(results, model_name), model_name=model_name,
                               results_table=markdown_table(results))
        card.save(card_path)
    return results
