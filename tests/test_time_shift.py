"""Time-shift augmentation (`time_shift_probability`): a shifted clip starts after silence on the 10 ms grid and ends
within the asked window, every target timestamp moves by exactly that offset (a target whose first word started at
0 opens with the silence), plain targets keep their words, evaluation batches are never shifted, bad settings are
refused."""

import re

import numpy as np
import pytest

from tone_clips import write_tone

from transformers_qwen_audio.task_prompts import build_task_prompt
from transformers_qwen_audio.training import QwenAudioCollator, QwenAudioPretrainer, QwenAudioPretrainingConfig
from transformers_qwen_audio.training.model_setup import byte_level_processor, model_from_config
from transformers_qwen_audio.training.time_shift import TimeShift, shift_timestamps, shift_waveform
from transformers_qwen_audio.word_timestamps import format_word_timestamps


SR = 16000
FRAME_SECONDS = 0.01  # one log-mel frame: 160 samples
TINY_CONFIG = {
    "audio_config": {"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64},
    "text_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
}
WORDS = [{"word": "stop", "start": 0.0, "end": 0.42}, {"word": "go", "start": 0.75, "end": 1.1}]


def timestamps(text: str) -> list[float]:
    return [float(value) for value in re.findall(r"<\|(\d+\.\d\d)\|>", text)]


@pytest.fixture(scope="module")
def processor():
    return byte_level_processor(["stop", "go"])


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """A word-timestamp example whose first word starts at 0, one starting after silence, a plain transcription."""
    folder = tmp_path_factory.mktemp("clips")
    srwt = build_task_prompt("transcribe", "en", timestamps=True)
    plain = build_task_prompt("transcribe", "en", itn=False)
    late_words = [{**word, "start": word["start"] + 0.3, "end": word["end"] + 0.3} for word in WORDS]
    examples = [
        (srwt, format_word_timestamps(WORDS, end_time=1.2, word_prefix=" ").removeprefix("<|0.00|>")),
        (srwt, format_word_timestamps(late_words, end_time=1.6, word_prefix=" ").removeprefix("<|0.00|>")),
        (plain, "stop go"),
    ]
    result = []
    for index, ((prompt, completion), seconds) in enumerate(zip(examples, (1.2, 1.6, 1.0))):
        path = folder / f"clip{index}.wav"
        write_tone(path, seconds)
        result.append({"audio": {"path": str(path), "bytes": None}, "prompt": prompt, "completion": completion,
                       "seconds": seconds})
    return result


def test_every_timestamp_moves_by_the_offset():
    late = "<|sil|><|0.31|> stop<|0.72|><|sil|><|1.60|>"
    assert shift_timestamps(late, 2.5, opens_after_timestamp=True) == "<|sil|><|2.81|> stop<|3.22|><|sil|><|4.10|>"
    # A first word at 0 (right after the prompt's <|0.00|>) now starts after the silence.
    assert shift_timestamps(" stop<|0.42|>", 1.23, opens_after_timestamp=True) == "<|sil|><|1.23|> stop<|1.65|>"
    assert shift_timestamps(" stop<|0.42|>", 1.23, opens_after_timestamp=False) == " stop<|1.65|>"
    assert shift_timestamps("stop go", 4.0, opens_after_timestamp=False) == "stop go"
    assert shift_timestamps(late, 0.0, opens_after_timestamp=True) == late
    waveform = np.ones(5, dtype=np.float32)
    shifted = shift_waveform(waveform, 0.01)
    assert shifted.dtype == np.float32 and len(shifted) == 165 and not shifted[:160].any() and shifted[160:].all()


def test_offsets_are_on_the_grid_and_keep_the_clip_in_the_window():
    shift = TimeShift(probability=1.0, max_seconds=8.0, seed=3)
    for _ in range(200):
        length = shift.batch_length(2.0)
        assert 2.0 <= length <= 8.0
        offset = shift.offset(1.5, length)
        assert offset + 1.5 <= length + 1e-9
        assert abs(offset / 0.01 - round(offset / 0.01)) < 1e-6
    assert TimeShift(probability=1.0, max_seconds=8.0).batch_length(8.0) is None  # nothing left to shift into
    never = TimeShift(probability=0.0)
    assert all(never.batch_length(1.0) is None for _ in range(50))
    sometimes = TimeShift(probability=0.25, seed=0)
    share = np.mean([sometimes.batch_length(1.0) is not None for _ in range(4000)])
    assert 0.22 < share < 0.28


def test_the_collator_shifts_clips_and_their_targets_together(processor, rows):
    plain_batch = QwenAudioCollator(processor, completion_only_loss=True)([dict(row) for row in rows])
    shift = TimeShift(probability=1.0, max_seconds=6.0, seed=0)
    collator = QwenAudioCollator(processor, completion_only_loss=True, time_shift=shift)
    offsets_seen = set()
    for _ in range(5):
        batch = collator([dict(row) for row in rows])
        frames = batch["feature_attention_mask"].sum(-1).tolist()
        for index, row in enumerate(rows):
            clip_frames = round(row["seconds"] / FRAME_SECONDS)
            offset = round((frames[index] - clip_frames) * FRAME_SECONDS, 2)
            assert 0 <= offset and frames[index] * FRAME_SECONDS <= 6.0 + 1e-6
            offsets_seen.add(offset)
            target = processor.tokenizer.decode(batch["labels"][index][batch["labels"][index] != -100],
                                                skip_special_tokens=False)
            original = processor.tokenizer.decode(plain_batch["labels"][index][plain_batch["labels"][index] != -100],
                                                  skip_special_tokens=False)
            if index == 2:  # plain transcription: the clip moves, the words stay
                assert target == original
                continue
            expected = [round(value + offset, 2) for value in timestamps(original)]
            if offset and index == 0:  # the first word started at 0: the silence before it is a new segment
                assert target.startswith(f"<|sil|><|{offset:.2f}|> stop")
                expected = [offset] + expected
            assert timestamps(target) == pytest.approx(expected, abs=1e-9)
            # Words are unchanged and the labels still cover the whole target only.
            assert re.sub(r"<\|[^|]+\|>", "", target) == re.sub(r"<\|[^|]+\|>", "", original)
            features = batch["input_features"][index]
            if offset >= 0.05:  # the leading silence reads as the extractor's floor, the tone after it does not
                assert features[:, : int(offset / FRAME_SECONDS) - 2].std() < 1e-4
    assert len(offsets_seen) > 3  # the offsets vary from batch to batch and clip to clip


def test_evaluation_batches_are_never_shifted(processor, rows, tmp_path):
    from datasets import Dataset

    model = model_from_config(TINY_CONFIG, processor)
    args = QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                      per_device_eval_batch_size=3, per_device_train_batch_size=3,
                                      time_shift_probability=1.0, time_shift_max_seconds=10.0,
                                      remove_unused_columns=False)
    collator = QwenAudioCollator(processor, completion_only_loss=True, time_shift=args.time_shift())
    dataset = Dataset.from_list([{key: value for key, value in row.items() if key != "seconds"} for row in rows])
    trainer = QwenAudioPretrainer(model=model, args=args, processing_class=processor, data_collator=collator,
                                  train_dataset=dataset, eval_dataset=dataset)
    clip_frames = sorted(round(row["seconds"] / FRAME_SECONDS) for row in rows)
    evaluation = next(iter(trainer.get_eval_dataloader()))
    assert sorted(evaluation["feature_attention_mask"].sum(-1).tolist()) == clip_frames
    training = [next(iter(trainer.get_train_dataloader())) for _ in range(3)]
    assert any(sorted(batch["feature_attention_mask"].sum(-1).tolist()) != clip_frames for batch in training)
    assert trainer.data_collator.time_shift is not None  # the trainer's own collator keeps its shift


@pytest.mark.parametrize("settings, message", [
    ({"time_shift_probability": 1.5}, r"`time_shift_probability` must be in \[0, 1\], got 1.5"),
    ({"time_shift_probability": -0.1}, r"`time_shift_probability` must be in \[0, 1\], got -0.1"),
    ({"time_shift_probability": 0.1, "time_shift_max_seconds": 31.0}, r"`time_shift_max_seconds` must be in \(0, 30\]"),
    ({"time_shift_max_seconds": 0.0}, r"`time_shift_max_seconds` must be in \(0, 30\], got 0.0"),
])
def test_bad_settings_are_refused_with_their_name(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", **settings)


def test_disabled_by_default(tmp_path):
    assert QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none").time_shift() is None
