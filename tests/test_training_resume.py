"""Resuming: damaged checkpoints are named and skipped, never trained from (training/resume.py)."""

import json
import logging

import pytest
import torch
from safetensors.torch import save_file

from transformers_qwen_audio.training.resume import (
    DamagedCheckpointError,
    check_training_checkpoint,
    resumable_checkpoint,
)


def _checkpoint(output_dir, step: int, weight: float = 1.0):
    folder = output_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    save_file({"layer.weight": torch.full((4, 4), weight), "layer.bias": torch.zeros(4)}, folder / "model.safetensors")
    torch.save({"state": {0: {"exp_avg": torch.zeros(4, 4), "step": torch.tensor(3.0)}},
                "param_groups": [{"lr": 1e-3, "params": [0]}]}, folder / "optimizer.pt")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def _overwrite_tensor_bytes(path):
    """Overwrites the data section (after the header) with 0xFF bytes: every float32 becomes NaN."""
    data = bytearray(path.read_bytes())
    header_length = int.from_bytes(data[:8], "little")
    start = 8 + header_length
    data[start:] = b"\xff" * (len(data) - start)
    path.write_bytes(bytes(data))


def test_complete_checkpoint_is_resumed(tmp_path):
    _checkpoint(tmp_path, 10)
    newest = _checkpoint(tmp_path, 20)
    assert resumable_checkpoint(tmp_path) == str(newest)
    assert resumable_checkpoint(tmp_path / "nothing-here") is None


def test_overwritten_tensor_bytes_fall_back_to_the_previous_checkpoint(tmp_path, caplog):
    previous = _checkpoint(tmp_path, 10)
    damaged = _checkpoint(tmp_path, 20)
    _overwrite_tensor_bytes(damaged / "model.safetensors")
    with caplog.at_level(logging.WARNING):
        assert resumable_checkpoint(tmp_path) == str(previous)
    assert "checkpoint-20" in caplog.text and "NaN or infinite" in caplog.text and "layer." in caplog.text


def test_truncated_weights_are_named(tmp_path):
    damaged = _checkpoint(tmp_path, 20)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(DamagedCheckpointError, match=r"model\.safetensors"):
        check_training_checkpoint(damaged)
    with pytest.raises(DamagedCheckpointError, match="no complete checkpoint to resume from.*checkpoint-20"):
        resumable_checkpoint(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "nan", "missing_state", "no_weights"])
def test_each_kind_of_damage_is_named(tmp_path, damage):
    folder = _checkpoint(tmp_path, 5)
    if damage == "truncate":
        (folder / "optimizer.pt").write_bytes((folder / "optimizer.pt").read_bytes()[:100])
        expected = "optimizer state .*optimizer.pt cannot be read"
    elif damage == "nan":
        state = torch.load(folder / "optimizer.pt", weights_only=True)
        state["state"][0]["exp_avg"][0, 0] = float("nan")
        torch.save(state, folder / "optimizer.pt")
        expected = "optimizer state .*optimizer.pt holds NaN"
    elif damage == "missing_state":
        (folder / "trainer_state.json").unlink()
        expected = "trainer state .*trainer_state.json is missing"
    else:
        (folder / "model.safetensors").unlink()
        expected = "holds no safetensors weights"
    with pytest.raises(DamagedCheckpointError, match=expected):
        check_training_checkpoint(folder)


def test_requested_checkpoint_is_checked_not_replaced(tmp_path):
    _checkpoint(tmp_path, 10)
    damaged = _checkpoint(tmp_path, 20)
    _overwrite_tensor_bytes(damaged / "model.safetensors")
    with pytest.raises(DamagedCheckpointError, match="checkpoint-20"):
        resumable_checkpoint(tmp_path, requested=damaged)
