"""Clip joining (`clip_joining_probability`): transcription examples sharing a prompt become one recording of
several utterances with one target (plain words joined, word timestamps moved to each clip's place, one silence
segment between clips); other tasks stay apart; groups keep to `max_clips` and 30 s; evaluation is never joined;
bad settings are refused."""

import re

import numpy as np
import pytest

from tone_clips import write_tone

from transformers_qwen_audio.task_prompts import build_task_prompt
from transformers_qwen_audio.training import QwenAudioCollator, QwenAudioPretrainer, QwenAudioPretrainingConfig
from transformers_qwen_audio.training.clip_joining import ClipJoining, join_completions, join_waveforms
from transformers_qwen_audio.training.model_setup import byte_level_processor, model_from_config
from transformers_qwen_audio.word_timestamps import format_word_timestamps, parse_word_timestamps


SR = 16000
TINY_CONFIG = {
    "audio_config": {"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64},
    "text_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
}


def test_word_timestamp_targets_move_to_each_clip_and_share_one_silence():
    first = "<|sil|><|0.31|> stop<|0.72|><|sil|><|1.20|>"  # trailing silence up to the clip's end
    second = " go<|0.35|><|sil|><|0.50|>"  # the first word starts at the clip's start
    assert (join_completions([first, second], [0.0, 1.6], opens_after_timestamp=True)
            == "<|sil|><|0.31|> stop<|0.72|><|sil|><|1.60|> go<|1.95|><|sil|><|2.10|>")
    ends_in_a_word, starts_in_silence = "<|sil|><|0.30|> stop<|1.20|>", "<|sil|><|0.20|> go<|0.50|>"
    assert (join_completions([ends_in_a_word, starts_in_silence], [0.0, 1.5], opens_after_timestamp=True)
            == "<|sil|><|0.30|> stop<|1.20|><|sil|><|1.70|> go<|2.00|>")
    # Three clips: every word lands at its time on the joined recording.
    words = [[("stop", 0.1, 0.5)], [("go", 0.0, 0.4), ("stop", 0.6, 0.9)], [("go", 0.2, 0.7)]]
    lengths, starts = [0.6, 1.0, 0.8], [0.0, 1.0, 2.53]
    completions = [format_word_timestamps([{"word": w, "start": s, "end": e} for w, s, e in clip], end_time=length,
                                          word_prefix=" ").removeprefix("<|0.00|>")
                   for clip, length in zip(words, lengths)]
    joined = join_completions(completions, starts, opens_after_timestamp=True)
    parsed = parse_word_timestamps("<|0.00|>" + joined)
    expected = [(w, round(s + start, 2), round(e + start, 2)) for clip, start in zip(words, starts) for w, s, e in clip]
    assert [(c["text"].strip(), *c["timestamp"]) for c in parsed] == expected
    assert "<|sil|><|sil|>" not in joined and not re.search(r"(<\|\d+\.\d\d\|>){3}", joined)
    assert join_completions(["stop go", " go "], [0.0, 2.0], opens_after_timestamp=False) == "stop go go"


def test_groups_share_a_prompt_and_keep_to_the_limits():
    joining = ClipJoining(probability=1.0, max_clips=3, max_seconds=10.0)
    prompts = ["a", "b", "a", None, "a", "a", "b"]
    assert joining.groups(prompts, [1.0] * 7) == [[0, 2, 4], [1, 6]]  # the 4th "a" would make 4 clips
    assert joining.groups(["a", "a", "a"], [4.0, 4.0, 4.0]) == [[0, 1]]  # a third 4 s clip passes 10 s
    assert joining.groups(["a", None, "b"], [1.0] * 3) == []
    starts = ClipJoining(probability=1.0, min_pause_seconds=0.2, max_pause_seconds=0.4, seed=1).starts([1.234, 0.5, 2.0])
    assert starts[0] == 0.0
    assert 1.434 <= starts[1] <= 1.644 and starts[1] + 0.5 + 0.2 <= starts[2] <= starts[1] + 0.5 + 0.41
    assert all(abs(start * 100 - round(start * 100)) < 1e-9 for start in starts)
    waveform = join_waveforms([np.ones(3, np.float32), 2 * np.ones(2, np.float32)], [0.0, 0.001])
    assert waveform.tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2]


