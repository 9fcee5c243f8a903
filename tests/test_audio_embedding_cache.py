"""The frozen audio encoder's embeddings kept per clip during fine-tuning (`training.audio_embedding_cache`)."""

import pytest
import torch

from transformers_qwen_audio import QwenAudioForConditionalGeneration
from transformers_qwen_audio.training.audio_embedding_cache import (
    CachedAudioFeatures,
    cache_frozen_audio_embeddings,
    encoder_is_frozen_and_deterministic,
)
from transformers_qwen_audio.training.model_setup import set_trainable_modules

from test_modeling_inputs import END, PLACEHOLDER, START, span, tiny_config


def frozen_encoder_model():
    torch.manual_seed(0)
    model = QwenAudioForConditionalGeneration(tiny_config()).train()
    set_trainable_modules(model, "language_model")
    return model


def batch(clip_rows: list[list[int]], frames: int = 3000, seed: int = 1):
    """Rows of `[5, 6, span, 7, span, 7, ...]` (right-padded) for the clips of each row, given as sample counts; a
    clip's features depend on its sample count only, so that the same count is the same clip in every batch."""
    rows, features, masks = [], [], []
    for samples_of_row in clip_rows:
        ids = [5, 6]
        for samples in samples_of_row:
            ids += span(samples) + [7]
            generator = torch.Generator().manual_seed(seed * 100_000 + samples)
            features.append(torch.randn(80, frames, generator=generator))
            mask = torch.zeros(frames, dtype=torch.long)
            mask[: samples // 160] = 1
            masks.append(mask)
        rows.append(ids)
    width = max(map(len, rows))
    input_ids = torch.tensor([ids + [0] * (width - len(ids)) for ids in rows])
    attention_mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in rows])
    return dict(input_ids=input_ids, attention_mask=attention_mask, input_features=torch.stack(features),
                feature_attention_mask=torch.stack(masks))


def logits(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits


class CountingEncoder:
    """Counts the clips `CachedAudioFeatures` hands to the encoder."""

    def __init__(self, cached: CachedAudioFeatures):
        self.encoded, self.inner = [], cached.encode
        cached.encode = self

    def __call__(self, input_features, *args, **kwargs):
        self.encoded.append(input_features.shape[0])
        return self.inner(input_features, *args, **kwargs)


def test_cached_embeddings_are_the_encoded_ones_and_a_clip_is_encoded_once():
    model = frozen_encoder_model()
    first, again = batch([[16000], [8000, 24000]]), batch([[8000], [16000]])
    expected_first, expected_again = logits(model, first), logits(model, again)

    cached = cache_frozen_audio_embeddings(model, 16)
    assert isinstance(cached, CachedAudioFeatures) and model.model.get_audio_features is cached
    counter = CountingEncoder(cached)
    torch.testing.assert_close(logits(model, first), expected_first, rtol=1e-5, atol=1e-5)
    assert counter.encoded == [3] and cached.cache.misses == 3 and len(cached.cache) == 3
    torch.testing.assert_close(logits(model, first), expected_first, rtol=1e-5, atol=1e-5)
    assert counter.encoded == [3] and cached.cache.hits == 3

    # 8000 samples was encoded beside a longer clip: alone it is another entry (the original trims a prompt's clips
    # to the longest, so a short clip's encoding reads padded frames up to that length); 16000 is a hit.
    torch.testing.assert_close(logits(model, again), expected_again, rtol=1e-5, atol=1e-5)
    assert counter.encoded == [3, 1] and cached.cache.hits == 4 and len(cached.cache) == 4


def test_only_the_rows_with_an_unseen_clip_are_encoded_and_together():
    model = frozen_encoder_model()
    cached = cache_frozen_audio_embeddings(model, 16)
    logits(model, batch([[16000], [32000]]))
    counter = CountingEncoder(cached)
    # The second row's short clip is new, and its encoding reads the long one's length: that row is encoded whole
    # (the long clip again, beside it); the first row's clip is served.
    mixed = batch([[16000], [4000, 32000]])
    served = logits(model, mixed)
    assert counter.encoded == [2]
    del model.model.get_audio_features
    torch.testing.assert_close(served, logits(model, mixed), rtol=1e-5, atol=1e-5)


def test_the_cache_keeps_to_its_memory_budget():
    model = frozen_encoder_model()
    one_clip = len(span(16000)) * model.config.text_config.hidden_size * 4  # float32 span embeddings
    cached = cache_frozen_audio_embeddings(model, 2.5 * one_clip / 2**20)
    for samples in (16000, 16040, 16160, 16200):  # four clips of 25 audio tokens
        logits(model, batch([[samples]]))
        assert cached.cache.bytes <= cached.cache.max_bytes
    assert len(cached.cache) == 2


def test_no_cache_for_an_encoder_that_trains_or_is_random():
    model = QwenAudioForConditionalGeneration(tiny_config()).train()
    set_trainable_modules(model, "all")
    assert not encoder_is_frozen_and_deterministic(model) and cache_frozen_audio_embeddings(model, 16) is None

    spec_augment = tiny_config()
    spec_augment.audio_config.apply_spec_augment, spec_augment.audio_config.mask_time_prob = True, 0.5
    model = QwenAudioForConditionalGeneration(spec_augment).train()
    set_trainable_modules(model, "language_model")
    assert cache_frozen_audio_embeddings(model, 16) is None
    assert encoder_is_frozen_and_deterministic(model.eval())  # evaluation applies no SpecAugment

    # Unfrozen after the cache was installed: every clip is encoded again.
    model = frozen_encoder_model()
    cached = cache_frozen_audio_embeddings(model, 16)
    counter = CountingEncoder(cached)
    inputs = batch([[16000]])
    logits(model, inputs)
    model.model.multi_modal_projector.requires_grad_(True)
    logits(model, inputs)
    assert counter.encoded == [1, 1] and cached.cache.hits == 0
    assert cache_frozen_audio_embeddings(frozen_encoder_model(), 0) is None
    with pytest.raises(ValueError, match="audio_embedding_cache_mb"):
        cache_frozen_audio_embeddings(frozen_encoder_model(), -1)


def test_gradients_reach_the_language_model_through_cached_clips():
    model = frozen_encoder_model()
    cache_frozen_audio_embeddings(model, 16)
    inputs = batch([[16000]])
    labels = inputs["input_ids"].clone()
    labels[(labels == START) | (labels == END) | (labels == PLACEHOLDER)] = -100
    for _ in range(2):  # the second pass reads the clip from the cache
        model.zero_grad()
        model(**inputs, labels=labels).loss.backward()
        assert model.model.language_model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
        assert model.model.multi_modal_projector.linear.weight.grad is None
