# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""`qwen-audio pretrain --config RECIPE.yaml [...]`: the pre-training recipe
(`transformers_qwen_audio.recipes.pretrain`); every argument goes to it, `--help` included."""

from .common import add_recipe_parser, run_recipe


def add_parser(subcommands):
    return add_recipe_parser(subcommands, "pretrain", run_pretrain,
                             help="pre-train (or continue pre-training) from a recipe YAML: --config RECIPE.yaml")


def run_pretrain(args) -> int:
    from ..recipes.pretrain import main

    return run_recipe(main, args)
