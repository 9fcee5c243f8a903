"""Base-model task prompts against the original's pre-training/evaluation prompts, and timestamp parsing."""

import numpy as np
import pytest

from transformers_qwen_audio.task_prompts import (
    RELEASED_TASK_TAGS,
    TASK_LAYOUTS,
    build_task_prompt,
    supported_tasks,
    task_layout,
)
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
        "<|startofanalysis|><|zh|><|keyword|><|en|><|notimestamps|><|emotion_recognition|>"
    )


# The prompts of QwenLM/Qwen-Audio eval_audio/evaluate_*.py, byte for byte (after `<audio>{}</audio>`), with the
# slots filled as each script fills them; and the request that asks for the same here.
ORIGINAL_EVALUATION_PROMPTS = [
    ("evaluate_asr.py", "<|startoftranscript|><|{}|><|transcribe|><|{}|><|notimestamps|><|wo_itn|>", ("en", "en"),
     {"task": "transcribe", "language": "en"}),
    ("evaluate_asr.py", "<|startoftranscript|><|{}|><|transcribe|><|{}|><|notimestamps|><|wo_itn|>", ("zh", "zh"),
     {"task": "transcribe", "language": "zh"}),
    ("evaluate_st.py", "<|startoftranscript|><|{}|><|translate|><|{}|><|notimestamps|><|itn|>", ("en", "de"),
     {"task": "translate", "language": "en", "output_language": "de"}),
    ("evaluate_srwt.py", "<|startoftranscript|><|{}|><|transcribe|><|{}|><|timestamps|><|0.00|>", ("en", "en"),
     {"task": "transcribe", "language": "en", "timestamps": True}),
    ("evaluate_caption.py",
     "<|startofanalysis|><|unknown|><|caption|><|en|><|notimestamps|><|caption_{}|>", ("clotho",),
     {"task": "caption", "caption_style": "clotho"}),
    ("evaluate_scene.py", "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|scene|>", (),
     {"task": "scene"}),
    ("evaluate_emotion.py",
     "<|startofanalysis|><|en|><|keyword|><|en|><|notimestamps|><|emotion_recognition|>", (),
     {"task": "emotion_recognition"}),
    ("evaluate_aqa.py", "<|startofanalysis|><|en|><|question|>{}<|answer|>", ("Are there waves?",),
     {"task": "question", "prompt": "Are there waves?"}),
    ("evaluate_vocal_sound.py",
     "<|startofanalysis|><|en|><|keyword|><|en|><|notimestamps|><|vocal_classification|>", (),
     {"task": "vocal_classification"}),
    ("evaluate_note_analysis.py",
     "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|note_analysis|>", (),
     {"task": "note_analysis"}),
]


@pytest.mark.parametrize("script, template, slots, request_kwargs", ORIGINAL_EVALUATION_PROMPTS,
                         ids=[f"{case[0]}:{case[3]['task']}" for case in ORIGINAL_EVALUATION_PROMPTS])
def test_every_shorthand_gives_the_prompt_of_the_original_evaluation(processor, script, template, slots,
                                                                     request_kwargs):
    expected = "<audio>clip.wav</audio>" + template.format(*slots)
    # The processor of a base checkpoint (and so the pipeline's `task=` and the CLI's `transcribe`)...
    assert processor.apply_task_request("clip.wav", chat_format="raw", tokenize=False, **request_kwargs) == expected
    # ...and the table's own defaults, with nothing but the task and what the script fills in.
    _, layout = task_layout(request_kwargs["task"])
    assert layout.source.startswith("QwenLM/Qwen-Audio eval_audio/") and script in layout.source


def test_analysis_tasks_use_the_released_task_tags(tokenizer):
    for name, layout in TASK_LAYOUTS.items():
        if name == "question":
            continue
        assert layout.task_tag in RELEASED_TASK_TAGS, name
        assert layout.output_instruction is None or layout.output_instruction not in RELEASED_TASK_TAGS
        assert layout.source.startswith("QwenLM/Qwen-Audio eval_audio/") or "no evaluation script" in layout.source


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
        ({"task": "transcribe", "audio_language": "en", "caption_style": "clotho"}, "only applies to caption,"),
        ({"task": "caption", "caption_style": "haiku"}, "Unknown caption style"),
        ({"task": "caption", "timestamps": True}, "`timestamps` only applies to transcribe, translate, event"),
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


BENCHMARK_REQUESTS = {
    "aishell1_test": {"task": "transcribe", "language": "zh"},
    "clotho": {"task": "caption", "caption_style": "clotho"},
    "clothoaqa": {"task": "question", "prompt": "{question}"},
    "cochlscene": {"task": "scene"},
    "tut2017": {"task": "scene"},
    "meld": {"task": "emotion_recognition"},
    "nsynth": {"task": "note_analysis"},
    "vocalsound": {"task": "vocal_classification"},
    "tiny_sounds": {"task": "event"},
    "tiny_sounds_unseen": {"task": "event"},
    "tiny_srwt": {"task": "transcribe", "language": "en", "timestamps": True},
    **{name: {"task": "transcribe", "language": "en"}
       for name in ("librispeech_test_clean", "librispeech_test_other", "tiny_asr", "tiny_asr_unseen", "tiny_long_asr")},
    **{f"covost2_{source}_{target}": {"task": "translate", "language": source, "output_language": target}
       for source, target in [("de", "en"), ("en", "de"), ("en", "zh"), ("es", "en"), ("fr", "en"), ("it", "en"),
                              ("zh", "en")]},
}


def test_every_benchmark_prompt_is_the_table_s_prompt_for_its_task(processor):
    from transformers_qwen_audio.recipes import recipe_path

    import yaml

    folder = recipe_path("benchmarks/tiny_asr.yaml").parent
    names = sorted(path.stem for path in folder.glob("*.yaml"))
    assert names == sorted(BENCHMARK_REQUESTS)
    for name in names:
        prompt = yaml.safe_load((folder / f"{name}.yaml").read_text())["prompt"]
        built = processor.apply_task_request("x", chat_format="raw", tokenize=False, **BENCHMARK_REQUESTS[name])
        assert "<audio>x</audio>" + prompt == built, name
