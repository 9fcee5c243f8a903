"""The auxiliary encoder CTC loss of pre-training: transcripts in the mixture, byte labels in the collator (clips
dropped by truncation drop theirs), the loss the trainer adds (checked against a recomputation), and the head that
checkpoints keep and the final model does not."""

import numpy as np
import pytest
import soundfile
import torch

from transformers_qwen_audio.training import (
    IGNORE_INDEX,
    AudioMixtureArguments,
    QwenAudioCollator,
    QwenAudioPretrainer,
    QwenAudioPretrainingConfig,
    attach_encoder_ctc_head,
    attach_encoder_position_head,
    load_audio_mixture,
    remove_training_heads,
)
from transformers_qwen_audio.training.collators import pad_ctc_labels, transcript_ctc_labels
from transformers_qwen_audio.training.encoder_heads import encoder_ctc_loss, encoder_position_loss
from transformers_qwen_audio.training.model_setup import byte_level_processor, model_from_config
from transformers_qwen_audio.training.toy_data import build_toy_pretraining_data


TRANSCRIBE = "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"
TINY_CONFIG = {
    "audio_config": {"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64},
    "text_config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64},
}


@pytest.fixture(scope="module")
def processor():
    return byte_level_processor()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for index, seconds in enumerate((1.0, 1.5, 0.8)):
        path = folder / f"clip{index}.wav"
        time_axis = np.arange(int(seconds * 16000)) / 16000
        soundfile.write(path, (0.3 * np.sin(2 * np.pi * (300 + 200 * index) * time_axis)).astype(np.float32), 16000)
        paths.append(str(path))
    return paths


def row(path, completion, transcript=""):
    return {"audio": {"path": path, "bytes": None}, "prompt": TRANSCRIBE, "completion": completion,
            "transcript": transcript}


def test_labels_are_the_transcript_bytes_after_the_blank():
    assert transcript_ctc_labels(" hé ") == [ord("h") + 1, 0xC3 + 1, 0xA9 + 1]
    assert transcript_ctc_labels("") == transcript_ctc_labels(None) == []
    assert pad_ctc_labels([[5, 6], []]).tolist() == [[5, 6], [IGNORE_INDEX, IGNORE_INDEX]]


def test_mixture_rows_carry_transcripts_of_transcription_sources_only(tmp_path):
    root = build_toy_pretraining_data(tmp_path / "data")
    common = {"path": str(root / "tones"), "split": "train", "task": "transcribe", "audio_language": "en"}
    mixture = AudioMixtureArguments(datasets=[
        {**common, "itn": False},
        {**common, "words_column": "words", "text_column": None, "timestamps": True},
        {"path": str(root / "chirps"), "split": "train", "text_column": "caption", "task": "caption",
         "caption_style": "clotho"},
        {**common, "itn": False, "encoder_ctc": False},
    ])
    train = load_audio_mixture(mixture, seed=0)["train"]
    by_prompt = {}
    for example in train:
        by_prompt.setdefault(example["prompt"], set()).add(example["transcript"])
    transcripts = by_prompt[TRANSCRIBE]
    assert "" in transcripts and len(transcripts) > 1  # the opted-out copy of the source has none
    srwt = by_prompt["<|startoftranscript|><|en|><|transcribe|><|en|><|timestamps|><|0.00|>"]
    # The timestamped source's words, joined: the same transcripts as the plain source.
    assert srwt == transcripts - {""}
    caption_prompt = next(prompt for prompt in by_prompt if "caption" in prompt)
    assert by_prompt[caption_prompt] == {""}


def test_collator_puts_one_label_row_per_clip_and_drops_those_of_cut_clips(processor, clips):
    rows = [row(clips[0], "one two", "one two"), row(clips[1], "tone"), row(clips[2], "three", "three")]
    batch = QwenAudioCollator(processor, encoder_ctc_labels=True)(rows)
    assert batch["ctc_labels"].shape[0] == batch["input_features"].shape[0] == 3
    assert batch["ctc_labels"][0, :7].tolist() == transcript_ctc_labels("one two")
    assert (batch["ctc_labels"][1] == IGNORE_INDEX).all()
    assert "ctc_labels" not in QwenAudioCollator(processor)(rows)
    # Two clips in one row: no per-clip transcript, so no CTC target.
    two_clips = {**row(clips[0], "one", "one"), "audio": [{"path": clips[0], "bytes": None},
                                                        {"path": clips[2], "bytes": None}]}
    assert (QwenAudioCollator(processor, encoder_ctc_labels=True)([two_clips])["ctc_labels"] == IGNORE_INDEX).all()
    # A cut that removes the second clip of a row removes its label row with it.
    short = QwenAudioCollator(processor, encoder_ctc_labels=True, max_length=30)
    cut = short([{**two_clips, "audio": [{"path": clips[2], "bytes": None}, {"path": clips[0], "bytes": None}]}])
    assert cut["ctc_labels"].shape[0] == cut["input_features"].shape[0] == 1


def test_trainer_adds_the_weighted_ctc_loss_of_the_encoder_output(processor, clips, tmp_path):
    torch.manual_seed(0)
    model = model_from_config(TINY_CONFIG, processor)
    head = attach_encoder_ctc_head(model)
    assert attach_encoder_ctc_head(model) is head
    batch = QwenAudioCollator(processor, encoder_ctc_labels=True)(
        [row(clips[0], "one two", "one two"), row(clips[1], "tone"), row(clips[2], "three", "three")]
    )
    args = QwenAudioPretrainingConfig(output_dir=str(tmp_path), encoder_ctc_weight=0.5, use_cpu=True, report_to="none")
    trainer = QwenAudioPretrainer(model=model, args=args)
    model.train()
    total = trainer.compute_loss(model, dict(batch))
    ctc_labels = batch.pop("ctc_labels")
    language_model_loss = model(**batch).loss
    one_sequence_per_row = torch.arange(3)
    encoder_states = model.model.audio_tower(
        batch["input_features"], batch["feature_attention_mask"], one_sequence_per_row
    ).last_hidden_state
    ctc = encoder_ctc_loss(head, encoder_states, batch["input_features"], batch["feature_attention_mask"], ctc_labels,
                           model.config.audio_config)
    assert ctc is not None and torch.isfinite(ctc) and ctc > 0
    torch.testing.assert_close(total, language_model_loss + 0.5 * ctc)
    total.backward()
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    # Evaluation reports the language-model loss alone.
    model.eval()
    torch.testing.assert_close(trainer.compute_loss(model, {**batch, "ctc_labels": ctc_labels}), model(**batch).loss)
    remove_training_heads(model)
    assert not any(name.startswith("encoder_ctc_head") for name in model.state_dict())


def test_negative_weight_is_refused(tmp_path):
    with pytest.raises(ValueError, match="encoder_ctc_weight"):
        QwenAudioPretrainingConfig(output_dir=str(tmp_path), encoder_ctc_weight=-1.0)
    with pytest.raises(ValueError, match="encoder_position_weight"):
        QwenAudioPretrainingConfig(output_dir=str(tmp_path), encoder_position_weight=-1.0)


def test_position_loss_asks_each_audio_token_of_a_clip_for_its_index(processor, clips):
    torch.manual_seed(0)
    model = model_from_config(TINY_CONFIG, processor)
    head = attach_encoder_position_head(model)
    assert attach_encoder_position_head(model) is head and head.out_features == 750  # 30 s at 25 tokens/s
    batch = QwenAudioCollator(processor)([row(clips[0], "one"), row(clips[2], "two")])  # 1.0 s and 0.8 s
    features, mask = batch["input_features"], batch["feature_attention_mask"]
    states = torch.randn(2, 25, model.config.audio_config.d_model)
    # A head that reads the index off a one-hot code of it scores (almost) zero; past a clip's end nothing counts.
    with torch.no_grad():
        head.weight.zero_(), head.bias.zero_()
        head.weight[:25, :25] = 100 * torch.eye(25)
    one_hot = torch.zeros(2, 25, model.config.audio_config.d_model)
    one_hot[:, :, :25] = torch.eye(25)
    one_hot[1, 20:] = 0  # the 0.8 s clip has 20 tokens: what lies beyond is padding
    assert encoder_position_loss(head, one_hot, features, mask, model.config.audio_config) < 1e-6
    shuffled = one_hot[:, torch.randperm(25)]
    assert encoder_position_loss(head, shuffled, features, mask, model.config.audio_config) > 10
    assert torch.isfinite(encoder_position_loss(head, states, features, mask, model.config.audio_config))


def test_trainer_adds_the_weighted_position_loss_in_warmup_and_joint_steps(processor, clips, tmp_path):
    torch.manual_seed(0)
    model = model_from_config(TINY_CONFIG, processor)
    ctc_head, position_head = attach_encoder_ctc_head(model), attach_encoder_position_head(model)
    batch = QwenAudioCollator(processor, encoder_ctc_labels=True)(
        [row(clips[0], "one two", "one two"), row(clips[1], "tone"), row(clips[2], "three", "three")]
    )
    config = dict(output_dir=str(tmp_path), use_cpu=True, report_to="none", encoder_position_weight=0.25)
    ctc_labels = batch.pop("ctc_labels")
    model.train()
    states = model.model.audio_tower(batch["input_features"], batch["feature_attention_mask"], torch.arange(3)).last_hidden_state
    ctc = encoder_ctc_loss(ctc_head, states, batch["input_features"], batch["feature_attention_mask"], ctc_labels,
                           model.config.audio_config)
    position = encoder_position_loss(position_head, states, batch["input_features"], batch["feature_attention_mask"],
                                     model.config.audio_config)
    # Joint step (no CTC weight): the language-model loss + 0.25 x the position loss.
    joint = QwenAudioPretrainer(model=model, args=QwenAudioPretrainingConfig(**config))
    torch.testing.assert_close(joint.compute_loss(model, {**batch, "ctc_labels": ctc_labels}),
                               model(**batch).loss + 0.25 * position)
    # Encoder warm-up step: CTC + 0.25 x position, the decoder not run.
    trainer = QwenAudioPretrainer(model=model, args=QwenAudioPretrainingConfig(**config, encoder_ctc_warmup_steps=5))
    loss = trainer.compute_loss(model, {**batch, "ctc_labels": ctc_labels})
    torch.testing.assert_close(loss, ctc + 0.25 * position)
    loss.backward()
    assert position_head.weight.grad.abs().sum() > 0 and model.lm_head.weight.grad is None
    # Missing head: a clear error; the final model loses both heads.
    remove_training_heads(model)
    assert not any(name.startswith(("encoder_ctc_head", "encoder_position_head")) for name in model.state_dict())
    with pytest.raises(ValueError, match="attach_encoder_position_head"):
        joint.compute_loss(model, {**batch, "ctc_labels": ctc_labels})


def train_steps(processor, clips, tmp_path, max_steps, warmup_steps):
    from datasets import Dataset

    torch.manual_seed(0)
    model = model_from_config(TINY_CONFIG, processor)
    attach_encoder_ctc_head(model)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    rows = [row(clips[0], "one two", "one two"), row(clips[1], "tone"), row(clips[2], "three", "three")]
    args = QwenAudioPretrainingConfig(
        output_dir=str(tmp_path), max_steps=max_steps, per_device_train_batch_size=3, learning_rate=1e-2,
        encoder_ctc_weight=0.5, encoder_ctc_warmup_steps=warmup_steps, use_cpu=True, report_to="none",
        save_strategy="no", remove_unused_columns=False, logging_steps=1,
    )
    trainer = QwenAudioPretrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                  data_collator=QwenAudioCollator(processor, encoder_ctc_labels=True))
    trainer.train()
    changed = {name for name, parameter in model.named_parameters() if not torch.equal(parameter, before[name])}
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    return changed, logged


