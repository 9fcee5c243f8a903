# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
A frozen audio encoder's embeddings, computed once per clip instead of at every read.

Fine-tuning with `freeze_audio_encoder` (the paper's Qwen-Audio-Chat stage) encodes each clip again whenever a
dialogue holding it is drawn, although the encoder's output cannot change: on the tiny SFT recipe the encoder's
forward was 35 of a step's 225 ms, for 4,000 clips read 9,600 times an epoch. `cache_frozen_audio_embeddings`
makes the model's `get_audio_features` keep each clip's span embeddings (`pooler_output`: audio bos, tokens, eos,
what the decoder reads) within a memory budget and encode only the clips it has not seen.

A clip is known by what its encoding reads (the original encodes the clips of one prompt trimmed to the longest:
`clip_trim_frames`): its log-mel frames up to that length, hashed, and its mel length. Cached embeddings equal
re-encoded ones up to float rounding (a clip encoded in another batch shape), not bit for bit. The cache serves
only a deterministic, frozen encoder: with a trainable parameter, SpecAugment or dropout in training mode, it
encodes as before.
"""

import hashlib

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from ..modeling_qwen_audio import audio_token_lengths, clip_mel_lengths, clip_trim_frames
from .memory_bounded_cache import MemoryBoundedCache


AUDIO_EMBEDDING_CACHE_HELP = (
    "With `freeze_audio_encoder`, keep each clip's audio embeddings (the frozen encoder's output) in memory, up to "
    "this many megabytes, so that a clip read again is not encoded again (0: encode at every read). A clip of "
    "s seconds takes 25 * s * hidden_size * 4 bytes in float32: 50 KB for a 4 s clip of the tiny model, 16 MB for "
    "30 s of Qwen-Audio in float32."
)


def _encoder_modules(model):
    inner = model.model
    return inner.audio_tower, inner.multi_modal_projector, inner.audio_boundary_embeddings


def encoder_is_frozen_and_deterministic(model) -> bool:
    """Whether the audio encoder's output depends on its input alone: no trainable parameter, and in training mode
    neither SpecAugment nor dropout."""
    modules = _encoder_modules(model)
    if any(parameter.requires_grad for module in modules for parameter in module.parameters()):
        return False
    tower = modules[0]
    if not tower.training:
        return True
    config = tower.config
    dropouts = (getattr(config, name, 0.0) or 0.0 for name in ("dropout", "attention_dropout", "activation_dropout"))
    return not config.apply_spec_augment and not any(dropouts)


class CachedAudioFeatures:
    """
    Stands in for `QwenAudioModel.get_audio_features` (installed by `cache_frozen_audio_embeddings`): the span
    embeddings of clips seen before come from the cache; the others are encoded, together with the clips of their
    own sequences (their trim length depends on them), and kept. Returns `pooler_output` only (the decoder's input);
    asking for the encoder's hidden states or attentions encodes every clip as before.
    """

    def __init__(self, model, max_bytes: int):
        self.model = model
        self.encode = model.model.get_audio_features  # the bound method this object stands in for
        self.cache = MemoryBoundedCache(max_bytes, what="audio embedding cache")

    @staticmethod
    def clip_keys(input_features, mel_lengths, sequence_ids) -> list:
        trims = clip_trim_frames(mel_lengths, sequence_ids).clamp(max=input_features.shape[-1])
        keys = []
        for features, mel_length, trim in zip(input_features, mel_lengths.tolist(), trims.tolist()):
            read = features[:, :trim].detach().to("cpu", torch.float32).contiguous().numpy()
            digest = hashlib.blake2b(read.tobytes(), digest_size=16).hexdigest()
            keys.append((digest, read.shape, mel_length))
        return keys

    def __call__(self, input_features, feature_attention_mask=None, audio_sequence_ids=None, **kwargs):
        if any(kwargs.get(name) for name in ("output_hidden_states", "output_attentions")) or \
                not encoder_is_frozen_and_deterministic(self.model):
            return self.encode(input_features, feature_attention_mask, audio_sequence_ids=audio_sequence_ids,
                               **kwargs)
        num_clips = input_features.shape[0]
        if audio_sequence_ids is None:
            audio_sequence_ids = torch.zeros(num_clips, dtype=torch.long, device=input_features.device)
        mel_lengths = clip_mel_lengths(input_features, feature_attention_mask, self.model.config.audio_config)
        keys = self.clip_keys(input_features, mel_lengths, audio_sequence_ids)
        spans = [self.cache.get(key) for key in keys]
        missing = [clip for clip, span in enumerate(spans) if span is None]
        if missing:
            # Every clip of a sequence with a missing clip: they are encoded together, as without the cache.
            sequences = audio_sequence_ids[missing].unique()
            encoded = torch.isin(audio_sequence_ids, sequences).nonzero().flatten()
            mask = None if feature_attention_mask is None else feature_attention_mask[encoded]
            with torch.no_grad():
                embeddings = self.encode(
                    input_features[encoded], mask, audio_sequence_ids=audio_sequence_ids[encoded], **kwargs
                ).pooler_output
            span_lengths = (audio_token_lengths(mel_lengths[encoded]) + 2).tolist()
            for clip, span in zip(encoded.tolist(), embeddings.split(span_lengths)):
                spans[clip] = self.cache.put(keys[clip], span.detach().clone())  # not a view of the batch
        return BaseModelOutputWithPooling(pooler_output=torch.cat(spans))


def cache_frozen_audio_embeddings(model, max_megabytes: float) -> CachedAudioFeatures | None:
    """Makes `model` (a `QwenAudioForConditionalGeneration`, or a PEFT model around one) keep its frozen audio
    encoder's embeddings per clip, up to `max_megabytes`; returns the cache (its `hits`, `misses`, `bytes`), or
    None when `max_megabytes` is 0 or the encoder trains."""
    if not max_megabytes >= 0:
        raise ValueError(f"`audio_embedding_cache_mb` must be 0 or more, got {max_megabytes!r}.")
    model = getattr(model, "get_base_model", lambda: model)()
    if not max_megabytes or not encoder_is_frozen_and_deterministic(model):
        return None
    cached = CachedAudioFeatures(model, int(max_megabytes * 2**20))
    # An instance attribute: `QwenAudioModel.forward` calls `self.get_audio_features`, and nothing is saved with it.
    model.model.get_audio_features = cached
    return cached


__all__ = [
    "AUDIO_EMBEDDING_CACHE_HELP",
    "CachedAudioFeatures",
    "cache_frozen_audio_embeddings",
    "encoder_is_frozen_and_deterministic",
]
