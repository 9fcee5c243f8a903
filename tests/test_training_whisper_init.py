"""Initialising the audio encoder from a local Whisper checkpoint (WhisperModel and WhisperForConditionalGeneration
layouts), through `from_pretrained(key_mapping=...)`."""

import pytest
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperModel

from transformers_qwen_audio.training import QwenAudioModelArguments, load_model
from transformers_qwen_audio.training.model_setup import byte_level_processor


AUDIO = {"d_model": 32, "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 64}
TEXT = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 64}


def whisper_config(**overrides) -> WhisperConfig:
    sizes = dict(d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64, decoder_layers=1,
                 decoder_attention_heads=4, decoder_ffn_dim=64, vocab_size=100, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
                 num_mel_bins=80,
                 max_source_positions=1500, max_target_positions=32)
    return WhisperConfig(**{**sizes, **overrides})


@pytest.fixture(scope="module")
def processor():
    return byte_level_processor()


@pytest.mark.parametrize("whisper_class, prefix", [(WhisperModel, "encoder."), (WhisperForConditionalGeneration, "model.encoder.")])
def test_encoder_weights_equal_the_whisper_weights(tmp_path, processor, whisper_class, prefix):
    torch.manual_seed(0)
    whisper = whisper_class(whisper_config())
    whisper.save_pretrained(tmp_path / "whisper")
    whisper_weights = {key[len(prefix):]: value for key, value in whisper.state_dict().items() if key.startswith(prefix)}

    args = QwenAudioModelArguments(model_config={"audio_config": AUDIO, "text_config": TEXT},
                                   whisper_encoder_path=str(tmp_path / "whisper"))
    model = load_model(args, processor)
    encoder_weights = model.model.audio_tower.state_dict()
    assert set(whisper_weights) == set(encoder_weights)
    for key, value in whisper_weights.items():
        assert torch.equal(encoder_weights[key], value), key
    # The language model is the randomly initialised one, not touched by the Whisper decoder's weights.
    assert model.model.language_model.embed_tokens.weight.shape[0] == len(processor.tokenizer)


def test_mismatched_whisper_sizes_are_named(tmp_path, processor):
    WhisperModel(whisper_config(num_mel_bins=128)).save_pretrained(tmp_path / "whisper-v3-like")
    args = QwenAudioModelArguments(model_config={"audio_config": AUDIO, "text_config": TEXT},
                                   whisper_encoder_path=str(tmp_path / "whisper-v3-like"))
    with pytest.raises(ValueError, match="num_mel_bins: Whisper 128 vs Qwen-Audio 80"):
        load_model(args, processor)


def test_start_needs_exactly_one_of_checkpoint_and_model_config():
    with pytest.raises(ValueError, match="exactly one"):
        QwenAudioModelArguments()
    with pytest.raises(ValueError, match="exactly one"):
        QwenAudioModelArguments(model_name_or_path="x", model_config={})
    with pytest.raises(ValueError, match="train_modules"):
        QwenAudioModelArguments(model_name_or_path="x", train_modules="everything")