def test_warmup_steps_train_the_encoder_and_head_alone(processor, clips, tmp_path):
    changed, logged = train_steps(processor, clips, tmp_path / "warmup", max_steps=2, warmup_steps=2)
    assert any(name.startswith("model.audio_tower.") for name in changed)
    assert any(name.startswith("encoder_ctc_head.") for name in changed)
    assert not any(name.startswith(("model.language_model.", "lm_head.", "model.multi_modal_projector.")) for name in changed)
    # The logged loss of a warm-up step is the CTC loss itself.
    assert all(entry["loss"] == pytest.approx(entry["encoder_ctc_loss"], rel=1e-3) for entry in logged)
    changed, _ = train_steps(processor, clips, tmp_path / "joint", max_steps=2, warmup_steps=0)
    assert any(name.startswith("model.language_model.") for name in changed)


def scheduled_learning_rates(tmp_path, steps, **config):
    args = QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", **config)
    trainer = QwenAudioPretrainer(model=torch.nn.Linear(2, 2), args=args)
    trainer.create_optimizer_and_scheduler(steps)
    rates = []
    for _ in range(steps):
        rates.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    return rates


def test_joint_learning_rate_restarts_the_schedule_after_the_encoder_warmup(tmp_path):
    rates = scheduled_learning_rates(tmp_path, 300, learning_rate=2e-3, joint_learning_rate=5e-4,
                                     encoder_ctc_warmup_steps=100, warmup_steps=0.1, lr_scheduler_type="linear")
    # Warm-up phase: 10 linear warm-up steps to 2e-3, then linear decay to 0 at step 100.
    assert rates[0] == 0 and rates[10] == pytest.approx(2e-3) and rates[55] == pytest.approx(1e-3)
    assert max(rates[:100]) == pytest.approx(2e-3)
    # Joint phase: its own 20 warm-up steps (10% of 200) to 5e-4, then linear decay to 0.
    assert rates[100] == 0 and rates[120] == pytest.approx(5e-4) and max(rates[100:]) == pytest.approx(5e-4)
    assert rates[210] == pytest.approx(2.5e-4)
    # Without it: the one schedule of transformers over all steps.
    single = scheduled_learning_rates(tmp_path, 300, learning_rate=2e-3, encoder_ctc_warmup_steps=100,
                                      warmup_steps=0.1, lr_scheduler_type="linear")
    assert single[30] == pytest.approx(2e-3) and single[165] == pytest.approx(1e-3)


