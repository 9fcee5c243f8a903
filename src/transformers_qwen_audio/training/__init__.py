# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""Training utilities for Qwen-Audio, used by the recipes (`transformers_qwen_audio.recipes`): the data mixture and
its released-format targets, the collator, where a run starts (checkpoint, `model_config`, Whisper encoder) and what
it trains, the pre-training `Trainer` and its training-only encoder heads, a frozen encoder's cached embeddings, the two
stages end to end (`runs`)."""

from .audio_embedding_cache import cache_frozen_audio_embeddings
from .collators import IGNORE_INDEX, QwenAudioCollator
from .encoder_heads import attach_encoder_ctc_head, attach_encoder_position_head, remove_training_heads
from .mixture import AudioDatasetSource, AudioMixtureArguments, load_audio_mixture
from .model_setup import QwenAudioModelArguments, load_model, load_processor, set_trainable_modules
from .pretrainer import QwenAudioPretrainer, QwenAudioPretrainingConfig
from .saving import save_and_push
from .targets import TaskTags, build_pretraining_example
from .whisper_init import init_audio_encoder_from_whisper


__all__ = [
    "IGNORE_INDEX",
    "AudioDatasetSource",
    "AudioMixtureArguments",
    "QwenAudioCollator",
    "QwenAudioModelArguments",
    "QwenAudioPretrainer",
    "QwenAudioPretrainingConfig",
    "TaskTags",
    "attach_encoder_ctc_head",
    "attach_encoder_position_head",
    "build_pretraining_example",
    "cache_frozen_audio_embeddings",
    "init_audio_encoder_from_whisper",
    "load_audio_mixture",
    "load_model",
    "load_processor",
    "remove_training_heads",
    "save_and_push",
    "set_trainable_modules",
]
