"""QwenAudioProcessor against the original: log-mel features, audio spans, chat contexts, saving and loading."""

import json
import shutil

import numpy as np
import pytest
import torch
from processor_fixtures import chat_case_messages
from transformers import AutoFeatureExtractor, AutoProcessor, WhisperFeatureExtractor

from transformers_qwen_audio import QwenAudioProcessor, QwenAudioTokenizerFast
from transformers_qwen_audio.feature_extraction_qwen_audio import audio_span_length


AUDIO_KEYS = [
    "1089_134686_000007_000004_person_name",
    "1272_128104_0000_middle_classes",
    "1272_128104_0000",
    "es",
    "music",
]
PAD_ID, START_ID, END_ID = 151851, 155163, 155164


def test_audio_keys_match_manifest(manifest):
    assert sorted(manifest["audio"]) == sorted(AUDIO_KEYS)


@pytest.mark.filterwarnings("ignore:Audio clip 0 lasts")
@pytest.mark.parametrize("key", AUDIO_KEYS)
def test_features_match_original(processor, manifest, audio_features, key):
    waveform = audio_features[f"{key}.waveform_16k"]
    inputs = processor(text="<audio></audio>", audio=waveform, return_tensors="np")
    features, mask = inputs["input_features"], inputs["feature_attention_mask"]
    assert features.shape == (1, 80, 3000) and features.dtype == np.float32
    valid_frames = int(mask[0].sum())
    assert valid_frames == min(len(waveform), 480000) // 160
    np.testing.assert_allclose(
        features[0, :, :valid_frames], audio_features[f"{key}.input_features"][:, :valid_frames], atol=5e-5, rtol=0
    )
    frames_after_conv, audio_tokens = audio_features[f"{key}.input_audio_lengths"].tolist()
    span = audio_span_length(len(waveform))
    assert span == audio_tokens + 2 == manifest["audio"][key]["audio_span_tokens"]
    ids = inputs["input_ids"][0].tolist()
    assert ids == [START_ID] + [PAD_ID] * (span - 2) + [END_ID]


@pytest.mark.parametrize("case_index", range(3))
def test_chat_case_with_original_waveforms(processor, manifest, audio_features, file_to_key, case_index):
    case = manifest["chat_cases"][case_index]
    messages = chat_case_messages(case, lambda name: audio_features[f"{file_to_key[name]}.waveform_16k"])
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert inputs["input_ids"][0].tolist() == case["context_tokens"]
    assert inputs["attention_mask"].sum().item() == len(case["context_tokens"])
    assert inputs["input_features"].shape == (len(case["audio_span_tokens"]), 80, 3000)
    assert inputs["input_features"].dtype == torch.float32
    spans = [audio_span_length(int(frames) * 160) for frames in inputs["feature_attention_mask"].sum(-1)]
    assert spans == case["audio_span_tokens"]


@pytest.mark.parametrize("case_index", range(3))
def test_chat_case_text_and_file_paths(processor, manifest, reference_dir, case_index):
    case = manifest["chat_cases"][case_index]
    # The original writes the file name into the span; the template does the same with the path it was given.
    by_name = chat_case_messages(case, lambda name: name)
    assert processor.apply_chat_template(by_name, add_generation_prompt=True) == case["raw_text"]
    by_path = chat_case_messages(case, lambda name: str(reference_dir / "audio" / name))
    inputs = processor.apply_chat_template(by_path, add_generation_prompt=True, tokenize=True, return_dict=True)
    assert inputs["input_ids"][0] == case["context_tokens"]
    # `<audio>PATH</audio>` in plain text is loaded like the original, when the caller opts in.
    from_text = processor(
        text=case["raw_text"], audio_base_dir=reference_dir / "audio", allow_audio_paths_in_text=True
    )
    assert from_text["input_ids"][0] == case["context_tokens"]
    with pytest.raises(ValueError, match="allow_audio_paths_in_text=True"):
        processor(text=case["raw_text"], audio_base_dir=reference_dir / "audio")


def test_chat_template_system_message_and_string_content(processor):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert processor.apply_chat_template(messages, add_generation_prompt=True) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize(
    "file_name, key",
    [
        ("1272-128104-0000.flac", "1272_128104_0000"),
        ("es.mp3", "es"),
        ("1089_134686_000007_000004_person_name.wav", "1089_134686_000007_000004_person_name"),
        ("1272-128104-0000-middle_classes.wav", "1272_128104_0000_middle_classes"),
    ],
)
def test_files_end_to_end_span_counts(processor, manifest, reference_dir, file_name, key):
    inputs = processor(text="<audio></audio>what is this?", audio=str(reference_dir / "audio" / file_name))
    span = inputs["input_ids"][0].count(PAD_ID) + 2
    assert span == manifest["audio"][key]["audio_span_tokens"]
    assert int(np.sum(inputs["feature_attention_mask"][0])) == manifest["audio"][key]["samples_16k"] // 160


