"""Noisy target timestamps in the decoder's input (`timestamp_input_noise`): only learned timestamps move, by the
asked amount, within 0-30 s; labels stay exact; the trainer applies it in training steps only."""

import pytest
import torch

from tone_clips import write_tone

from transformers_qwen_audio.task_prompts import build_task_prompt
from transformers_qwen_audio.word_timestamps import format_word_timestamps
from transformers_qwen_audio.training import QwenAudioCollator, QwenAudioPretrainer, QwenAudioPretrainingConfig
from transformers_qwen_audio.training.model_setup import byte_level_processor, model_from_config
from transformers_qwen_audio.training.timestamp_noise import perturb_timestamp_inputs, timestamp_token_ids


TINY_CONFIG = {
    "audio_config": {"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64},
    "text_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
}


@pytest.fixture(scope="module")
def processor():
    return byte_level_processor(["stop", "go"])


@pytest.fixture(scope="module")
def batch(processor, tmp_path_factory):
    """Two word-timestamp examples and one plain transcription."""
    folder = tmp_path_factory.mktemp("clips")
    srwt = build_task_prompt("transcribe", "en", timestamps=True)
    plain = build_task_prompt("transcribe", "en", itn=False)
    words = [{"word": "stop", "start": 0.31, "end": 0.72}, {"word": "go", "start": 1.05, "end": 1.4}]
    rows = []
    for index, (prompt, completion) in enumerate((
        # The prompt ends with the first timestamp, <|0.00|>: the target goes on after it (as training.targets builds it).
        (srwt, format_word_timestamps(words, end_time=1.6, word_prefix=" ").removeprefix("<|0.00|>")),
        (srwt, format_word_timestamps(words[:1], end_time=29.99, word_prefix=" ").removeprefix("<|0.00|>")),
        (plain, "stop go"),
    )):
        path = folder / f"clip{index}.wav"
        write_tone(path, 1.0)
        rows.append({"audio": {"path": str(path), "bytes": None}, "prompt": prompt, "completion": completion})
    return QwenAudioCollator(processor, completion_only_loss=True)(rows)


def test_timestamp_ids_are_the_block_of_3001_tokens(processor):
    ids = timestamp_token_ids(processor.tokenizer)
    assert len(ids) == 3001
    assert processor.tokenizer.convert_ids_to_tokens([ids[0], ids[123], ids[-1]]) == ["<|0.00|>", "<|1.23|>", "<|30.00|>"]


def test_only_learned_timestamps_move_and_labels_stay(processor, batch):
    ids = timestamp_token_ids(processor.tokenizer)
    input_ids, labels = batch["input_ids"], batch["labels"]
    generator = torch.Generator().manual_seed(0)
    noisy = perturb_timestamp_inputs(input_ids, labels, ids, std_seconds=0.1, generator=generator)
    learned = (labels >= ids.start) & (labels < ids.stop)
    # The SRWT rows: <|sil|><|0.31|> stop<|0.72|><|sil|><|1.05|> go<|1.40|><|sil|><|1.60|> and one word; plain: none.
    assert learned[:2].sum(-1).tolist() == [5, 3] and learned[2].sum() == 0
    assert torch.equal(noisy[~learned], input_ids[~learned])  # prompt (incl. its <|0.00|>), words, padding: untouched
    assert not torch.equal(noisy[learned], input_ids[learned])
    assert bool(((noisy[learned] >= ids.start) & (noisy[learned] < ids.stop)).all())  # still timestamps, within 0-30 s
    prompt_timestamp = (input_ids == ids.start) & (labels == -100)
    assert prompt_timestamp[:2].sum() == 2 and torch.equal(noisy[prompt_timestamp], input_ids[prompt_timestamp])
    assert noisy[1][learned[1]].max() <= ids.stop - 1  # <|29.99|> moved up is clamped at <|30.00|>
    # Without noise the inputs are returned as they are.
    assert perturb_timestamp_inputs(input_ids, labels, ids, std_seconds=0.0) is input_ids


def test_the_shift_has_the_asked_spread():
    ids = range(1000, 4001)
    labels = torch.full((200, 100), 2500)
    shifts = perturb_timestamp_inputs(labels.clone(), labels, ids, 0.05, torch.Generator().manual_seed(1)) - 2500
    assert shifts.float().mean().abs() < 0.1  # unbiased, in 10 ms steps
    assert 4.8 < shifts.float().std() < 5.2  # 0.05 s = 5 steps


def test_trainer_feeds_noisy_timestamps_in_training_steps_only(processor, batch, tmp_path):
    torch.manual_seed(0)
    model = model_from_config(TINY_CONFIG, processor)
    seen = []
    model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["input_ids"].clone()), with_kwargs=True)
    args = QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", timestamp_input_noise=0.2)
    trainer = QwenAudioPretrainer(model=model, args=args, processing_class=processor)
    ids = timestamp_token_ids(processor.tokenizer)
    learned = (batch["labels"] >= ids.start) & (batch["labels"] < ids.stop)

    model.train()
    trainer.compute_loss(model, dict(batch))
    assert not torch.equal(seen[-1][learned], batch["input_ids"][learned])
    assert torch.equal(seen[-1][~learned], batch["input_ids"][~learned])
    model.eval()
    with torch.no_grad():
        trainer.compute_loss(model, dict(batch))
    assert torch.equal(seen[-1], batch["input_ids"])  # evaluation reads the true timestamps


def test_noise_needs_the_timestamp_tokens_and_a_positive_spread(tmp_path):
    model = model_from_config(TINY_CONFIG, byte_level_processor())
    args = QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", timestamp_input_noise=0.1)
    with pytest.raises(ValueError, match="timestamp_input_noise.*tokenizer"):
        QwenAudioPretrainer(model=model, args=args)  # no processing_class: the timestamp ids are unknown
    with pytest.raises(ValueError, match="timestamp_input_noise"):
        QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, timestamp_input_noise=-0.1)
