# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Evaluates a Qwen-Audio checkpoint on benchmarks declared in YAML (the packaged `benchmarks/*.yaml`, by name, or
paths), with the prompts, `max_new_tokens`, text normalisation and metrics of the original evaluation, batched with
left padding.

Writes `predictions/<benchmark>.jsonl` as batches finish (a rerun resumes from them), then `results.json`,
`results.md` (ours vs the paper, per source or split) and `model_index.yaml` (the model card's `model-index`) after
each benchmark; a clip that cannot be decoded is reported and skipped (`--max_bad_clip_fraction` of them at most).
The logic lives in `transformers_qwen_audio.evaluation`.

Usage:

# The tiny held-out split (the offline default), e.g. on the demo's checkpoint
qwen-audio evaluate --model_name_or_path qwen-audio-demo/model
python -m transformers_qwen_audio.recipes.evaluate --model_name_or_path qwen-audio-demo/model

# The options in a YAML (`--config`), any of them overridden on the command line
qwen-audio evaluate --config my_evaluation.yaml --batch_size 4

# A local mirror of the Hub datasets (ROOT/openslr/librispeech_asr/clean/test/0000.parquet, ...)
qwen-audio evaluate --model_name_or_path Qwen/Qwen-Audio --benchmarks librispeech_test_clean --hub_datasets_root ROOT

# The paper's benchmarks on GPUs, one shard per process
accelerate launch --num_processes 8 -m transformers_qwen_audio.recipes.evaluate --model_name_or_path Qwen/Qwen-Audio \
    --benchmarks librispeech_test_clean librispeech_test_other covost2_en_de clotho clothoaqa --batch_size 16
"""

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from transformers import HfArgumentParser

import transformers_qwen_audio  # noqa: F401  registers the model and processor with the Auto classes
from transformers_qwen_audio.evaluation import evaluate_checkpoint, markdown_table
from transformers_qwen_audio.evaluation.results import result_label
from transformers_qwen_audio.evaluation.runner import DEFAULT_MAX_BAD_CLIP_FRACTION


DEFAULT_BENCHMARKS = ["tiny_asr", "tiny_srwt", "tiny_sounds"]


@dataclass
class EvaluationArguments:
    model_name_or_path: str = field(metadata={"help": "A checkpoint folder or Hub id (native or released layout)."})
    benchmarks: list[str] = field(
        default_factory=lambda: list(DEFAULT_BENCHMARKS),
        metadata={"help": "Names of the packaged benchmarks/*.yaml or paths to benchmark YAMLs."},
    )
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate() call (left padded)."})
    output_dir: str | None = field(default=None, metadata={"help": "Default: <checkpoint>/eval."})
    max_samples: int | None = field(default=None, metadata={"help": "Evaluate at most this many rows per benchmark."})
    dtype: str = field(default="auto", metadata={"help": "auto, float32, bfloat16 or float16."})
    update_model_card: bool = field(
        default=False, metadata={"help": "Write the results into the checkpoint's README.md model-index."}
    )
    max_bad_clip_fraction: float = field(
        default=DEFAULT_MAX_BAD_CLIP_FRACTION,
        metadata={"help": "Clips that cannot be decoded are reported and skipped; a benchmark with more than this "
                          "fraction of them stops, listing them (0: stop at the first)."},
    )
    hub_datasets_root: str | None = field(
        default=None, metadata={"help": "A local folder read in place of hf://datasets/ (ROOT/<owner>/<name>/...)."}
    )


def parse_arguments(argv: list[str] | None = None) -> EvaluationArguments:
    """The command line over the values of `--config YAML` (as TRL's `TrlParser` reads a recipe, without needing TRL:
    evaluation does not train)."""
    config_parser = argparse.ArgumentParser(add_help=False)
    config_parser.add_argument("--config")
    known, remaining = config_parser.parse_known_args(argv)
    parser = HfArgumentParser(EvaluationArguments)
    parser.add_argument("--config", help="A YAML of these options; the command line overrides it.")
    if known.config is not None:
        config = yaml.safe_load(Path(known.config).read_text())
        if not isinstance(config, dict):
            parser.error(f"--config {known.config}: expected a mapping of options, got {type(config).__name__}.")
        unknown = sorted(set(config) - {action.dest for action in parser._actions})
        if unknown:
            parser.error(f"--config {known.config}: unknown option(s) {unknown}.")
        for action in parser._actions:
            if action.dest in config:
                action.required = False  # given by the YAML
        parser.set_defaults(**config)
    # After the dataclass comes a namespace of the options outside it (`--config`, read above).
    return parser.parse_args_into_dataclasses(args=remaining, look_for_args_file=False)[0]


def main(argv: list[str] | None = None) -> None:
    """Evaluates as `argv` (default: the command line) says; the main process prints and writes the results. A user
    error (missing checkpoint folder or dataset, bad benchmark YAML, too many undecodable clips) exits with one line."""
    args = parse_arguments(argv)
    try:
        results = evaluate_checkpoint(
            args.model_name_or_path, args.benchmarks, output_dir=args.output_dir, batch_size=args.batch_size,
            max_samples=args.max_samples, dtype=args.dtype, update_model_card=args.update_model_card,
            max_bad_clip_fraction=args.max_bad_clip_fraction, hub_datasets_root=args.hub_datasets_root,
        )
    except (OSError, ValueError, TypeError) as error:
        raise SystemExit(f"evaluate: error: {' '.join(str(error).split())}") from None
    if results is not None:  # the main process
        print(markdown_table(results))
        print(json.dumps({result_label(result): result["metrics"] for result in results}, indent=1))


if __name__ == "__main__":
    main()
