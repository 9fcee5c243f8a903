"""QwenAudioProcessor as users of `model.generate` drive it: typed kwargs, offsets, assistant masks, task requests,
`chat_format`, chat stop ids and decoding with timestamps."""

import json

import numpy as np
import pytest
import torch
from processor_fixtures import decoded_runs
from transformers import AutoProcessor

from transformers_qwen_audio import QwenAudioProcessor
from transformers_qwen_audio.tiny_checkpoint import chirp
from transformers_qwen_audio.feature_extraction_qwen_audio import audio_span_length


@pytest.fixture
def processor(tiny_processor):
    return tiny_processor


# --- typed kwargs ---------------------------------------------------------------------------------------------------


def test_kwargs_are_merged_by_modality(processor):
    long_clip = np.tile(chirp(0.5), 70)  # 35 s
    flat = processor(text="<audio></audio>", audio=long_clip, long_audio="chunk")
    nested = processor(text="<audio></audio>", audio=long_clip, audio_kwargs={"long_audio": "chunk"})
    assert len(flat["input_features"]) == len(nested["input_features"]) == 2
    assert flat["input_ids"] == nested["input_ids"]
    right = processor(text=["<audio></audio>", "a"], audio=[chirp(0.5)], text_kwargs={"padding_side": "right"})
    assert right["attention_mask"][1][-1] == 0
    with pytest.raises(ValueError, match="long_audio"):
        processor(text="<audio></audio>", audio=chirp(0.5), audio_kwargs={"long_audio": "drop"})


def test_processor_kwargs_class_declares_the_audio_options():
    from transformers_qwen_audio.processing_qwen_audio import QwenAudioAudioKwargs, QwenAudioProcessorKwargs

    assert QwenAudioProcessor.valid_processor_kwargs is QwenAudioProcessorKwargs
    assert {"long_audio", "allow_urls", "audio_base_dir", "allow_audio_paths_in_text", "sampling_rate"} <= set(
        QwenAudioAudioKwargs.__annotations__
    )


def test_span_and_clip_counts_are_checked_in_validate_inputs(processor):
    with pytest.raises(ValueError, match="2 <audio></audio> spans .* but 1 audio clips"):
        processor.validate_inputs(text=["<audio></audio><audio></audio>"], audio=[chirp(0.5)])
    processor.validate_inputs(text=["<audio></audio>", "none"], audio=[chirp(0.5)])
    processor.validate_inputs(text="<audio></audio>", audio=chirp(0.5))
    with pytest.raises(ValueError, match="allow_audio_paths_in_text"):
        processor.validate_inputs(text="<audio>a.wav</audio>")
    processor.validate_inputs(text="<audio>a.wav</audio>", allow_audio_paths_in_text=True)


# --- offsets and assistant masks ------------------------------------------------------------------------------------


def test_replacement_offsets_are_measured_in_the_callers_text(processor):
    text = "Audio 1:<audio>some/file.wav</audio>\nthen <audio></audio> end"
    inputs = processor(text=text, audio=[chirp(0.5), chirp(0.3)], return_text_replacement_offsets=True)
    offsets = inputs["text_replacement_offsets"][0]
    assert [text[start:end] for start, end in (entry["span"] for entry in offsets)] == [
        "<audio>some/file.wav</audio>",
        "<audio></audio>",
    ]
    expanded, _ = processor.get_text_with_replacements([text], audio_replacements=[o["replacement"] for o in offsets])
    for entry in offsets:
        start, end = entry["new_span"]
        assert expanded[0][start:end] == entry["replacement"]
    assert offsets[0]["replacement"].count(processor.audio_token) == audio_span_length(8000) - 2


def test_assistant_tokens_mask_is_exact_with_several_clips(processor):
    messages = [
        {"role": "user", "content": [
            {"type": "audio", "audio": chirp(0.5)},
            {"path": None, "audio": chirp(0.7)},
            {"type": "text", "text": "Which is longer?"},
        ]},
        {"role": "assistant", "content": "The second."},
        {"role": "user", "content": [{"type": "audio", "audio": chirp(1.1)}, {"type": "text", "text": "And this?"}]},
        {"role": "assistant", "content": "Longer still."},
    ]
    out = processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, return_tensors="pt"
    )
    assert len(out["input_features"]) == 3
    runs = decoded_runs(processor.tokenizer, out["input_ids"][0], out["assistant_masks"][0])
    assert runs == ["The second.<|im_end|>", "Longer still.<|im_end|>"]


