"""`feature_padding="longest"`: log-mel features padded only past the batch's longest clip give the same values as the
30 s window on every frame, and the same loss, for a fraction of the cost (what the training collator uses)."""

import numpy as np
import pytest
import torch

from transformers_qwen_audio.audio_io import load_audio
from transformers_qwen_audio.data.sounds import SOUND_LABELS, generate_sound
from transformers_qwen_audio.data.speech_synthesis import ESpeakSynthesizer, Voice
from transformers_qwen_audio.modeling_qwen_audio import conv_output_lengths
from transformers_qwen_audio.feature_extraction_qwen_audio import MAX_MEL_FRAMES, feature_window_samples
from transformers_qwen_audio.training import QwenAudioCollator
from transformers_qwen_audio.training.model_setup import byte_level_processor, model_from_config


TRANSCRIBE_PROMPT = "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"
EVENT_PROMPT = "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|event|>"


@pytest.fixture(scope="module")
def processor():
    return byte_level_processor()


@pytest.fixture(scope="module")
def clips():
    """Clips like the tiny dataset's: its five sound classes (0.5-4 s) and a spoken sentence, with lengths that are no
    multiple of the hop, an odd number of mel frames, a clip ending in exact zeros and a nearly silent one."""
    rng = np.random.default_rng(7)
    sounds = {label: generate_sound(label, rng) for label in SOUND_LABELS}
    synthesizer = ESpeakSynthesizer.shared()
    speech = synthesizer.synthesize("open the blue door please", Voice("en-us", "m3", 160, 50), seed=3)
    speech = load_audio({"array": speech, "sampling_rate": synthesizer.sampling_rate})
    speech = np.concatenate([speech, np.zeros(1234, dtype=np.float32)])  # a silent tail of exact zeros
    quiet = (1e-4 * rng.standard_normal(16000 * 2 + 160 * 7 + 33)).astype(np.float32)  # odd mel frames
    return [speech, *sounds.values(), quiet]


def features(processor, clips, feature_padding=None):
    text = [f"<audio></audio>{TRANSCRIBE_PROMPT}"] * len(clips)
    kwargs = {} if feature_padding is None else {"feature_padding": feature_padding}
    return processor(text=text, audio=clips, return_tensors="np", **kwargs)


def test_window_length_covers_every_clip_and_the_encoder_trim():
    for longest in (1, 159, 160, 8000, 16000 * 3 + 37, 96000 - 5, 480000 - 201):
        samples = feature_window_samples(longest)
        frames = samples // 160
        assert samples % 160 == 0 and frames % 2 == 0
        assert samples >= longest + 201  # n_fft // 2 + 1 zeros after the clip: the STFT's end reflects only zeros
        mel_frames = longest // 160
        assert frames >= 2 * int(conv_output_lengths(torch.tensor(mel_frames)))  # what the encoder's trim reads
    assert feature_window_samples(480000 - 100) == feature_window_samples(480000) == 480000  # never past 30 s


def test_longest_padding_equals_the_30s_window_on_every_frame(processor, clips):
    full = features(processor, clips)
    short = features(processor, clips, "longest")
    frames = short["input_features"].shape[-1]
    longest = max(len(clip) for clip in clips)
    assert full["input_features"].shape[-1] == MAX_MEL_FRAMES  # the default is unchanged
    assert frames == feature_window_samples(longest) // 160 < 700  # clips of at most 4 s: not 3000 frames
    np.testing.assert_allclose(short["input_features"], full["input_features"][..., :frames], rtol=0, atol=1e-6)
    # The masks agree and mark the same clip lengths; nothing of a clip lies past the short window.
    assert np.array_equal(short["feature_attention_mask"], full["feature_attention_mask"][:, :frames])
    assert not full["feature_attention_mask"][:, frames:].any()
    assert short["feature_attention_mask"].sum(-1).tolist() == [len(clip) // 160 for clip in clips]
    assert np.array_equal(short["input_ids"], full["input_ids"])


def test_a_single_short_clip_and_a_30s_clip(processor, clips):
    short = features(processor, clips[-1:], "longest")
    full = features(processor, clips[-1:])
    frames = short["input_features"].shape[-1]
    np.testing.assert_allclose(short["input_features"], full["input_features"][..., :frames], rtol=0, atol=1e-6)
    # A window of (nearly) 30 s leaves no room to save: the whole window, exactly as by default.
    long_clip = np.tile(clips[0], 480000 // len(clips[0]) + 1)[: 480000 - 50]
    long_short = features(processor, [long_clip, clips[1]], "longest")
    assert long_short["input_features"].shape[-1] == MAX_MEL_FRAMES
    np.testing.assert_array_equal(long_short["input_features"], features(processor, [long_clip, clips[1]])["input_features"])


def test_bad_feature_padding_is_refused(processor, clips):
    with pytest.raises(ValueError, match="feature_padding"):
        features(processor, clips[:1], "shortest")
    with pytest.raises(ValueError, match="feature_padding"):
        QwenAudioCollator(processor, feature_padding="none")


def test_the_model_gives_the_same_loss_with_both_paddings(processor, clips):
    torch.manual_seed(0)
    model = model_from_config(
        {
            "audio_config": {"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64},
            "text_config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                            "intermediate_size": 64, "max_position_embeddings": 1024},
        },
        processor,
    ).eval()
    examples = [{"audio": clips[0], "prompt": TRANSCRIBE_PROMPT, "completion": "open the blue door please"}]
    examples += [{"audio": clip, "prompt": EVENT_PROMPT, "completion": label} for clip, label in zip(clips[1:], SOUND_LABELS)]
    short = QwenAudioCollator(processor)(examples)  # the training default: "longest"
    full = QwenAudioCollator(processor, feature_padding="max_length")(examples)
    assert short["input_features"].shape[-1] < full["input_features"].shape[-1] == MAX_MEL_FRAMES
    for key in ("input_ids", "attention_mask", "labels", "feature_attention_mask"):
        assert torch.equal(short[key], full[key][:, : short[key].shape[1]])
    with torch.no_grad():
        short_loss = model(**short).loss
        full_loss = model(**full).loss
    assert torch.isfinite(short_loss)
    torch.testing.assert_close(short_loss, full_loss, rtol=0, atol=1e-5)
