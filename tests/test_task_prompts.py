"""Base-model task prompts against the original's pre-training/evaluation prompts, and timestamp parsing."""

import numpy as np
import pytest

from transformers_qwen_audio.task_prompts import build_task_prompt, supported_tasks
from transformers_qwen_audio.word_timestamps import parse_word_timestamps


PROMPT_SETTINGS = [
    {"task": "transcribe", "audio_language": "en", "itn": False},
    {"task": "caption", "output_language": "en", "caption_style": "clotho"},
    {"task": "transcribe", "audio_language": "en", "timestamps": True},
]


@pytest.mark.parametrize("case_index", range(9))
def test_base_prompts_of_the_original(manifest, processor, audio_features, file_to_key, case_index):
    case = manifest["base_prompts"][case_index]
    file_name = case["prompt"].split("<audio>")[1].split("</audio>")[0]
    built = [f"<audio>{file_name}</audio>" + build_task_prompt(**settings) for settings in PROMPT_SETTINGS]
    assert built.count(case["prompt"]) == 1
    waveform = audio_features[f"{file_to_key[file_name]}.waveform_16k"]
    assert processor(text=case["prompt"], audio=waveform)["input_ids"][0] == case["input_ids"]


TASK_REQUESTS = [
    {"task": "transcribe", "language": "en"},
    {"task": "caption", "caption_style": "clotho"},
    {"task": "transcribe", "language": "en", "timestamps": True},
]


@pytest.mark.parametrize("case_index", range(9))
def test_task_requests_give_the_base_prompts_of_the_original(manifest, processor, reference_dir, case_index):
    case = manifest["base_prompts"][case_index]
    file_name = case["prompt"].split("<audio>")[1].split("</audio>")[0]
    prompts = [
        processor.apply_task_request(file_name, chat_format="raw", tokenize=False, **request)
        for request in TASK_REQUESTS
    ]
    assert prompts.count(case["prompt"]) == 1
    request = TASK_REQUESTS[prompts.index(case["prompt"])]
    inputs = processor.apply_task_request(
        file_name, chat_format="raw", audio_base_dir=reference_dir / "audio", **request
    )
    assert inputs["input_ids"][0] == case["input_ids"]


def test_aqa_prompt_matches_tokenizer_case(manifest, tokenizer):
    prompt = build_task_prompt("question", audio_language="en", question="What is the sound?")
    assert prompt == manifest["tokenizer_cases"]["15"]["text"]


def test_translation_and_itn_tags():
    assert (
        build_task_prompt("translate", audio_language="en", output_language="zh", itn=True)
        == "<|startoftranscript|><|en|><|translate|><|zh|><|notimestamps|><|itn|>"
    )
    assert build_task_prompt("emotion_recognition", audio_language="zh") == (
        "<|startofanalysis|><|zh|><|emotion_recognition|><|en|><|notimestamps|>"
    )


def test_every_task_builds_with_tokens_of_the_vocabulary(tokenizer):
    for task in supported_tasks():
        if task in ("question", "aqa"):
            continue
        output_language = "zh" if task == "translate" else None
        prompt = build_task_prompt(task, audio_language="en", output_language=output_language)
        ids = tokenizer(prompt)["input_ids"]
        # Every tag is exactly one special token of the original vocabulary.
        assert len(ids) == prompt.count("<|") and all(token_id >= tokenizer.eos_token_id for token_id in ids)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"task": "dance"}, "Unknown task"),
        ({"task": "transcribe", "audio_language": "xx"}, "Unknown audio language"),
        ({"task": "translate", "audio_language": "en"}, "needs an `output_language`"),
        ({"task": "transcribe"}, "unknown audio language needs"),
        ({"task": "transcribe", "audio_language": "en", "output_language": "unknown"}, "Unknown output language"),
        ({"task": "caption", "itn": True}, "only applies to"),
        ({"task": "transcribe", "audio_language": "en", "caption_style": "clotho"}, "caption task"),
        ({"task": "caption", "caption_style": "haiku"}, "Unknown caption style"),
        ({"task": "caption", "timestamps": True}, "timestamps=True"),
        ({"task": "question"}, "non-empty `question`"),
        ({"task": "transcribe", "audio_language": "en", "question": "why"}, "question"),
        ({"task": "transcribe", "audio_language": "en", "timestamps": True, "first_timestamp": 31.0}, "0.00 to 30.00"),
    ],
)
def test_refused_combinations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_task_prompt(**kwargs)


def test_parse_word_timestamps_with_silence(manifest):
    text = manifest["tokenizer_cases"]["16"]["text"]
    assert parse_word_timestamps(text) == [
        {"text": "面", "timestamp": (0.54, 0.86)},
        {"text": "条", "timestamp": (0.86, 1.17)},
        {"text": "机", "timestamp": (1.17, 1.46)},
    ]


def test_parse_word_timestamps_round_trips_through_tokenizer(tokenizer):
    ids = tokenizer("<|0.00|>mister<|0.40|> quilter<|0.98|><|endoftext|>")["input_ids"]
    words = parse_word_timestamps(tokenizer.decode(ids))
    assert words == [{"text": "mister", "timestamp": (0.0, 0.4)}, {"text": "quilter", "timestamp": (0.4, 0.98)}]


def test_parse_word_timestamps_offsets_for_chunks():
    words = parse_word_timestamps(["<|0.00|>one<|1.00|>", "<|0.50|>two<|2.00|>"], time_offset=10.0)
    assert [word["timestamp"] for word in words] == [(10.0, 11.0), (40.5, 42.0)]
    assert np.isclose(words[1]["timestamp"][0], 40.5)


def test_parse_word_timestamps_open_ends():
    assert parse_word_timestamps("before<|1.00|>after") == [
        {"text": "before", "timestamp": (None, 1.0)},
        {"text": "after", "timestamp": (1.0, None)},
    ]


def test_parse_word_timestamps_type_error():
    with pytest.raises(TypeError, match="string"):
        parse_word_timestamps(42)