def test_48k_wav_end_to_end(processor, reference_dir):
    # 48 kHz recordings without a stored reference: the span follows from the resampled length.
    inputs = processor(text="<audio></audio>", audio=reference_dir / "audio" / "zh_are_you_ok_relaxed.wav")
    expected_samples = 175680 // 3
    assert inputs["input_ids"][0].count(PAD_ID) + 2 == audio_span_length(expected_samples)


def test_batch_with_zero_one_and_two_clips(processor, audio_features):
    clips = [audio_features[f"{key}.waveform_16k"] for key in ("es", "1272_128104_0000", AUDIO_KEYS[0])]
    texts = ["<audio></audio>a", "no audio at all", "<audio></audio>b<audio></audio>c"]
    batch = processor(text=texts, audio=clips, return_tensors="pt")
    assert batch["input_features"].shape == (3, 80, 3000)
    assert batch["feature_attention_mask"].sum(-1).tolist() == [832, 585, 54]
    # Left padding by default; the longest row has no padding.
    assert batch["attention_mask"][1, 0] == 0 and batch["attention_mask"][:, -1].tolist() == [1, 1, 1]
    spans_per_row = [(row == START_ID).sum().item() for row in batch["input_ids"]]
    assert spans_per_row == [1, 0, 2]
    nested = processor(text=texts, audio=[[clips[0]], [], [clips[1], clips[2]]], return_tensors="pt")
    assert torch.equal(nested["input_ids"], batch["input_ids"])
    right = processor(text=texts, audio=clips, padding_side="right", return_tensors="pt")
    assert right["attention_mask"][1, -1] == 0


def test_text_only_batch_has_no_features(processor):
    inputs = processor(text=["hello", "hi there"])
    assert "input_features" not in inputs and len(inputs["input_ids"]) == 2


def test_long_audio_truncates_with_warning(processor, audio_features):
    with pytest.warns(UserWarning, match="only hears the first 30 s"):
        inputs = processor(text="<audio></audio>", audio=audio_features["music.waveform_16k"])
    assert inputs["input_ids"][0].count(PAD_ID) + 2 == 752


