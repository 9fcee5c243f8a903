# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Supervised fine-tuning of Qwen-Audio / Qwen-Audio-Chat with TRL's `SFTTrainer`.

Follows alignment-handbook's `scripts/sft.py` and TRL's `trl/scripts/sft.py`: one YAML per recipe, any field
overridable on the command line. TRL has no audio support, so the dataset stays raw
(`remove_unused_columns: false`, `dataset_kwargs: {skip_prepare_dataset: true}`, both forced) and
`QwenAudioCollator` decodes, renders, tokenizes and masks each batch; the logic lives in
`transformers_qwen_audio.training.runs`.

Usage:

# LoRA on one GPU
qwen-audio sft --config recipes/qwen-audio-chat/sft/config_lora.yaml --dataset_name YOUR/DATASET

# Several GPUs
accelerate launch --config_file recipes/accelerate_configs/zero2.yaml -m transformers_qwen_audio.recipes.sft \
    --config recipes/qwen-audio-chat/sft/config_lora.yaml --dataset_name YOUR/DATASET --per_device_train_batch_size 4

# Tiny smoke run on CPU (the packaged `tiny/sft_smoke.yaml`; see recipes/README.md to build the tiny checkpoint and audio)
python -m transformers_qwen_audio.recipes.sft --config TINY_SFT_YAML --model_name_or_path /tmp/tiny-qwen-audio/model
"""

import sys
from dataclasses import dataclass, field

from trl import ModelConfig, ScriptArguments, SFTConfig, TrlParser

import transformers_qwen_audio  # noqa: F401  registers the model and processor with the Auto classes
from transformers_qwen_audio.training.audio_embedding_cache import AUDIO_EMBEDDING_CACHE_HELP
from transformers_qwen_audio.training.chat_mixture import ChatMixtureArguments
from transformers_qwen_audio.training.clip_cache import DECODED_CLIP_CACHE_HELP
from transformers_qwen_audio.training.run_checks import parse_recipe, run_script
from transformers_qwen_audio.training.runs import run_sft


@dataclass
class AudioArguments:
    """The recipe's own options: audio, and words added to the vocabulary."""

    audio_base_dir: str | None = field(
        default=None,
        metadata={"help": "Folder that relative audio paths are resolved against (default: the local dataset's "
                  "folder)."},
    )
    freeze_audio_encoder: bool = field(
        default=True,
        metadata={"help": "Keep the audio encoder (Whisper tower, projection, <audio>/</audio> embeddings) frozen; "
                  "with LoRA, put no adapter on it."},
    )
    allow_urls: bool = field(default=False, metadata={"help": "Allow downloading http(s) audio URLs."})
    max_bad_row_share: float = field(
        default=0.01,
        metadata={"help": "Rows whose clip cannot be read are skipped, each named in the log; past this share of the "
                  "training rows the run stops with their list (0: stop at the first)."},
    )
    decoded_clip_cache_mb: float = field(
        default=0.0,
        metadata={"help": DECODED_CLIP_CACHE_HELP},
    )
    audio_embedding_cache_mb: float = field(
        default=0.0,
        metadata={"help": AUDIO_EMBEDDING_CACHE_HELP},
    )
    add_word_tokens: list[str] | None = field(
        default=None,
        metadata={"help": "Words to give a token of their own before fine-tuning, each initialised as the mean of "
                  "the tokens it was split into (`training.word_tokens`): for a base model with a byte-level "
                  "tokenizer, the dialogues' frequent wording. Matched inside longer words too. Full fine-tuning "
                  "only (LoRA would leave the new rows untrained)."},
    )


def make_parser() -> TrlParser:
    return TrlParser((ScriptArguments, SFTConfig, ModelConfig, AudioArguments, ChatMixtureArguments))


def main(argv: list[str] | None = None) -> None:
    """Parses `argv` (default: the command line): `--config RECIPE.yaml`, any field overridden after it; then
    fine-tunes."""
    run_sft(*parse_recipe(make_parser(), argv))


if __name__ == "__main__":
    sys.exit(run_script(main, "python -m transformers_qwen_audio.recipes.sft"))
