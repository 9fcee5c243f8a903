"""Quantized loading keeps the audio encoder, its projection and lm_head in 16 bits; torchao int8 weight-only on CPU."""

import pytest
import torch
from transformers import BitsAndBytesConfig, TorchAoConfig

from transformers_qwen_audio import QwenAudioForConditionalGeneration
from transformers_qwen_audio.modeling_qwen_audio import keep_modules_unquantized
from test_modeling_inputs import clips, prompt, tiny_config

KEPT = ["model.audio_tower", "model.multi_modal_projector", "lm_head"]


def test_quantization_configs_get_the_model_s_skipped_modules():
    bnb = keep_modules_unquantized(BitsAndBytesConfig(load_in_8bit=True), KEPT)
    assert bnb.llm_int8_skip_modules == KEPT
    users = BitsAndBytesConfig(load_in_4bit=True, llm_int8_skip_modules=["lm_head"])
    assert keep_modules_unquantized(users, KEPT).llm_int8_skip_modules == ["lm_head"]  # the user's list wins
    as_dict = keep_modules_unquantized({"quant_method": "bitsandbytes", "llm_int8_skip_modules": None}, KEPT)
    assert as_dict["llm_int8_skip_modules"] == KEPT
    assert QwenAudioForConditionalGeneration._modules_kept_in_16_bits == KEPT


@pytest.fixture(scope="module")
def float_and_int8(tmp_path_factory):
    torchao_quantization = pytest.importorskip("torchao.quantization")
    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    # wider than the other tiny tests: int8 rows need more than a handful of weights to be representative
    QwenAudioForConditionalGeneration(tiny_config(hidden_size=64, intermediate_size=128)).save_pretrained(folder)
    reference = QwenAudioForConditionalGeneration.from_pretrained(folder).eval()
    config = TorchAoConfig(torchao_quantization.Int8WeightOnlyConfig())
    quantized = QwenAudioForConditionalGeneration.from_pretrained(folder, quantization_config=config).eval()
    assert config.modules_to_not_convert is None  # the caller's config is left as given
    return reference, quantized


def is_plain(weight):
    return type(weight.data) in (torch.Tensor, torch.nn.Parameter)


def test_torchao_int8_keeps_audio_and_lm_head_unquantized(float_and_int8):
    _, quantized = float_and_int8
    assert quantized.config.quantization_config.modules_to_not_convert == KEPT
    decoder_layer = quantized.model.language_model.layers[0]
    assert not is_plain(decoder_layer.self_attn.q_proj.weight) and not is_plain(decoder_layer.mlp.down_proj.weight)
    assert is_plain(quantized.lm_head.weight) and quantized.lm_head.weight.dtype == torch.float32
    assert is_plain(quantized.model.multi_modal_projector.linear.weight)
    assert all(is_plain(module.weight) for module in quantized.model.audio_tower.modules()
               if isinstance(module, torch.nn.Linear))


def test_torchao_int8_logits_close_and_greedy_agreement(float_and_int8):
    reference, quantized = float_and_int8
    features, mask = clips(16000, 8000)
    ids = prompt(16000, 8000)
    with torch.no_grad():
        expected = reference(ids, input_features=features, feature_attention_mask=mask).logits
        got = quantized(ids, input_features=features, feature_attention_mask=mask).logits
    relative_error = ((got - expected).abs().max() / expected.abs().max()).item()
    assert relative_error < 0.05, relative_error
    greedy = dict(input_features=features, feature_attention_mask=mask, max_new_tokens=8, do_sample=False)
    agreement = (reference.generate(ids, **greedy) == quantized.generate(ids, **greedy))[0, ids.shape[1]:]
    assert agreement.float().mean().item() >= 0.5, agreement