def test_long_audio_chunks_into_windows(processor, audio_features):
    waveform = audio_features["music.waveform_16k"]
    inputs = processor(text="<audio></audio>x", audio=waveform, long_audio="chunk", return_tensors="pt")
    assert inputs["input_features"].shape[0] == 4
    assert inputs["feature_attention_mask"].sum(-1).tolist() == [3000, 3000, 3000, (len(waveform) - 3 * 480000) // 160]
    ids = inputs["input_ids"][0].tolist()
    assert ids.count(START_ID) == 4 and ids.count(END_ID) == 4
    np.testing.assert_allclose(
        inputs["input_features"][0].numpy(), audio_features["music.input_features"], atol=5e-5, rtol=0
    )


def test_resampled_array_input(processor, reference_dir):
    import soundfile

    raw, rate = soundfile.read(reference_dir / "audio" / "1089_134686_000007_000004_person_name.wav", dtype="float32")
    inputs = processor(text="<audio></audio>", audio=raw, sampling_rate=rate)
    assert inputs["input_ids"][0].count(PAD_ID) + 2 == 15


# --- bad inputs -----------------------------------------------------------------------------------------------


def test_more_clips_than_spans(processor):
    with pytest.raises(ValueError, match="1 <audio></audio> spans .* but 2 audio clips"):
        processor(text="<audio></audio>", audio=[np.zeros(16000), np.zeros(16000)])


def test_fewer_clips_than_spans(processor):
    with pytest.raises(ValueError, match="2 <audio></audio> spans .* but 1 audio clips"):
        processor(text="<audio></audio><audio></audio>", audio=[np.zeros(16000, dtype=np.float32)])


def test_clips_without_spans(processor):
    with pytest.raises(ValueError, match="0 <audio></audio> spans"):
        processor(text="no span", audio=np.zeros(16000, dtype=np.float32))


def test_nested_clip_lists_disagree_with_texts(processor):
    clip = np.zeros(16000, dtype=np.float32)
    with pytest.raises(ValueError, match="Text 1 has 1 <audio></audio> spans but 2 audio clips"):
        processor(text=["<audio></audio>", "<audio></audio>"], audio=[[clip], [clip, clip]])


def test_unclosed_audio_tag(processor):
    with pytest.raises(ValueError, match="Unclosed <audio>"):
        processor(text="<audio>speech", audio=np.zeros(16000, dtype=np.float32))


def test_nested_audio_tags(processor):
    with pytest.raises(ValueError, match="Nested or unclosed"):
        processor(text="<audio><audio></audio></audio>", audio=np.zeros(16000, dtype=np.float32))


def test_stray_closing_tag(processor):
    with pytest.raises(ValueError, match="no matching <audio>"):
        processor(text="hello</audio>")


def test_empty_span_without_audio(processor):
    with pytest.raises(ValueError, match="empty <audio></audio> span but no `audio`"):
        processor(text="<audio></audio>")


def test_placeholder_outside_span(processor):
    with pytest.raises(ValueError, match="outside of <audio></audio>"):
        processor(text="[[[AUDIO:modality]]]")


def test_clip_too_short(processor):
    with pytest.raises(ValueError, match="too short"):
        processor(text="<audio></audio>", audio=np.zeros(100, dtype=np.float32))


def test_bad_long_audio_mode(processor):
    with pytest.raises(ValueError, match="long_audio"):
        processor(text="<audio></audio>", audio=np.zeros(16000, dtype=np.float32), long_audio="drop")


def test_text_of_wrong_type(processor):
    with pytest.raises(TypeError, match="`text` must be"):
        processor(text=[1, 2])


def test_missing_text(processor):
    with pytest.raises(ValueError, match="needs `text`"):
        processor(audio=np.zeros(16000, dtype=np.float32))


def test_url_in_span_without_opt_in(processor):
    with pytest.raises(ValueError, match="allow_urls=True"):
        processor(text="<audio>https://example.com/a.wav</audio>", allow_audio_paths_in_text=True)


def test_audio_part_with_two_sources(processor):
    messages = [{"role": "user", "content": [{"type": "audio", "path": "a.wav", "url": "https://x/a.wav"}]}]
    with pytest.raises(ValueError, match="exactly one of"):
        processor.apply_chat_template(messages, tokenize=True)


# --- saving and loading ---------------------------------------------------------------------------------------


def test_save_and_load_round_trip(processor, manifest, audio_features, file_to_key, tmp_path):
    processor.save_pretrained(tmp_path)
    for name in ("tokenizer.json", "chat_template.jinja", "preprocessor_config.json", "processor_config.json"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "qwen.tiktoken").exists()
    assert json.loads((tmp_path / "processor_config.json").read_text())["processor_class"] == "QwenAudioProcessor"
    assert isinstance(AutoFeatureExtractor.from_pretrained(tmp_path), WhisperFeatureExtractor)
    for reloaded in (AutoProcessor.from_pretrained(tmp_path), QwenAudioProcessor.from_pretrained(tmp_path)):
        assert isinstance(reloaded, QwenAudioProcessor) and isinstance(reloaded.tokenizer, QwenAudioTokenizerFast)
        assert reloaded.chat_template == processor.chat_template
        assert reloaded.feature_extractor.to_dict() == processor.feature_extractor.to_dict()
        case = manifest["chat_cases"][1]
        messages = chat_case_messages(case, lambda name: audio_features[f"{file_to_key[name]}.waveform_16k"])
        expected = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
        got = reloaded.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
        assert got["input_ids"][0] == case["context_tokens"] == expected["input_ids"][0]
        np.testing.assert_array_equal(got["input_features"], expected["input_features"])


def test_long_audio_setting_is_saved(processor, tmp_path):
    chunking = QwenAudioProcessor(processor.feature_extractor, processor.tokenizer, long_audio="chunk")
    chunking.save_pretrained(tmp_path)
    assert AutoProcessor.from_pretrained(tmp_path).long_audio == "chunk"


def test_auto_processor_on_released_layout_runs_no_remote_code(released_dir, manifest, audio_features, tmp_path):
    trapped = tmp_path / "released"
    shutil.copytree(released_dir, trapped)
    for module in ("tokenization_qwen.py", "configuration_qwen.py", "modeling_qwen.py"):
        (trapped / module).write_text('raise RuntimeError("remote code of the released folder was executed")\n')
    for loaded in (AutoProcessor.from_pretrained(trapped), QwenAudioProcessor.from_pretrained(trapped)):
        assert isinstance(loaded, QwenAudioProcessor)
        inputs = loaded(text="<audio></audio>", audio=audio_features["es.waveform_16k"])
        assert inputs["input_ids"][0].count(PAD_ID) + 2 == manifest["audio"]["es"]["audio_span_tokens"]
    converted = tmp_path / "converted"
    QwenAudioProcessor.from_pretrained(trapped).save_pretrained(converted)
    assert AutoProcessor.from_pretrained(converted)(text="<|en|>")["input_ids"] == [[151859]]
