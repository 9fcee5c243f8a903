"""Model behaviour that needs no reference: bad inputs, attention backends, training features, clip independence."""

import pytest
import torch

from transformers_qwen_audio import QwenAudioConfig, QwenAudioForConditionalGeneration
from transformers_qwen_audio.modeling_qwen_audio import audio_token_lengths

START, END, PLACEHOLDER = 100, 101, 99


def tiny_config(**text_overrides) -> QwenAudioConfig:
    text = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=4, seq_length=16)
    text.update(text_overrides)
    audio = dict(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=80)
    return QwenAudioConfig(text_config=text, audio_config=audio, audio_start_id=START, audio_token_id=PLACEHOLDER)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return QwenAudioForConditionalGeneration(tiny_config()).eval()


def span(num_samples: int) -> list[int]:
    tokens = int(audio_token_lengths(torch.tensor(num_samples // 160)))
    return [START] + [PLACEHOLDER] * tokens + [END]


def clips(*num_samples: int, frames: int = 3000):
    torch.manual_seed(1)
    features = torch.randn(len(num_samples), 80, frames)
    mask = torch.zeros(len(num_samples), frames, dtype=torch.long)
    for row, samples in enumerate(num_samples):
        mask[row, : samples // 160] = 1
    return features, mask


def prompt(*num_samples: int) -> torch.Tensor:
    ids = [5, 6]
    for samples in num_samples:
        ids += span(samples) + [7]
    return torch.tensor([ids])


def test_forward_and_generate_with_audio(model):
    features, mask = clips(16000, 8000)
    ids = prompt(16000, 8000)
    logits = model(ids, input_features=features, feature_attention_mask=mask).logits
    assert logits.shape == (1, ids.shape[1], 128) and torch.isfinite(logits).all()
    out = model.generate(ids, input_features=features, feature_attention_mask=mask, max_new_tokens=3, do_sample=False)
    assert out.shape == (1, ids.shape[1] + 3)


def test_span_count_mismatch(model):
    features, mask = clips(16000, 8000)
    with pytest.raises(ValueError, match="2 clips were given"):
        model(prompt(16000), input_features=features, feature_attention_mask=mask)


def test_span_length_mismatch(model):
    features, mask = clips(16000)
    with pytest.raises(ValueError, match="needs"):
        model(prompt(8000), input_features=features, feature_attention_mask=mask)


def test_unclosed_span(model):
    features, mask = clips(16000)
    ids = torch.tensor([[5, START] + [PLACEHOLDER] * 10])
    with pytest.raises(ValueError, match="unbalanced audio spans"):
        model(ids, input_features=features, feature_attention_mask=mask)


def test_spans_without_features(model):
    with pytest.raises(ValueError, match="no input_features"):
        model(prompt(16000))


def test_features_of_wrong_rank(model):
    features, mask = clips(16000)
    with pytest.raises(ValueError, match="mel bins"):
        model(prompt(16000), input_features=features[0], feature_attention_mask=mask)


def test_features_with_wrong_mel_bins(model):
    with pytest.raises(ValueError, match="80 mel bins"):
        model(prompt(16000), input_features=torch.randn(1, 128, 3000), feature_attention_mask=clips(16000)[1])


def test_features_of_integer_dtype(model):
    features, mask = clips(16000)
    with pytest.raises(TypeError, match="floating point"):
        model(prompt(16000), input_features=features.long(), feature_attention_mask=mask)


def test_features_not_a_tensor(model):
    _, mask = clips(16000)
    with pytest.raises(TypeError, match="torch.Tensor"):
        model(prompt(16000), input_features=[[0.0]], feature_attention_mask=mask)


def test_mask_longer_than_features(model):
    features, mask = clips(16000)
    with pytest.raises(ValueError, match="covers 3000 frames"):
        model(prompt(16000), input_features=features[..., :2000], feature_attention_mask=mask)


def test_mask_with_values_other_than_zero_and_one(model):
    features, mask = clips(16000)
    with pytest.raises(ValueError, match="only 0 and 1"):
        model(prompt(16000), input_features=features, feature_attention_mask=mask * 2)


def test_mask_with_empty_clip(model):
    features, mask = clips(16000)
    with pytest.raises(ValueError, match="no audio frame"):
        model(prompt(16000), input_features=features, feature_attention_mask=torch.zeros_like(mask))


def test_features_too_short_for_the_mask(model):
    features, mask = clips(16000, frames=99)
    with pytest.raises(ValueError, match="needs 100"):
        model(prompt(16000), input_features=features, feature_attention_mask=mask)


def test_ids_out_of_vocabulary(model):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(torch.tensor([[5, 500]]))


def test_ids_of_float_dtype(model):
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.tensor([[5.0, 6.0]]))


def test_sdpa_and_eager_agree():
    torch.manual_seed(0)
    config = tiny_config()
    features, mask = clips(16000, 8000)
    ids = prompt(16000, 8000)
    outputs = []
    for implementation in ("eager", "sdpa"):
        torch.manual_seed(0)
        model = QwenAudioForConditionalGeneration(config).eval()
        model.set_attn_implementation(implementation)
        outputs.append(model(ids, input_features=features, feature_attention_mask=mask).logits)
    assert (outputs[0] - outputs[1]).abs().max().item() < 1e-4


def test_clips_of_different_sequences_do_not_affect_each_other(model):
    """A short clip next to a long one in another row of the batch must encode as if alone."""
    features, mask = clips(8000, 160000)
    long_prompt, short_prompt = prompt(160000)[0], prompt(8000)[0]
    ids = torch.zeros(2, len(long_prompt), dtype=torch.long)
    attention = torch.zeros_like(ids)
    ids[0, -len(short_prompt):], attention[0, -len(short_prompt):] = short_prompt, 1
    ids[1], attention[1] = long_prompt, 1
    with torch.no_grad():
        batch = model(ids, attention_mask=attention, input_features=features, feature_attention_mask=mask).logits
        alone = model(short_prompt[None], input_features=features[:1], feature_attention_mask=mask[:1]).logits
    assert (batch[0, -len(short_prompt):] - alone[0]).abs().max().item() < 1e-5


def test_clips_of_one_sequence_are_encoded_together_like_the_original():
    """Inside one prompt the original pads every clip to the longest, so the conv at the short clip's edge sees
    that padding; in different sequences the short clip encodes exactly as alone."""
    torch.manual_seed(0)
    model = QwenAudioForConditionalGeneration(tiny_config()).eval()
    with torch.no_grad():  # weights large enough for the conv edge to matter visibly
        for parameter in model.model.audio_tower.parameters():
            parameter.normal_(0, 0.5)
    features, mask = clips(8000, 160000)
    short_tokens = int(audio_token_lengths(torch.tensor(50)))
    with torch.no_grad():
        together = model.get_audio_features(features, mask, torch.tensor([0, 0])).last_hidden_state
        apart = model.get_audio_features(features, mask, torch.tensor([0, 1])).last_hidden_state
        alone = model.get_audio_features(features[:1], mask[:1]).last_hidden_state
    edge_effect = (together[0, :short_tokens] - apart[0, :short_tokens]).abs().max().item()
    rounding = (apart[0, :short_tokens] - alone[0, :short_tokens]).abs().max().item()
    assert edge_effect > 1e-5 and edge_effect > 100 * rounding, (edge_effect, rounding)
    assert (together[1] - apart[1]).abs().max().item() < 1e-5


def test_training_step_with_gradient_checkpointing_and_masked_labels():
    torch.manual_seed(0)
    model = QwenAudioForConditionalGeneration(tiny_config())
    model.activation_checkpointing_enable()
    model.train()
    features, mask = clips(16000)
    ids = prompt(16000)
    labels = ids.clone()
    labels[:, : ids.shape[1] - 2] = -100  # only the last tokens are targets
    loss = model(ids, input_features=features, feature_attention_mask=mask, labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.model.audio_tower.conv1.weight.grad is not None
    assert model.model.audio_boundary_embeddings.weight.grad is not None
    assert model.model.audio_tower.embed_positions.weight.grad is None  # fixed sinusoids


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_forward(dtype):
    torch.manual_seed(0)
    model = QwenAudioForConditionalGeneration(tiny_config()).to(dtype).eval()
    features, mask = clips(16000)
    logits = model(prompt(16000), input_features=features, feature_attention_mask=mask).logits
    assert logits.dtype == dtype and torch.isfinite(logits.float()).all()


def test_logn_and_ntk_only_in_eval_past_seq_length():
    """Past seq_length the eval-mode logits differ from train mode (dropout is 0), before it they agree."""
    torch.manual_seed(0)
    model = QwenAudioForConditionalGeneration(tiny_config(seq_length=8))
    short, long = torch.arange(1, 8)[None], torch.arange(1, 30)[None]
    with torch.no_grad():
        assert torch.allclose(model.train()(short).logits, model.eval()(short).logits, atol=1e-6)
        assert not torch.allclose(model.train()(long).logits, model.eval()(long).logits, atol=1e-4)


def test_hidden_states_and_attentions_are_returned():
    torch.manual_seed(0)
    model = QwenAudioForConditionalGeneration(tiny_config()).eval()
    model.set_attn_implementation("eager")
    features, mask = clips(16000)
    ids = prompt(16000)
    output = model(ids, input_features=features, feature_attention_mask=mask, output_hidden_states=True,
                   output_attentions=True)
    assert len(output.hidden_states) == 3 and output.hidden_states[0].shape == (1, ids.shape[1], 32)
    assert len(output.attentions) == 2 and output.attentions[0].shape == (1, 4, ids.shape[1], ids.shape[1])


def spec_augmented_model(**audio_overrides) -> QwenAudioForConditionalGeneration:
    config = tiny_config()
    for key, value in {"apply_spec_augment": True, **audio_overrides}.items():
        setattr(config.audio_config, key, value)
    torch.manual_seed(0)
    return QwenAudioForConditionalGeneration(config)


def test_spec_augment_masks_only_the_clips_own_frames_and_whole_mel_bins():
    """Whisper's SpecAugment fields: time spans fall inside each clip's audio, bin spans cover every frame."""
    encoder = spec_augmented_model(mask_time_prob=0.3, mask_feature_prob=0.3, mask_feature_min_masks=1).audio_tower
    features, mask = clips(16000, 8000, frames=400)
    features = features + 10.0  # no feature is 0 before masking
    masked = encoder._mask_input_features(features, mask.sum(-1))
    assert not (features == 0).any(), "the caller's features were changed in place"
    zero = masked == 0
    masked_bins = zero.all(dim=2)  # [clips, bins]: a frequency mask covers the whole clip
    assert masked_bins.any(dim=1).all()
    masked_frames = zero.all(dim=1)  # [clips, frames]: a time mask covers every bin
    assert masked_frames[0, :100].any() and masked_frames[1, :50].any()
    assert not masked_frames[1, 50:].any(), "a time mask fell in the second clip's padding"
    assert set(masked[~zero].tolist()) <= set(features[~zero].tolist())


def test_spec_augment_applies_in_training_only():
    model = spec_augmented_model(mask_time_prob=0.3, mask_feature_prob=0.3)
    features, mask = clips(16000, frames=3000)
    audio_states = lambda: model.audio_tower(features, mask).last_hidden_state  # noqa: E731
    model.eval()
    reference = audio_states()
    assert torch.equal(audio_states(), reference)
    model.train()  # training mode alone moves the states by <1e-4 (other attention kernels); masking by far more
    assert (audio_states() - reference).abs().max() > 1e-2
    model.config.audio_config.apply_spec_augment = False  # off (the default): training sees the features unchanged
    assert torch.allclose(audio_states(), reference, atol=1e-3)


@pytest.mark.parametrize("field, value", [("mask_time_prob", 1.5), ("mask_feature_prob", -0.1), ("mask_time_length", 0)])
def test_spec_augment_settings_are_checked(field, value):
    with pytest.raises(Exception, match=field):
        QwenAudioConfig(audio_config={"d_model": 16, "encoder_layers": 1, "encoder_attention_heads": 2,
                                      "encoder_ffn_dim": 32, field: value})
