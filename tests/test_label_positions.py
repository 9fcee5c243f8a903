"""Training logits at the labelled positions only: the pre-training trainer's loss and gradients equal those of the
full logits, with a fraction of the positions projected; evaluation keeps every position's logits."""

import numpy as np
import pytest
import soundfile
import torch

from transformers_qwen_audio.training import QwenAudioCollator, QwenAudioPretrainer, QwenAudioPretrainingConfig
from transformers_qwen_audio.training.label_positions import keep_logits_at_labels
from transformers_qwen_audio.training.model_setup import byte_level_processor, model_from_config


TRANSCRIBE = "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"
TINY_CONFIG = {
    "audio_config": {"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64},
    "text_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    rows = []
    for index, (seconds, completion) in enumerate(((1.0, "one two"), (2.2, "tone"), (0.6, "three four five"))):
        path = folder / f"clip{index}.wav"
        time_axis = np.arange(int(seconds * 16000)) / 16000
        soundfile.write(path, (0.3 * np.sin(2 * np.pi * (300 + 200 * index) * time_axis)).astype(np.float32), 16000)
        rows.append({"audio": {"path": str(path), "bytes": None}, "prompt": TRANSCRIBE, "completion": completion})
    return QwenAudioCollator(byte_level_processor(), completion_only_loss=True)(rows)


def gradients(model):
    return {name: parameter.grad.clone() for name, parameter in model.named_parameters() if parameter.grad is not None}


def test_mask_marks_the_positions_whose_next_token_is_learned(batch):
    kept = keep_logits_at_labels(batch)
    labels = batch["labels"]
    for row in range(labels.shape[0]):
        learned = (labels[row] != -100).nonzero().squeeze(-1)
        assert kept["logits_to_keep"][row].nonzero().squeeze(-1).tolist() == (learned - 1).tolist()
    assert kept["shift_labels"].tolist() == labels[:, 1:][kept["logits_to_keep"][:, :-1]].tolist()
    assert kept["logits_to_keep"].float().mean() < 0.5  # the audio spans and the tags are most of each row
    # Inputs that choose their logits already, or have no labels, are left alone.
    assert keep_logits_at_labels({**batch, "logits_to_keep": 1})["logits_to_keep"] == 1
    assert "logits_to_keep" not in keep_logits_at_labels({"input_ids": batch["input_ids"]})


def test_training_loss_and_gradients_equal_the_full_logits(batch, tmp_path):
    torch.manual_seed(0)
    model = model_from_config(TINY_CONFIG, byte_level_processor()).train()
    full_loss = model(**batch).loss
    full_loss.backward()
    expected = gradients(model)
    model.zero_grad()

    args = QwenAudioPretrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = QwenAudioPretrainer(model=model, args=args)
    loss, outputs = trainer.compute_loss(model, dict(batch), return_outputs=True)
    # One logits row per learned token, not batch x sequence.
    assert outputs.logits.shape == ((batch["labels"][:, 1:] != -100).sum().item(), model.config.text_config.vocab_size)
    torch.testing.assert_close(loss, full_loss)
    loss.backward()
    actual = gradients(model)
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-5, atol=1e-7, msg=name)

    # Normalised by the tokens of a whole accumulated batch, as the trainer passes them.
    tokens = torch.tensor(40)
    torch.testing.assert_close(trainer.compute_loss(model, dict(batch), num_items_in_batch=tokens),
                               model(**batch, num_items_in_batch=tokens).loss)

    # Evaluation keeps every position's logits (prediction_step may return them).
    model.eval()
    _, outputs = trainer.compute_loss(model, dict(batch), return_outputs=True)
    assert outputs.logits.shape[:2] == batch["input_ids"].shape
