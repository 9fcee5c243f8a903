"""Pre-training targets in the released format: SRWT formatting (round trip with the parser), tag chains, and the
exact label ids of a collated example (only the target and <|endoftext|>)."""

import numpy as np
import pytest
import soundfile
import torch

from transformers_qwen_audio import format_word_timestamps, parse_word_timestamps
from transformers_qwen_audio.training import IGNORE_INDEX, QwenAudioCollator, TaskTags, build_pretraining_example
from transformers_qwen_audio.training.model_setup import byte_level_processor


RELEASED_SRWT = "<|0.00|><|sil|><|0.54|>面<|0.86|>条<|1.17|>机<|1.46|><|sil|><|2.01|>"


def test_format_word_timestamps_writes_the_released_srwt_example():
    words = [
        {"text": "面", "start": 0.54, "end": 0.86},
        {"text": "条", "start": 0.86, "end": 1.17},
        {"text": "机", "start": 1.17, "end": 1.46},
    ]
    assert format_word_timestamps(words, end_time=2.01) == RELEASED_SRWT


def test_srwt_round_trip_through_parse_word_timestamps():
    words = [
        {"text": "the", "timestamp": (0.0, 0.21)},
        {"text": "middle", "timestamp": (0.21, 0.5)},
        {"text": "classes", "timestamp": (0.93, 1.4)},
        {"text": "rose", "timestamp": (1.4, 29.99)},
    ]
    text = format_word_timestamps(words, end_time=30.0)
    assert text == "<|0.00|>the<|0.21|>middle<|0.50|><|sil|><|0.93|>classes<|1.40|>rose<|29.99|><|sil|><|30.00|>"
    assert parse_word_timestamps(text) == words
    assert parse_word_timestamps(format_word_timestamps(parse_word_timestamps(RELEASED_SRWT), end_time=2.01)) == (
        parse_word_timestamps(RELEASED_SRWT)
    )


def test_srwt_times_are_put_on_the_10_ms_grid():
    assert format_word_timestamps([{"word": "a", "start": 0.123, "end": 0.456}]) == "<|0.00|><|sil|><|0.12|>a<|0.46|>"


@pytest.mark.parametrize(
    "words, message",
    [
        ([{"text": "a", "start": 0.5, "end": 0.4}], "time order"),
        ([{"text": "a", "start": 0.0, "end": 0.5}, {"text": "b", "start": 0.4, "end": 0.6}], "overlapping"),
        ([{"text": "a", "start": 0.0, "end": 31.0}], "30.00"),
        ([{"text": " ", "start": 0.0, "end": 0.5}], "empty"),
        ([{"text": "a", "start": 0.0}], "start and an end"),
        (["a"], "expected a dict"),
    ],
)
def test_bad_word_timestamps_are_refused(words, message):
    with pytest.raises(ValueError, match=message):
        format_word_timestamps(words)


def test_pretraining_examples_use_the_one_tag_chain():
    transcribe = build_pretraining_example(TaskTags("transcribe", "en", itn=False), text=" hello world ")
    assert transcribe == {
        "prompt": "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>",
        "completion": "hello world",
    }
    caption = build_pretraining_example(TaskTags("caption", caption_style="clotho"), text="a dog barks")
    assert caption["prompt"] == "<|startofanalysis|><|unknown|><|caption|><|en|><|notimestamps|><|caption_clotho|>"
    aqa = build_pretraining_example(TaskTags("question", "en"), text="a bell", question="What rings?")
    assert aqa["prompt"] == "<|startofanalysis|><|en|><|question|>What rings?<|answer|>"
    # Word timestamps: the prompt ends with the first timestamp, the target continues it; datasets' dict-of-lists
    # form of a words column is accepted too.
    srwt = build_pretraining_example(
        TaskTags("transcribe", "zh", timestamps=True),
        words={"text": ["面", "条", "机"], "start": [0.54, 0.86, 1.17], "end": [0.86, 1.17, 1.46]},
        duration=2.01,
    )
    assert srwt["prompt"] == "<|startoftranscript|><|zh|><|transcribe|><|zh|><|timestamps|><|0.00|>"
    assert srwt["prompt"][-len("<|0.00|>") :] + srwt["completion"] == RELEASED_SRWT
    assert build_pretraining_example(TaskTags("transcribe", "en", timestamps=True), words=[])["completion"] == ""


def test_srwt_words_of_spaced_languages_carry_a_leading_space():
    """English SRWT targets read "red the bird" once the timestamps are skipped (as its BPE tokens carry the space);
    Chinese keeps the released back-to-back form (checked above)."""
    words = [{"word": "red", "start": 0.42, "end": 0.75}, {"word": "the", "start": 1.24, "end": 1.53}]
    english = build_pretraining_example(TaskTags("transcribe", "en", timestamps=True), words=words, duration=2.0)
    assert english["completion"] == "<|sil|><|0.42|> red<|0.75|><|sil|><|1.24|> the<|1.53|><|sil|><|2.00|>"
    processor = byte_level_processor()
    ids = processor.tokenizer(english["completion"])["input_ids"]
    assert processor.decode(ids, skip_special_tokens=True).strip() == "red the"
    assert [chunk["text"] for chunk in processor.decode(ids, return_timestamps="word")["chunks"]] == ["red", "the"]
    assert parse_word_timestamps("<|0.00|>" + english["completion"]) == [
        {"text": "red", "timestamp": (0.42, 0.75)}, {"text": "the", "timestamp": (1.24, 1.53)}
    ]


def test_impossible_tags_are_refused_before_reading_data():
    with pytest.raises(ValueError, match="leave `itn`"):
        TaskTags("transcribe", "en", timestamps=True, itn=False).validate()
    with pytest.raises(ValueError, match="caption_style"):
        TaskTags("transcribe", "en", caption_style="clotho").validate()
    with pytest.raises(ValueError, match="Unknown task"):
        TaskTags("dance").validate()


def test_labels_are_exactly_the_target_and_endoftext(tmp_path):
    processor = byte_level_processor()
    tokenizer = processor.tokenizer
    clip = tmp_path / "clip.wav"
    soundfile.write(clip, (0.3 * np.sin(np.linspace(0, 2000, 16000))).astype(np.float32), 16000)
    example = build_pretraining_example(
        TaskTags("transcribe", "en", timestamps=True),
        words=[{"text": "hi", "start": 0.1, "end": 0.5}],
        duration=1.0,
    )
    rows = [{"audio": {"path": str(clip), "bytes": None}, **example}]
    batch = QwenAudioCollator(processor)(rows)

    target_ids = tokenizer("<|sil|><|0.10|> hi<|0.50|><|sil|><|1.00|><|endoftext|>")["input_ids"]
    labels, input_ids = batch["labels"][0], batch["input_ids"][0]
    trained = labels != IGNORE_INDEX
    # Every trained position is at the end, in order: exactly the target and <|endoftext|>.
    assert labels[trained].tolist() == target_ids
    assert torch.equal(input_ids[-len(target_ids) :], torch.tensor(target_ids))
    assert not trained[: -len(target_ids)].any()
    # The prompt (audio span and tags) is in the input but not in the labels.
    prompt_ids = tokenizer(example["prompt"])["input_ids"]
    assert input_ids[-len(target_ids) - len(prompt_ids) : -len(target_ids)].tolist() == prompt_ids
    assert input_ids[0] == processor.audio_start_token_id
