"""Where a from-scratch run starts: the encoder's convolutional front end is He-initialised, so that the log-mel
content reaches the encoder at the scale of the sinusoidal positions added to it (with transformers' std 0.02 it
arrives about 30x smaller, and the encoder starts out reading positions only)."""

import pytest
import torch
import yaml

from transformers_qwen_audio import QwenAudioConfig, QwenAudioForConditionalGeneration
from transformers_qwen_audio.recipes import recipe_path
from transformers_qwen_audio.training.model_setup import (
    byte_level_processor,
    encoder_position_sinusoids,
    model_from_config,
)


TINY_PRETRAIN = recipe_path("tiny/pretrain.yaml")


def front_end_and_positions(model, mel: torch.Tensor) -> tuple[float, float]:
    tower = model.model.audio_tower
    content = torch.nn.functional.gelu(tower.conv2(torch.nn.functional.gelu(tower.conv1(mel))))
    return content.std().item(), tower.embed_positions.weight[: content.shape[-1]].std().item()


def test_from_scratch_audio_content_enters_at_the_scale_of_the_positions():
    model_config = yaml.safe_load(TINY_PRETRAIN.read_text())["model_config"]
    processor = byte_level_processor()
    torch.manual_seed(0)
    mel = torch.randn(4, 80, 400) * 0.64 - 0.42  # the spread of the tiny dataset's normalised log-mel
    content, positions = front_end_and_positions(model_from_config(model_config, processor), mel)
    assert 0.3 * positions < content < 3 * positions, (content, positions)
    # transformers' own initialisation of the same config (what the step above replaces).
    config = model_from_config(model_config, processor).config
    plain_content, _ = front_end_and_positions(QwenAudioForConditionalGeneration(config), mel)
    assert plain_content < 0.1 * positions, (plain_content, positions)
    assert isinstance(config, QwenAudioConfig)


def test_from_scratch_timestamp_tokens_vary_smoothly_with_time():
    model_config = yaml.safe_load(TINY_PRETRAIN.read_text())["model_config"]
    processor = byte_level_processor()
    torch.manual_seed(0)
    model = model_from_config(model_config, processor)
    ids = processor.tokenizer.convert_tokens_to_ids(["<|1.20|>", "<|1.21|>", "<|4.00|>", "a", "b"])
    for matrix in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        rows = torch.nn.functional.normalize(matrix[ids].detach(), dim=-1)
        similarity = rows @ rows.T
        assert similarity[0, 1] > 0.9 > similarity[0, 2]  # 10 ms apart: nearly the same row; 2.8 s apart: not
        assert abs(similarity[3, 4]) < 0.5  # other tokens keep their random rows
        # At the scale of the other rows.
        assert 0.5 < matrix[ids[:3]].std().item() / matrix[ids[3:]].std().item() < 2.0


def test_from_scratch_timestamp_rows_are_the_encoders_position_code_of_their_time():
    """`<|t|>` is the encoder's sinusoidal position of the frame at t (50 frames/s after the convolutions): the
    time an audio token carries and the timestamp that names it share one code (a linear map between them exists)."""
    model_config = yaml.safe_load(TINY_PRETRAIN.read_text())["model_config"]
    processor = byte_level_processor()
    torch.manual_seed(0)
    model = model_from_config(model_config, processor)
    positions = model.model.audio_tower.embed_positions.weight
    assert positions.shape[1] == model.config.text_config.hidden_size  # the tiny recipe's widths match
    ids = processor.tokenizer.convert_tokens_to_ids(["<|0.00|>", "<|1.20|>", "<|7.38|>", "<|30.00|>"])
    frames = [0, 60, 369, 1500]
    for matrix in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        rows = torch.nn.functional.normalize(matrix[ids].detach(), dim=-1)
        code = torch.nn.functional.normalize(
            torch.cat([positions[frames[:3]], encoder_position_sinusoids(torch.tensor([1500.0]), 128)]), dim=-1)
        torch.testing.assert_close(rows, code, atol=1e-5, rtol=1e-5)


def test_tokenizer_words_are_one_token_alone_and_after_a_space(tmp_path):
    processor = byte_level_processor(["five", "noise", "white"])
    tokenizer = processor.tokenizer
    ids = tokenizer("five five fiver white noise")["input_ids"]
    assert [tokenizer.decode([token]) for token in ids] == ["five", " five", " five", "r", " white", " noise"]
    assert tokenizer.decode(ids) == "five five fiver white noise"
    # Every special token follows the larger vocabulary, and the processor round-trips through save/load.
    assert tokenizer.eos_token_id > byte_level_processor().tokenizer.eos_token_id
    processor.save_pretrained(tmp_path)
    from transformers import AutoProcessor

    import transformers_qwen_audio  # noqa: F401  registers the processor

    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert reloaded.tokenizer("white noise")["input_ids"] == tokenizer("white noise")["input_ids"]
    with pytest.raises(ValueError, match="surrounding spaces"):
        byte_level_processor([" five"])


def test_frozen_modules_pattern_keeps_lora_off_what_set_trainable_modules_freezes():
    import re

    from transformers_qwen_audio.training.model_setup import frozen_modules_pattern

    pattern = frozen_modules_pattern("language_model")
    for frozen in ("model.audio_tower.layers.0.self_attn.q_proj", "model.multi_modal_projector",
                   "model.audio_boundary_embeddings", "base_model.model.model.audio_tower.conv1"):
        assert re.fullmatch(pattern, frozen), frozen
    for trained in ("model.language_model.layers.0.self_attn.q_proj", "lm_head"):
        assert not re.fullmatch(pattern, trained), trained
    assert re.fullmatch(frozen_modules_pattern("audio_encoder"), "lm_head")
    assert frozen_modules_pattern("all") is None
    with pytest.raises(ValueError, match="train_modules"):
        frozen_modules_pattern("decoder")