@pytest.fixture(scope="module")
def processor():
    return byte_level_processor(["stop", "go", "tone"])


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Two word-timestamp examples, a plain transcription and two sound labels (one clip each)."""
    folder = tmp_path_factory.mktemp("clips")
    srwt = build_task_prompt("transcribe", "en", timestamps=True)
    plain = build_task_prompt("transcribe", "en", itn=False)
    event = build_task_prompt("event")
    stop = [{"word": "stop", "start": 0.2, "end": 0.6}]
    go = [{"word": "go", "start": 0.0, "end": 0.5}]
    examples = [
        (srwt, format_word_timestamps(stop, end_time=1.0, word_prefix=" ").removeprefix("<|0.00|>"), 1.0, "stop"),
        (event, "tone", 0.5, None),
        (srwt, format_word_timestamps(go, end_time=0.8, word_prefix=" ").removeprefix("<|0.00|>"), 0.8, "go"),
        (plain, "stop go", 1.2, "stop go"),
        (event, "tone", 0.7, None),
    ]
    result = []
    for index, (prompt, completion, seconds, transcript) in enumerate(examples):
        path = folder / f"clip{index}.wav"
        write_tone(path, seconds)
        result.append({"audio": {"path": str(path), "bytes": None}, "prompt": prompt, "completion": completion,
                       "transcript": transcript})
    return result


def decoded_targets(processor, batch) -> list[str]:
    return [processor.tokenizer.decode(labels[labels != -100], skip_special_tokens=False) for labels in batch["labels"]]


def test_the_collator_joins_transcriptions_only(processor, rows):
    joining = ClipJoining(probability=1.0, max_clips=3, seed=0)
    collator = QwenAudioCollator(processor, completion_only_loss=True, clip_joining=joining, encoder_ctc_labels=True)
    batch = collator([dict(row) for row in rows])
    # Five examples become four: the two word-timestamp ones are one; the sound labels and the plain one stay.
    assert batch["input_ids"].shape[0] == 4
    targets = decoded_targets(processor, batch)
    eos = processor.tokenizer.eos_token
    assert targets[1:] == [f"tone{eos}", f"stop go{eos}", f"tone{eos}"]
    words = parse_word_timestamps("<|0.00|>" + targets[0].removesuffix(eos))
    assert [chunk["text"].strip() for chunk in words] == ["stop", "go"]
    go_start = words[1]["timestamp"][0]
    assert words[0]["timestamp"] == (0.2, 0.6) and 1.2 <= go_start <= 2.01  # after the 1 s clip and a pause
    frames = batch["feature_attention_mask"].sum(-1).tolist()
    assert frames[0] == round(go_start * 100) + 80  # the second clip (0.8 s) starts where its words say
    assert frames[1:] == [50, 120, 70]
    # The encoder's CTC target is both transcripts, one after the other.
    assert (batch["ctc_labels"][0] != -100).sum() == len("stop go")


def test_joining_is_off_in_most_batches_at_a_low_probability(processor, rows):
    collator = QwenAudioCollator(processor, completion_only_loss=True, clip_joining=ClipJoining(probability=0.2, seed=0))
    sizes = [collator([dict(row) for row in rows])["input_ids"].shape[0] for _ in range(60)]
    assert set(sizes) == {4, 5} and 0.08 < sizes.count(4) / len(sizes) < 0.4


def test_evaluation_batches_are_never_joined(processor, rows, tmp_path):
    from datasets import Dataset

    model = model_from_config(TINY_CONFIG, processor)
    args = QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                      per_device_eval_batch_size=5, per_device_train_batch_size=5,
                                      clip_joining_probability=1.0, remove_unused_columns=False)
    collator = QwenAudioCollator(processor, completion_only_loss=True, clip_joining=args.clip_joining())
    dataset = Dataset.from_list(rows)
    trainer = QwenAudioPretrainer(model=model, args=args, processing_class=processor, data_collator=collator,
                                  train_dataset=dataset, eval_dataset=dataset)
    assert next(iter(trainer.get_eval_dataloader()))["input_ids"].shape[0] == 5
    assert next(iter(trainer.get_train_dataloader()))["input_ids"].shape[0] == 4


@pytest.mark.parametrize("settings, message", [
    ({"clip_joining_probability": 2.0}, r"`clip_joining_probability` must be in \[0, 1\], got 2.0"),
    ({"clip_joining_probability": 0.5, "clip_joining_max_clips": 1}, r"`clip_joining_max_clips` must be an integer >= 2, got 1"),
])
def test_bad_settings_are_refused_with_their_name(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", **settings)
    assert QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none").clip_joining() is None
