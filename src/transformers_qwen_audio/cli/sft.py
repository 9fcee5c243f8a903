# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""`qwen-audio sft --config RECIPE.yaml [...]`: the supervised fine-tuning recipe
(`transformers_qwen_audio.recipes.sft`); every argument goes to it, `--help` included."""

from .common import add_recipe_parser, run_recipe


def add_parser(subcommands):
    return add_recipe_parser(subcommands, "sft", run_sft,
                             help="supervised fine-tuning (full or LoRA) from a recipe YAML: --config RECIPE.yaml")


def run_sft(args) -> int:
    from ..recipes.sft import main

    return run_recipe(main, args)
