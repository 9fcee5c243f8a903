# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""`qwen-audio evaluate --config RECIPE.yaml [...]`: the evaluation recipe (`transformers_qwen_audio.recipes.evaluate`);
every argument goes to it, `--help` included."""

from .common import add_recipe_parser, run_recipe


def add_parser(subcommands):
    return add_recipe_parser(subcommands, "evaluate", run_evaluate,
                             help="evaluate a checkpoint on the benchmarks of a recipe YAML: --config RECIPE.yaml")


def run_evaluate(args) -> int:
    from ..recipes.evaluate import main

    return run_recipe(main, args)
