# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""`qwen-audio demo` (also `python -m transformers_qwen_audio.demo`): the main job of `transformers_qwen_audio.demo`,
a tiny Qwen-Audio trained on synthetic data on the CPU, evaluated and used."""

import argparse
import time
from pathlib import Path

from .. import demo
from ..training.run_checks import MAX_SEED
from .common import EXIT_OK, OneLineErrorParser, run_command


DESCRIPTION = "Train a tiny Qwen-Audio on synthetic data on the CPU, evaluate it, and use it."


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The arguments of `demo` on `parser`, or on a parser of its own for `python -m transformers_qwen_audio.demo`."""
    parser = parser or OneLineErrorParser(prog="python -m transformers_qwen_audio.demo")
    parser.description = DESCRIPTION
    parser.add_argument("--output-dir", type=Path, default=demo.DEFAULT_OUTPUT_DIR,
                        help="keeps the data recipe, the checkpoint (DIR/model) and the results "
                             f"(default: {demo.DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--seed", type=seed_argument, default=42, help="training seed (the dataset is fixed: seed 0)")
    parser.add_argument("--retrain", action="store_true", help="train again even if DIR/model holds a finished checkpoint")
    parser.add_argument("--max-steps", type=int,
                        help="override the recipe's number of training steps (the encoder warm-up keeps its share)")
    parser.add_argument("--threads", type=int, help="CPU threads for training (default: torch's choice)")
    parser.set_defaults(run=run_demo)
    return parser


def seed_argument(value: str) -> int:
    """`--seed`: checked here, before the data is built and the recipe's process starts."""
    try:
        seed = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, got {seed}")
    return seed


def add_parser(subcommands) -> argparse.ArgumentParser:
    parser = subcommands.add_parser("demo", help="train a tiny Qwen-Audio on synthetic data, evaluate it, use it")
    return build_parser(parser)


def run_demo(args) -> int:
    overrides = demo.step_overrides(args.max_steps)
    started = time.perf_counter()
    report = demo.run(args.output_dir, seed=args.seed, retrain=args.retrain, recipe_overrides=overrides,
                      threads=args.threads)
    print(f"done in {time.perf_counter() - started:.0f} s; report: {Path(args.output_dir) / 'report.json'}")
    for key, verdict in report["targets"].items():
        print(f"   {key}: {verdict['value']} (target {verdict['target']}) {'reached' if verdict['reached'] else 'NOT reached'}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """`python -m transformers_qwen_audio.demo`."""
    return run_command(build_parser(), argv)
