# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Evaluates a Qwen-Audio checkpoint on benchmarks declared in YAML (`recipes/benchmarks/*.yaml`), with the prompts,
`max_new_tokens`, text normalisation and metrics of the original evaluation, batched with left padding.

Writes `results.json`, `predictions.json`, `results.md` (ours vs the paper) and `model_index.yaml` (the model card's
`model-index`); the logic lives in `transformers_qwen_audio.evaluation`.

Usage:

# The tiny held-out split (the offline default), e.g. on the demo's checkpoint
python recipes/evaluate.py --model_name_or_path qwen-audio-demo/model

# The paper's benchmarks on GPUs, one shard per process
accelerate launch --num_processes 8 recipes/evaluate.py --model_name_or_path Qwen/Qwen-Audio \
    --benchmarks librispeech_test_clean librispeech_test_other covost2_en_de clotho clothoaqa --batch_size 16
"""

import json
from dataclasses import dataclass, field

from transformers import HfArgumentParser

import transformers_qwen_audio  # noqa: F401  registers the model and processor with the Auto classes
from transformers_qwen_audio.evaluation import evaluate_checkpoint, markdown_table


DEFAULT_BENCHMARKS = ["tiny_asr", "tiny_srwt", "tiny_sounds"]


@dataclass
class EvaluationArguments:
    model_name_or_path: str = field(metadata={"help": "A checkpoint folder or Hub id (native or released layout)."})
    benchmarks: list[str] = field(
        default_factory=lambda: list(DEFAULT_BENCHMARKS),
        metadata={"help": "Names of recipes/benchmarks/*.yaml or paths to benchmark YAMLs."},
    )
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate() call (left padded)."})
    output_dir: str | None = field(default=None, metadata={"help": "Default: <checkpoint>/eval."})
    max_samples: int | None = field(default=None, metadata={"help": "Evaluate at most this many rows per benchmark."})
    dtype: str = field(default="auto", metadata={"help": "auto, float32, bfloat16 or float16."})
    update_model_card: bool = field(
        default=False, metadata={"help": "Write the results into the checkpoint's README.md model-index."}
    )


def main(args: EvaluationArguments) -> list[dict] | None:
    results = evaluate_checkpoint(
        args.model_name_or_path, args.benchmarks, output_dir=args.output_dir, batch_size=args.batch_size,
        max_samples=args.max_samples, dtype=args.dtype, update_model_card=args.update_model_card,
    )
    if results is not None:  # the main process
        print(markdown_table(results))
        print(json.dumps({result["benchmark"]: result["metrics"] for result in results}, indent=1))
    return results


if __name__ == "__main__":
    (evaluation_args,) = HfArgumentParser(EvaluationArguments).parse_args_into_dataclasses()
    main(evaluation_args)
