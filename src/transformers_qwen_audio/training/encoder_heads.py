# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Training-only heads on the audio encoder and their losses, for pre-training from scratch.

A decoder-only model trained from random weights first learns the language of its targets and only later finds the
words in the audio prefix: the loss sits on a plateau until it does (on the tiny multitask recipe: minutes on a CPU,
and some seeds never leave it within the budget). A CTC head on the encoder output, trained on the transcript of
transcription examples, gives the encoder a direct signal from the first step, so the audio tokens the decoder reads
already carry the words, in order. The same remedy as the joint CTC-attention training of ESPnet (Watanabe et al.,
2017); transformers' `Wav2Vec2ForCTC` computes the same `ctc_loss`, but on its own model only, hence this module.

The CTC vocabulary is the transcript's UTF-8 bytes (class 0 is the blank, byte b is class b + 1): it does not depend
on the tokenizer, covers every language, and byte rates stay below the encoder's 25 tokens/s for speech. The head is
a training-only submodule (`encoder_ctc_head`): intermediate checkpoints keep it, so training resumes exactly;
`remove_training_heads` takes it off before the final model is saved, which is a plain `QwenAudioForConditionalGeneration`.

CTC is indifferent to where in the clip a token lies, and an encoder trained with it forgets its input's positions,
which the decoder needs to place word timestamps. A second training-only head (`encoder_position_head`,
`encoder_position_weight`) asks every audio token for its own index, so the position stays readable.
"""

import torch
from torch import nn

from ..modeling_qwen_audio import audio_token_lengths, clip_mel_lengths
from .collators import IGNORE_INDEX


CTC_VOCAB_SIZE = 257  # the blank (0, see collators.transcript_ctc_labels) + 256 byte values
HEAD_NAME = "encoder_ctc_head"
POSITION_HEAD_NAME = "encoder_position_head"


def _attach_head(model, name: str, outputs: int) -> nn.Linear:
    """A linear training-only head (encoder width -> `outputs`) added to `model` as `name`, so the optimizer and
    checkpoints see it; the existing one if it has it already."""
    head = getattr(model, name, None)
    if head is None:
        audio_config = model.config.audio_config
        head = nn.Linear(audio_config.d_model, outputs)
        nn.init.normal_(head.weight, std=audio_config.d_model**-0.5)
        nn.init.zeros_(head.bias)
        head.to(device=model.device, dtype=next(model.model.audio_tower.parameters()).dtype)
        model.add_module(name, head)
    return head


def attach_encoder_ctc_head(model) -> nn.Linear:
    """Adds the training-only CTC head (encoder width -> bytes + blank) to `model`; returns it. Idempotent."""
    return _attach_head(model, HEAD_NAME, CTC_VOCAB_SIZE)


def attach_encoder_position_head(model) -> nn.Linear:
    """Adds the training-only head of `encoder_position_weight` (encoder width -> the 750 token positions of a 30 s
    window) to `model`; returns it. Idempotent."""
    return _attach_head(model, POSITION_HEAD_NAME, model.config.audio_config.max_source_positions // 2)


def remove_training_heads(model) -> None:
    """Takes the training-only heads (CTC, position) off `model` (before the final save)."""
    for name in (HEAD_NAME, POSITION_HEAD_NAME):
        if hasattr(model, name):
            delattr(model, name)


def encoder_position_loss(head: nn.Module, encoder_states: torch.Tensor, input_features, feature_attention_mask,
                          audio_config) -> torch.Tensor:
    """Mean cross-entropy of every audio token of every clip predicting its own index (its time, at 25 tokens/s)."""
    lengths = audio_token_lengths(clip_mel_lengths(input_features, feature_attention_mask, audio_config))
    positions = torch.arange(encoder_states.shape[1], device=encoder_states.device)
    targets = torch.where(positions[None, :] < lengths.to(positions.device)[:, None], positions[None, :], IGNORE_INDEX)
    logits = head(encoder_states).float()
    return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)


def encoder_ctc_loss(head: nn.Module, encoder_states: torch.Tensor, input_features, feature_attention_mask,
                     ctc_labels: torch.Tensor, audio_config) -> torch.Tensor | None:
    """Mean CTC loss (per target byte, then over clips) of the clips that have a transcript; None when none has."""
    target_lengths = (ctc_labels != IGNORE_INDEX).sum(-1)
    has_target = target_lengths > 0
    if not bool(has_target.any()):
        return None
    input_lengths = audio_token_lengths(clip_mel_lengths(input_features, feature_attention_mask, audio_config))
    log_probs = head(encoder_states[has_target]).float().log_softmax(-1)
    targets = ctc_labels[has_target].clamp(min=0)
    # zero_infinity: a transcript longer than its clip's encoder tokens cannot be aligned; it contributes nothing
    # rather than an infinite loss.
    return nn.functional.ctc_loss(
        log_probs.transpose(0, 1), targets, input_lengths[has_target].to(log_probs.device),
        target_lengths[has_target].to(log_probs.device), blank=0, reduction="mean", zero_infinity=True,
    )


__all__ = [
    "CTC_VOCAB_SIZE",
    "HEAD_NAME",
    "POSITION_HEAD_NAME",
    "attach_encoder_ctc_head",
    "attach_encoder_position_head",
    "encoder_ctc_loss",
    "encoder_position_loss",
    "remove_training_heads",
]
