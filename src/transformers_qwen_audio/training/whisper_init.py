# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Initialising Qwen-Audio's audio encoder from a Whisper checkpoint, as the paper does (Whisper-large-v2).

Qwen-Audio's encoder is Whisper's encoder (plus an average pooling without weights), so a `WhisperModel` or
`WhisperForConditionalGeneration` checkpoint loads into it through transformers' checkpoint conversion mechanism:
`from_pretrained(..., key_mapping=...)` turns the mapping into `WeightRenaming` transforms applied while loading,
the same transforms `weight_mapping.py` registers for the released layout. The decoder's weights are left out.
"""

import os

from transformers import WhisperConfig
from transformers.utils import logging

from ..configuration_qwen_audio import QwenAudioEncoderConfig
from ..modeling_qwen_audio import QwenAudioEncoder


logger = logging.get_logger(__name__)

# WhisperModel: `encoder.*`; WhisperForConditionalGeneration: `model.encoder.*`. Below the prefix, Whisper's encoder
# and ours (transformers' Qwen2-Audio encoder) share module names.
WHISPER_ENCODER_KEY_MAPPING = {r"^(?:model\.)?encoder\.": ""}
# Architecture fields that must agree for the weights to fit.
_MATCHING_FIELDS = ("num_mel_bins", "d_model", "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim",
                    "max_source_positions")


def check_whisper_encoder_config(whisper_config: WhisperConfig, audio_config: QwenAudioEncoderConfig) -> None:
    mismatches = [
        f"{name}: Whisper {getattr(whisper_config, name)} vs Qwen-Audio {getattr(audio_config, name)}"
        for name in _MATCHING_FIELDS
        if getattr(whisper_config, name) != getattr(audio_config, name)
    ]
    if mismatches:
        raise ValueError(
            "The Whisper checkpoint's encoder does not fit this model's audio encoder (" + "; ".join(mismatches) + "). "
            "Qwen-Audio uses Whisper-large-v2 (80 mel bins, d_model 1280, 32 layers); set `model_config.audio_config` "
            "to the Whisper checkpoint's sizes when training from scratch."
        )


def load_whisper_encoder(whisper_path: str | os.PathLike, audio_config: QwenAudioEncoderConfig) -> QwenAudioEncoder:
    """A Qwen-Audio encoder with the weights of the Whisper checkpoint at `whisper_path` (a local folder)."""
    whisper_config = WhisperConfig.from_pretrained(whisper_path)
    if whisper_config.model_type != "whisper":
        raise ValueError(f"{whisper_path} is a {whisper_config.model_type!r} checkpoint, not a Whisper one.")
    check_whisper_encoder_config(whisper_config, audio_config)
    encoder, loading_info = QwenAudioEncoder.from_pretrained(
        whisper_path, config=audio_config, key_mapping=WHISPER_ENCODER_KEY_MAPPING, output_loading_info=True
    )
    # Whisper's sinusoidal position table is stored in its checkpoint; ours is rebuilt at init, so it may be missing.
    missing = [key for key in loading_info["missing_keys"] if "embed_positions" not in key]
    if missing:
        raise ValueError(f"The Whisper checkpoint at {whisper_path} lacks encoder weights: {sorted(missing)[:8]} ...")
    return encoder


def init_audio_encoder_from_whisper(model, whisper_path: str | os.PathLike) -> None:
    """Copies the Whisper checkpoint's encoder weights into `model` (a `QwenAudioForConditionalGeneration`); the
    projection into the language model and the language model itself are untouched."""
    encoder = load_whisper_encoder(whisper_path, model.config.audio_config)
    target = model.model.audio_tower
    result = target.load_state_dict(encoder.state_dict(), strict=True)
    logger.info(f"Audio encoder initialised from the Whisper checkpoint {whisper_path} ({result}).")


__all__ = ["WHISPER_ENCODER_KEY_MAPPING", "init_audio_encoder_from_whisper", "load_whisper_encoder"]
