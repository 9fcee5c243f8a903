# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Multitask pre-training of Qwen-Audio (the base model) with transformers' `Trainer`.

Each example is `<audio>...</audio>` + the hierarchical task tags of its source + the target + `<|endoftext|>`,
and only the target and `<|endoftext|>` are learned. The data is a weighted mixture of audio datasets described in
the recipe YAML (`datasets:`, see recipes/README.md); the logic lives in `transformers_qwen_audio.training`.

Usage:

# The packaged tiny recipe on CPU (builds its small dataset under ./data on first use); the path of the YAML:
# python -c "from transformers_qwen_audio.recipes import recipe_path; print(recipe_path('tiny/pretrain.yaml'))"
qwen-audio pretrain --config TINY_PRETRAIN_YAML
python -m transformers_qwen_audio.recipes.pretrain --config TINY_PRETRAIN_YAML

# The paper's schedule on GPUs: Whisper-initialised encoder trained, language model frozen
accelerate launch --config_file recipes/accelerate_configs/zero2.yaml -m transformers_qwen_audio.recipes.pretrain \
    --config recipes/qwen-audio/pretrain/config_full.yaml

# Two CPU processes (gloo), e.g. to check a recipe before renting GPUs. `--multi_gpu` makes accelerate start them
# with torchrun; without GPUs they run on CPU (`--cpu --num_processes 2` alone starts one process, or needs mpirun).
CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 -m transformers_qwen_audio.recipes.pretrain \
    --config TINY_PRETRAIN_YAML
"""

import sys

from trl import TrlParser

import transformers_qwen_audio  # noqa: F401  registers the model and processor with the Auto classes
from transformers_qwen_audio.training import AudioMixtureArguments, QwenAudioModelArguments, QwenAudioPretrainingConfig
from transformers_qwen_audio.training.run_checks import parse_recipe, run_script
from transformers_qwen_audio.training.runs import run_pretraining


def make_parser() -> TrlParser:
    return TrlParser((AudioMixtureArguments, QwenAudioModelArguments, QwenAudioPretrainingConfig))


def main(argv: list[str] | None = None) -> None:
    """Parses `argv` (default: the command line): `--config RECIPE.yaml`, any field overridden after it; then
    pre-trains."""
    run_pretraining(*parse_recipe(make_parser(), argv))


if __name__ == "__main__":
    sys.exit(run_script(main, "python -m transformers_qwen_audio.recipes.pretrain"))