@pytest.mark.parametrize("config, message", [
    ({"joint_learning_rate": 0.0, "encoder_ctc_warmup_steps": 10}, "must be > 0"),
    ({"joint_learning_rate": 1e-3}, "encoder_ctc_warmup_steps"),
])
def test_joint_learning_rate_settings_are_checked(tmp_path, config, message):
    with pytest.raises(ValueError, match=message):
        QwenAudioPretrainingConfig(output_dir=str(tmp_path), **config)


def test_joint_learning_rate_refuses_a_schedule_it_cannot_restart(tmp_path):
    with pytest.raises(ValueError, match="reduce_lr_on_plateau"):
        scheduled_learning_rates(tmp_path, 20, joint_learning_rate=1e-3, encoder_ctc_warmup_steps=10,
                                 lr_scheduler_type="reduce_lr_on_plateau")


def test_length_grouped_sampler_holds_the_lengths_as_a_list(tmp_path):
    # `datasets` returns a column as a lazy `Column`; sorting by it fetched one row per index every epoch.
    from datasets import Dataset
    from transformers.trainer_pt_utils import LengthGroupedSampler

    dataset = Dataset.from_dict({"length": [30, 10, 20, 40] * 8})
    args = QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                      per_device_train_batch_size=4, train_sampling_strategy="group_by_length")
    sampler = QwenAudioPretrainer(model=torch.nn.Linear(2, 2), args=args, train_dataset=dataset)._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler)
    assert sampler.lengths == [30, 10, 20, 40] * 8 and isinstance(sampler.lengths, list)
    assert sorted(sampler) == list(range(32))