def test_assistant_tokens_mask_in_a_batch(processor):
    first = [{"role": "user", "content": [{"audio": chirp(0.5)}]}, {"role": "assistant", "content": "One."}]
    second = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Two."}]
    out = processor.apply_chat_template(
        [first, second], tokenize=True, return_dict=True, return_assistant_tokens_mask=True, return_tensors="pt"
    )
    runs = [decoded_runs(processor.tokenizer, ids, mask) for ids, mask in zip(out["input_ids"], out["assistant_masks"])]
    assert runs == [["One.<|im_end|>"], ["Two.<|im_end|>"]]


# --- task requests, chat_format, stop ids ---------------------------------------------------------------------------


def test_task_request_for_a_base_checkpoint(processor):
    clip = chirp(0.5)
    prompt = processor.apply_task_request(clip, task="transcribe", language="en", chat_format="raw", tokenize=False)
    assert prompt == "<audio></audio><|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"
    inputs = processor.apply_task_request(clip, task="transcribe", language="en", chat_format="raw", return_tensors="pt")
    direct = processor(text=prompt, audio=clip, return_tensors="pt")
    assert torch.equal(inputs["input_ids"], direct["input_ids"])
    assert torch.equal(inputs["input_features"], direct["input_features"])
    timed = processor.apply_task_request("a.wav", task="transcribe", language="en", timestamps=True, chat_format="raw", tokenize=False)
    assert timed == "<audio>a.wav</audio><|startoftranscript|><|en|><|transcribe|><|en|><|timestamps|><|0.00|>"
    question = processor.apply_task_request(clip, prompt="What is it?", chat_format="raw", tokenize=False)
    assert question == "<audio></audio><|startofanalysis|><|en|><|question|>What is it?<|answer|>"  # as evaluate_aqa.py


def test_task_request_for_a_chat_checkpoint(processor):
    clip = chirp(0.5)
    text = processor.apply_task_request(clip, task="translate", language="en", output_language="zh", chat_format="chatml", tokenize=False)
    assert text.endswith("Audio 1:<audio></audio>\nTranslate the speech into Chinese.<|im_end|>\n<|im_start|>assistant\n")
    batch = processor.apply_task_request([clip, chirp(0.8)], task="caption", chat_format="chatml", return_tensors="pt")
    assert batch["input_ids"].shape[0] == 2 and batch["input_features"].shape[0] == 2


def test_transcription_request_is_the_transcribe_task_request(processor):
    clip = chirp(0.5)
    for chat_format in ("raw", "chatml"):
        for timestamps in (False, True):
            expected = processor.apply_task_request(
                clip, task="transcribe", language="en", timestamps=timestamps, chat_format=chat_format, tokenize=False
            )
            assert processor.apply_transcription_request(
                clip, language="en", timestamps=timestamps, chat_format=chat_format, tokenize=False
            ) == expected
    inputs = processor.apply_transcription_request([clip, chirp(0.8)], language="en", chat_format="raw",
                                                   return_tensors="pt")
    assert inputs["input_ids"].shape[0] == 2 and inputs["input_features"].shape[0] == 2


def test_processing_runs_on_the_processor_mixin_call(processor):
    """No `__call__` of its own: `ProcessorMixin.__call__` drives the hooks (layout, validation, audio, spans)."""
    from transformers import ProcessorMixin

    assert "__call__" not in vars(QwenAudioProcessor)
    assert type(processor).__call__ is ProcessorMixin.__call__
    nested = processor(text=["<audio></audio>", "<audio></audio><audio></audio>"],
                       audio=[[chirp(0.5)], [chirp(0.3), chirp(0.4)]])
    flat = processor(text=["<audio></audio>", "<audio></audio><audio></audio>"],
                     audio=[chirp(0.5), chirp(0.3), chirp(0.4)])
    assert nested["input_ids"] == flat["input_ids"] and "audio_span_lengths" not in flat


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task": "transcribe", "language": "en"}, "chat_format='raw'"),
        ({"task": "sing", "chat_format": "raw"}, "Unknown task"),
        ({"task": "caption", "timestamps": True, "chat_format": "chatml"}, "`timestamps` only applies to"),
        ({"task": "caption", "prompt": "why?", "chat_format": "raw"}, "prompt"),
        ({"task": "caption", "caption_style": "clotho", "chat_format": "chatml"}, "caption_style"),
        ({"task": "transcribe", "chat_format": "raw"}, "unknown audio language"),
    ],
)
def test_task_request_refusals(processor, kwargs, match):
    with pytest.raises(ValueError, match=match):
        processor.apply_task_request(chirp(0.5), **kwargs)


