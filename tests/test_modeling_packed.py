"""Requests packed into one row, as vLLM's transformers backend runs a batch: `[1, total_tokens]`, positions restarting
at 0 per request, attention through a function registered with transformers' `AttentionInterface` that sees only
what the model passes down (`position_ids` among the `**kwargs`). Each request must get its logits as when alone."""

import pytest
import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from transformers_qwen_audio import QwenAudioForConditionalGeneration
from transformers_qwen_audio.modeling_qwen_audio import QwenAudioAttention
from test_modeling_inputs import END, START, clips, prompt, tiny_config

seen_layers = []


def packed_causal_attention(module, query, key, value, attention_mask, position_ids=None, **kwargs):
    """Block-diagonal causal attention from the packed positions (a varlen kernel in vLLM)."""
    seen_layers.append(module.layer_idx)
    request = (position_ids == 0).long().cumsum(-1)  # [1, total]: which request each token belongs to
    length = request.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=query.device).tril()
    mask = (request[:, :, None] == request[:, None, :]) & causal
    return sdpa_attention_forward(module, query, key, value, mask[:, None], **kwargs)


AttentionInterface.register("test_packed_causal", packed_causal_attention)


@pytest.fixture(scope="module")
def model():
    # seq_length 40: each request stays below it, the packed row goes past it (log-n is then computed, per position)
    torch.manual_seed(0)
    model = QwenAudioForConditionalGeneration(tiny_config(seq_length=40)).eval()
    with torch.no_grad():  # encoder weights large enough that encoding the two requests' clips together would show
        for parameter in model.model.audio_tower.parameters():
            parameter.normal_(0, 0.5)
    model.set_attn_implementation({"text_config": "test_packed_causal", "audio_config": "sdpa"})
    return model


def requests():
    features, mask = clips(16000, 8000)
    first, second = prompt(16000)[0], prompt(8000)[0]
    return [(first, features[:1], mask[:1]), (second, features[1:], mask[1:])]


def alone_logits(model, ids, features, mask):
    alone = QwenAudioForConditionalGeneration(model.config).eval()
    alone.load_state_dict(model.state_dict())
    alone.set_attn_implementation("sdpa")
    with torch.no_grad():
        return alone(ids[None], input_features=features, feature_attention_mask=mask).logits[0]


def packed_inputs():
    parts = requests()
    ids = torch.cat([ids for ids, _, _ in parts])[None]
    positions = torch.cat([torch.arange(len(ids)) for ids, _, _ in parts])[None]
    features = torch.cat([features for _, features, _ in parts])
    mask = torch.cat([mask for _, _, mask in parts])
    return parts, ids, positions, features, mask


def test_attention_is_a_registered_function_with_layer_idx(model):
    attention = [module for module in model.modules() if isinstance(module, QwenAudioAttention)]
    assert [module.layer_idx for module in attention] == [0, 1]
    assert type(model)._supports_attention_backend
    assert model.language_model is model.model.language_model  # vLLM reaches the decoder here
    seen_layers.clear()
    _, ids, positions, features, mask = packed_inputs()
    with torch.no_grad():
        model(ids, position_ids=positions, input_features=features, feature_attention_mask=mask, use_cache=False)
    assert seen_layers == [0, 1]


def test_packed_requests_get_their_logits_as_alone(model):
    parts, ids, positions, features, mask = packed_inputs()
    assert ids.shape[1] > model.config.text_config.seq_length > max(len(part[0]) for part in parts)
    with torch.no_grad():
        packed = model(ids, position_ids=positions, input_features=features, feature_attention_mask=mask,
                       use_cache=False).logits[0]
    offset = 0
    for part in parts:
        expected = alone_logits(model, *part)
        assert (packed[offset:offset + len(part[0])] - expected).abs().max().item() < 1e-5
        offset += len(part[0])


def test_packed_decoder_on_embeddings_filled_from_pooler_output(model):
    """vLLM's path: the audio features' `pooler_output` scattered into the span positions, then the decoder alone."""
    parts, ids, positions, features, mask = packed_inputs()
    with torch.no_grad():
        embeds = model.get_input_embeddings()(ids)
        # each request's clips are encoded on their own, as vLLM encodes each request's audio
        pooled = torch.cat([model.get_audio_features(f, m).pooler_output for _, f, m in parts])
        depth = (ids == START).cumsum(-1) - (ids == END).cumsum(-1)
        spans = ((depth > 0) | (ids == END))[..., None].expand_as(embeds)
        embeds = embeds.masked_scatter(spans, pooled)
        hidden = model.language_model(inputs_embeds=embeds, position_ids=positions, use_cache=False)
        packed = model.lm_head(hidden.last_hidden_state)[0]
    offset = 0
    for part in parts:
        expected = alone_logits(model, *part)
        assert (packed[offset:offset + len(part[0])] - expected).abs().max().item() < 1e-5
        offset += len(part[0])
