"""transformers 5 conventions the common model tests found broken, driven the way a user calls them."""

import pytest
import torch

from transformers_qwen_audio import QwenAudioConfig, QwenAudioForConditionalGeneration
from transformers_qwen_audio.modeling_qwen_audio import IM_END_ID, IM_START_ID, audio_token_lengths
from test_modeling_inputs import END, START, clips, prompt, tiny_config


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return QwenAudioForConditionalGeneration(tiny_config()).eval()


def test_from_pretrained_with_loading_info(tmp_path, model):
    model.save_pretrained(tmp_path)
    loaded, info = QwenAudioForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(loaded, QwenAudioForConditionalGeneration)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()


def test_chat_stop_ids_written_into_the_generation_config_on_load(tmp_path):
    """A native checkpoint whose generation config names only <|endoftext|> gets the ChatML stops once, on load."""
    config = QwenAudioConfig(
        text_config=dict(vocab_size=IM_START_ID + 8, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2),
        audio_config=dict(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32),
        audio_start_id=IM_START_ID + 4, audio_token_id=IM_START_ID + 3, eos_token_id=151643,
    )
    QwenAudioForConditionalGeneration(config).save_pretrained(tmp_path)
    loaded = QwenAudioForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.generation_config.eos_token_id == [151643, IM_END_ID, IM_START_ID]
    loaded.save_pretrained(tmp_path / "again")
    assert QwenAudioForConditionalGeneration.from_pretrained(tmp_path / "again").generation_config.eos_token_id == [
        151643, IM_END_ID, IM_START_ID
    ]


def test_get_audio_features_follows_the_5x_convention(model):
    features, mask = clips(16000, 8000)
    with torch.no_grad():
        outputs = model.get_audio_features(features, mask)
        as_tuple = model.get_audio_features(features, mask, return_dict=False)
    tokens = audio_token_lengths(mask.sum(-1))
    assert outputs.last_hidden_state.shape == (2, int(tokens.max()), 16)  # the encoder's output, d_model wide
    assert outputs.pooler_output.shape == (int((tokens + 2).sum()), 32)  # span embeddings, decoder wide
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], outputs.last_hidden_state)
    assert torch.equal(as_tuple[1], outputs.pooler_output)


def test_pooler_output_is_exactly_what_fills_the_spans(model):
    features, mask = clips(16000, 8000)
    ids = prompt(16000, 8000)
    seen = {}
    hook = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.update(embeds=kwargs["inputs_embeds"]), with_kwargs=True
    )
    try:
        with torch.no_grad():
            model(ids, input_features=features, feature_attention_mask=mask)
            pooled = model.get_audio_features(features, mask).pooler_output
    finally:
        hook.remove()
    span = (ids == START).cumsum(-1) - (ids == END).cumsum(-1)
    span_positions = (span > 0) | (ids == END)
    assert torch.equal(seen["embeds"][span_positions], pooled)


def test_get_audio_features_records_encoder_hidden_states_and_attentions():
    torch.manual_seed(0)
    model = QwenAudioForConditionalGeneration(tiny_config()).eval()
    model.set_attn_implementation("eager")
    features, mask = clips(16000)
    outputs = model.get_audio_features(features, mask, output_hidden_states=True, output_attentions=True)
    assert len(outputs.hidden_states) == 3 and outputs.hidden_states[0].shape[-1] == 16
    assert len(outputs.attentions) == 2 and outputs.attentions[0].shape[:2] == (1, 2)


def test_inputs_embeds_with_input_features_match_input_ids(model):
    features, mask = clips(16000, 8000)
    ids = prompt(16000, 8000)
    embeds = model.get_input_embeddings()(ids)
    with torch.no_grad():
        from_ids = model(ids, input_features=features, feature_attention_mask=mask).logits
        from_embeds = model(inputs_embeds=embeds, input_features=features, feature_attention_mask=mask).logits
    assert torch.equal(from_ids, from_embeds)


@pytest.mark.parametrize("num_beams", [1, 2])
def test_generate_from_inputs_embeds_with_input_features(model, num_beams):
    features, mask = clips(16000, 8000)
    ids = prompt(16000, 8000)
    kwargs = dict(input_features=features, feature_attention_mask=mask, max_new_tokens=4, do_sample=False,
                  num_beams=num_beams)
    from_ids = model.generate(ids, **kwargs)[:, ids.shape[1]:]
    from_embeds = model.generate(inputs_embeds=model.get_input_embeddings()(ids), **kwargs)
    assert torch.equal(from_ids, from_embeds)


def test_inputs_embeds_spans_are_checked_against_the_clips(model):
    features, mask = clips(16000)
    embeds = model.get_input_embeddings()(prompt(8000))
    with pytest.raises(ValueError, match="needs"):
        model(inputs_embeds=embeds, input_features=features, feature_attention_mask=mask)


def test_save_in_original_format_refuses_grouped_kv_heads(tmp_path):
    model = QwenAudioForConditionalGeneration(tiny_config(num_key_value_heads=2))
    with pytest.raises(ValueError, match="no room for 2 key/value heads with 4 query heads"):
        model.save_pretrained(tmp_path, save_original_format=True)
    assert not any(tmp_path.iterdir())
    model.save_pretrained(tmp_path)  # the native format holds it
    assert (tmp_path / "model.safetensors").is_file()


def test_docstring_examples_run():
    import doctest

    from transformers_qwen_audio import modeling_qwen_audio

    results = doctest.testmod(modeling_qwen_audio, optionflags=doctest.ELLIPSIS)
    assert results.attempted >= 10 and results.failed == 0


def test_past_key_values_is_the_deprecated_name_of_cache(model):
    """transformers 5.24 renames `past_key_values` to `cache` (`deprecate_kwarg`); the old name still works."""
    step = torch.tensor([[8]])
    with torch.no_grad():
        with pytest.warns(FutureWarning, match="past_key_values"):
            old_name = model(step, past_key_values=model(prompt(), use_cache=True).cache, use_cache=True)
        new_name = model(step, cache=model(prompt(), use_cache=True).cache, use_cache=True)
    assert torch.equal(old_name.logits, new_name.logits)