def test_chat_format_is_saved_and_read_from_the_released_generation_config(tiny_checkpoint_dir, processor, tmp_path):
    assert processor.chat_format is None  # the tiny released folder declares nothing: never guessed
    released = tmp_path / "released-chat"
    released.mkdir()
    for item in tiny_checkpoint_dir.iterdir():
        (released / item.name).write_bytes(item.read_bytes())
    (released / "generation_config.json").write_text(json.dumps({"chat_format": "chatml", "eos_token_id": 256}))
    loaded = QwenAudioProcessor.from_pretrained(released)
    assert loaded.chat_format == "chatml" and AutoProcessor.from_pretrained(released).chat_format == "chatml"
    loaded.save_pretrained(tmp_path / "native")
    assert json.loads((tmp_path / "native" / "processor_config.json").read_text())["chat_format"] == "chatml"
    base = QwenAudioProcessor(processor.feature_extractor, processor.tokenizer, chat_format="raw")
    base.save_pretrained(tmp_path / "base")
    assert AutoProcessor.from_pretrained(tmp_path / "base").chat_format == "raw"
    with pytest.raises(ValueError, match="chat_format"):
        QwenAudioProcessor(processor.feature_extractor, processor.tokenizer, chat_format="qwen")


def test_chat_stop_token_ids(processor):
    tokens = processor.tokenizer.convert_ids_to_tokens(processor.chat_stop_token_ids)
    assert tokens == ["<|im_end|>", "<|endoftext|>", "<|im_start|>"]


# --- decode ---------------------------------------------------------------------------------------------------------


def test_decode_plain_text_is_the_tokenizers(processor):
    ids = processor.tokenizer("hello<|im_end|>")["input_ids"]
    assert processor.decode(ids, skip_special_tokens=True) == processor.tokenizer.decode(ids, skip_special_tokens=True)
    assert processor.decode([ids, ids], skip_special_tokens=True) == ["hello", "hello"]
    assert processor.decode(torch.tensor(ids), skip_special_tokens=True) == "hello"


def test_decode_word_and_segment_timestamps_round_trip(processor):
    words = [("mister", 0.0, 0.4), (" quilter", 0.4, 0.98), (" is", 1.5, 1.8), (" the", 1.8, 2.0)]
    text = "<|0.00|>mister<|0.40|> quilter<|0.98|><|sil|><|1.50|> is<|1.80|> the<|2.00|><|endoftext|>"
    # The base prompt ends with <|0.00|>: the generated ids start at the first word.
    generated = torch.tensor(processor.tokenizer(text.removeprefix("<|0.00|>"))["input_ids"])
    word_result = processor.decode(generated, return_timestamps="word", time_offset=30.0)
    assert word_result["text"] == "mister quilter is the"
    assert word_result["chunks"] == [
        {"text": word.strip(), "timestamp": (round(start + 30, 2), round(end + 30, 2))} for word, start, end in words
    ]
    segments = processor.decode(generated, return_timestamps=True)
    assert segments == processor.decode(generated, return_timestamps="segment")
    assert segments["chunks"] == [
        {"text": "mister quilter", "timestamp": (0.0, 0.98)},
        {"text": "is the", "timestamp": (1.5, 2.0)},
    ]
    batch = processor.decode(torch.stack([generated, generated]), return_timestamps="word", time_offset=[0.0, 30.0])
    assert [result["chunks"][0]["timestamp"] for result in batch] == [(0.0, 0.4), (30.0, 30.4)]
    with pytest.raises(ValueError, match="return_timestamps"):
        processor.decode(generated, return_timestamps="chars")


def test_segments_are_cut_at_windows():
    from transformers_qwen_audio.word_timestamps import parse_segment_timestamps

    windows = ["<|0.00|>one<|1.00|> two<|30.00|>", "<|0.00|>three<|1.00|>"]
    assert parse_segment_timestamps(windows) == [
        {"text": "one two", "timestamp": (0.0, 30.0)},
        {"text": "three", "timestamp": (30.0, 31.0)},
    ]


def test_typed_kwargs_are_recognised_and_unknown_ones_reported(processor, tmp_path):
    import transformers.processing_utils
    from transformers.testing_utils import CaptureLogger

    with CaptureLogger(transformers.processing_utils.logger) as captured:
        processor(
            text="<audio></audio>",
            audio=chirp(0.5),
            sampling_rate=16000,
            allow_urls=False,
            audio_base_dir=tmp_path,
            long_audio="truncate",
            allow_audio_paths_in_text=False,
            padding_side="left",
            return_tensors="pt",
        )
    assert captured.out == ""
    with CaptureLogger(transformers.processing_utils.logger) as captured:
        processor(text="<audio></audio>", audio=chirp(0.5), not_a_processor_option=1)
    assert "not_a_processor_option" in captured.out
