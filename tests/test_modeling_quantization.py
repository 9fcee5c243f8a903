"""Quantized loading keeps the audio encoder, its projection and lm_head in 16 bits: torchao int8 weight-only and
bitsandbytes 8-bit / 4-bit NF4, on CPU, on tiny random models and on the original implementation's reference cases."""

import pytest
import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, TorchAoConfig

from transformers_qwen_audio import QwenAudioForConditionalGeneration
from transformers_qwen_audio.modeling_qwen_audio import keep_modules_unquantized
from reference_cases import checkpoint_for_case, model_case_inputs, model_outputs
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


# --- the original implementation's reference checkpoint (released layout), quantized on load ---------------------

CASE = "tiny.one_audio"  # its float32 greedy path is the best separated of the audio cases (top-1/top-2 gap 0.045)


def reference_case_outputs(quantization_config):
    """A quantized load of the reference case's checkpoint: the model, its no-cache logits, 12 greedy tokens."""
    model = AutoModelForCausalLM.from_pretrained(checkpoint_for_case(CASE), quantization_config=quantization_config)
    input_ids, audio = model_case_inputs(CASE)
    with torch.no_grad():
        logits = model.eval()(input_ids, **audio).logits[0]
        generated = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=12,
                                   min_new_tokens=12, do_sample=False, **audio)[0, input_ids.shape[1]:]
    return model, logits, generated


def compared_to_float32(logits):
    """Relative max logits error and the share of prompt positions whose top-1 token is the float32 model's
    (the original's logits, which our float32 model reproduces to 2e-6)."""
    expected = model_outputs()[f"{CASE}.logits"]
    relative_error = ((logits - expected).abs().max() / expected.abs().max()).item()
    return relative_error, (logits.argmax(-1) == expected.argmax(-1)).float().mean().item()


def test_torchao_int8_on_the_released_layout_quantizes_every_split_qkv_projection():
    # The released checkpoint stores q, k and v fused (c_attn); transformers' torchao op used to keep only the first
    # tensor of the split and leave k_proj / v_proj randomly initialised (relative logits error ~1).
    torchao_quantization = pytest.importorskip("torchao.quantization")
    config = TorchAoConfig(torchao_quantization.Int8WeightOnlyConfig())
    model, info = AutoModelForCausalLM.from_pretrained(checkpoint_for_case(CASE), quantization_config=config,
                                                       output_loading_info=True)
    assert not info["missing_keys"], info["missing_keys"]
    attention = model.model.language_model.layers[0].self_attn
    assert not any(is_plain(projection.weight) for projection in (attention.q_proj, attention.k_proj, attention.v_proj))
    input_ids, audio = model_case_inputs(CASE)
    with torch.no_grad():
        relative_error, top1 = compared_to_float32(model.eval()(input_ids, **audio).logits[0])
    assert relative_error < 0.05 and top1 > 0.9, (relative_error, top1)


def bitsandbytes_linear_classes():
    bnb = pytest.importorskip("bitsandbytes")
    return bnb.nn.Linear8bitLt, bnb.nn.Linear4bit


def linears(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


@pytest.mark.parametrize("bits", [8, 4])
def test_bitsandbytes_keeps_audio_projector_and_lm_head_float_and_follows_float32(bits):
    linear_8bit, linear_4bit = bitsandbytes_linear_classes()
    quantized_class = linear_8bit if bits == 8 else linear_4bit
    config = (BitsAndBytesConfig(load_in_8bit=True) if bits == 8
              else BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4"))
    model, logits, generated = reference_case_outputs(config)
    assert model.config.quantization_config.llm_int8_skip_modules == KEPT
    decoder = model.model.language_model
    assert linears(decoder.layers) and all(type(m) is quantized_class for m in linears(decoder.layers))
    kept = [model.lm_head, *linears(model.model.audio_tower), *linears(model.model.multi_modal_projector)]
    assert all(type(m) is torch.nn.Linear and m.weight.dtype == torch.float32 for m in kept)
    relative_error, top1 = compared_to_float32(logits)
    expected_tokens = model_outputs()[f"{CASE}.generated"]  # the original's greedy tokens = our float32 model's
    if bits == 8:  # LLM.int8() is within bf16's error here (1.6% vs 1.1%): the greedy tokens stay the same
        assert relative_error < 0.05 and top1 > 0.9, (relative_error, top1)
        assert generated.tolist() == expected_tokens.tolist()
    else:  # NF4 on 64-wide random layers errs by ~20% of the largest logit, far more than the top-1/top-2 gaps
        assert relative_error < 0.4 and top1 > 0.6, (relative_error, top1)
        assert generated[:4].tolist() == expected_tokens[:4].tolist()


def test_bitsandbytes_skip_list_given_by_the_user_replaces_the_defaults_and_matches_from_the_path_start():
    linear_8bit, _ = bitsandbytes_linear_classes()
    # "language_model.layers.0" does not start a module path (it lacks "model."): layer 0 is quantized
    skip = ["lm_head", "model.language_model.layers.1", "language_model.layers.0"]
    config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    model = AutoModelForCausalLM.from_pretrained(checkpoint_for_case(CASE), quantization_config=config)
    assert model.config.quantization_config.llm_int8_skip_modules == skip
    layers = model.model.language_model.layers
    assert all(type(m) is linear_8bit for m in linears(layers[0]))
    assert all(type(m) is torch.nn.Linear for m in linears(layers[1]))
    assert type(model.lm_head) is torch.nn.Linear
    # the model's defaults were replaced, not added to: the audio encoder and projection are quantized too
    assert all(type(m) is linear_8bit for m in linears(model.model.audio_tower))
    assert type(model.model.multi_modal_projector.linear) is linear_8bit
    input_ids, audio = model_case_inputs(CASE)
    with torch.no_grad():
        relative_error, _ = compared_to_float32(model.eval()(input_ids, **audio).logits[0])
    assert relative_error < 0.1, relative_error
