"""Training runs that meet bad data, bad checkpoints and user mistakes, driven as a user drives them (the recipes'
`main(argv)` on tiny data, the scripts in a subprocess): a missing clip is skipped and named, before and after a
resume; too many stop the run with their list; a damaged last checkpoint falls back to the previous one; a
non-finite loss stops the run naming its step and rows; recipe mistakes fail early, in one line."""

import json
import logging
import shutil

import pytest
import soundfile
import torch
import yaml
from cli_subprocess import assert_one_line_error, run_cli
from safetensors.torch import load_file, save_file

from transformers_qwen_audio.recipes import pretrain as pretrain_recipe
from transformers_qwen_audio.recipes import recipe_path
from transformers_qwen_audio.recipes import sft as sft_recipe
from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint, chirp
from transformers_qwen_audio.training.run_checks import NonFiniteLossError
from transformers_qwen_audio.training.toy_data import PITCHES, SAMPLING_RATE, _tone


SMOKE = recipe_path("tiny/pretrain_smoke.yaml")
TINY_SFT = recipe_path("tiny/sft_smoke.yaml")
MISSING_ROW = 5


def _overwrite_tensor_bytes(path):
    """0xFF over everything after the safetensors header: every float32 becomes NaN, the header stays valid."""
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    data[start:] = b"\xff" * (len(data) - start)
    path.write_bytes(bytes(data))


def _nan_weights(folder):
    for path in folder.glob("*.safetensors"):
        tensors = {name: torch.full_like(tensor, float("nan")) if tensor.is_floating_point() else tensor
                   for name, tensor in load_file(path).items()}
        save_file(tensors, path, metadata={"format": "pt"})


@pytest.fixture(scope="module")
def tone_recipe(tmp_path_factory):
    """A one-source recipe over 12 tone clips listed with their durations (`duration_column`: the mixture does not
    open the clips), one of which, row 5, is missing; 6 steps of 2 read each row once."""
    root = tmp_path_factory.mktemp("tones")
    rows = []
    for index in range(12):
        name = list(PITCHES)[index % len(PITCHES)]
        path = root / f"clip{index}.wav"
        if index != MISSING_ROW:
            soundfile.write(path, _tone(PITCHES[name], 0.4), SAMPLING_RATE)
        rows.append({"audio": str(path), "text": name, "duration": 0.4})
    (root / "tones.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    recipe = yaml.safe_load(SMOKE.read_text())
    recipe.pop("build_local_data")
    recipe["datasets"] = [{"path": str(root / "tones.jsonl"), "split": "train", "audio_column": "audio",
                           "text_column": "text", "duration_column": "duration", "task": "transcribe",
                           "audio_language": "en", "itn": False}]
    recipe.update({"max_steps": 6, "per_device_train_batch_size": 2, "save_steps": 2, "eval_strategy": "no",
                   "do_eval": False, "logging_steps": 1, "train_sampling_strategy": "random",
                   "output_dir": str(root / "run"), "max_bad_row_share": 0.5})
    config = root / "recipe.yaml"
    config.write_text(yaml.safe_dump(recipe))
    return config, root


def pretrain(config, *overrides):
    return pretrain_recipe.main(["--config", str(config), *map(str, overrides)])


@pytest.fixture(scope="module")
def tone_run(tone_recipe):
    config, root = tone_recipe
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("transformers_qwen_audio").addHandler(handler)
    try:
        pretrain(config)
    finally:
        logging.getLogger("transformers_qwen_audio").removeHandler(handler)
    return config, root, [record.getMessage() for record in records]


def test_a_missing_clip_is_skipped_and_named_by_source_and_row(tone_run):
    config, root, messages = tone_run
    skipped = [message for message in messages if message.startswith("Skipped")]
    assert skipped and f"row {MISSING_ROW}" in skipped[0] and f"clip{MISSING_ROW}.wav" in skipped[0], skipped
    assert "tones.jsonl" in skipped[0]
    assert (root / "run" / "model.safetensors").is_file()


def test_a_damaged_last_checkpoint_resumes_from_the_previous_one(tone_run, tmp_path, caplog):
    config, root, _ = tone_run
    output_dir = tmp_path / "run"
    shutil.copytree(root / "run", output_dir)
    assert (output_dir / "checkpoint-4").is_dir() and (output_dir / "checkpoint-6").is_dir()
    _overwrite_tensor_bytes(output_dir / "checkpoint-6" / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="transformers_qwen_audio"):
        # 12 steps: the second epoch (steps 7-12) is read whole after the resume from step 4.
        pretrain(config, "--output_dir", output_dir, "--max_steps", 12)
    assert "Skipping damaged checkpoint" in caplog.text and "checkpoint-6" in caplog.text
    assert f"Resuming from {output_dir / 'checkpoint-4'}" in caplog.text
    # The seeded sampler meets the missing clip again after the resume: skipped again, not fatal.
    assert f"row {MISSING_ROW}" in caplog.text
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 12
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == list(range(1, 13))
    assert all(torch.isfinite(torch.tensor(losses))), losses
    final = load_file(output_dir / "model.safetensors")
    assert all(bool(torch.isfinite(tensor).all()) for tensor in final.values())


def test_every_checkpoint_damaged_is_one_line_naming_them(tone_run, tmp_path):
    config, root, _ = tone_run
    output_dir = tmp_path / "run"
    shutil.copytree(root / "run", output_dir)
    for step in (4, 6):
        _overwrite_tensor_bytes(output_dir / f"checkpoint-{step}" / "model.safetensors")
    result = run_cli("--config", config, "--output_dir", output_dir, "--max_steps", 6,
                     module="transformers_qwen_audio.recipes.pretrain")
    line = assert_one_line_error(result, "python -m transformers_qwen_audio.recipes.pretrain: error:",
                                 "no complete checkpoint to resume from", "checkpoint-4", "checkpoint-6")
    assert "NaN or infinite" in line


def test_too_many_bad_clips_stop_the_run_with_their_list(tone_recipe, tmp_path):
    config, _ = tone_recipe
    with pytest.raises(ValueError, match=rf"max_bad_row_share.*row {MISSING_ROW}.*clip{MISSING_ROW}\.wav"):
        pretrain(config, "--output_dir", tmp_path / "run", "--max_bad_row_share", 0)


def test_a_non_finite_loss_stops_pretraining_naming_the_step_and_rows(tone_run, tmp_path):
    config, root, _ = tone_run
    start = tmp_path / "nan-model"
    shutil.copytree(root / "run", start, ignore=shutil.ignore_patterns("checkpoint-*"))
    _nan_weights(start)
    with pytest.raises(NonFiniteLossError, match=r"step 1: the loss is nan on the batch of Source .*tones.*, row \d+"):
        pretrain(config, "--model_config", "null", "--model_name_or_path", start, "--output_dir", tmp_path / "run",
                 "--save_strategy", "no")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_a_non_finite_loss_stops_fine_tuning(tmp_path):
    model_dir = build_released_checkpoint(tmp_path / "model")
    _nan_weights(model_dir)
    (tmp_path / "audio").mkdir()
    soundfile.write(tmp_path / "audio" / "chirp.wav", chirp(0.5), SAMPLING_RATE)
    row = {"messages": [{"role": "user", "content": [{"type": "audio", "audio": "audio/chirp.wav"},
                                                     {"type": "text", "text": "What is it?"}]},
                        {"role": "assistant", "content": "A chirp."}]}
    dataset = tmp_path / "chat.jsonl"
    dataset.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(NonFiniteLossError, match=r"step 1: the loss is nan on the batch of Example 0, Example 1"):
        sft_recipe.main(["--config", str(TINY_SFT), "--model_name_or_path", str(model_dir), "--dataset_name",
                         str(dataset), "--audio_base_dir", str(tmp_path), "--output_dir", str(tmp_path / "run"),
                         "--use_peft", "false", "--max_steps", "1", "--save_strategy", "no"])


# --- recipe mistakes: named before anything loads ---------------------------------------------------------------


def test_a_yaml_typo_is_named_with_the_closest_key(tone_recipe, tmp_path):
    config, _ = tone_recipe
    typo = tmp_path / "typo.yaml"
    typo.write_text(config.read_text().replace("learning_rate:", "learnin_rate:"))
    with pytest.raises(ValueError, match=r"Unknown key\(s\) in .*typo.yaml: 'learnin_rate' \(did you mean 'learning_rate'\?\)"):
        pretrain(typo)
    with pytest.raises(ValueError, match=r"Unknown option\(s\): 'max_stepz' \(did you mean 'max_steps'\?\)"):
        pretrain(config, "--max_stepz", 3)
    with pytest.raises(FileNotFoundError, match="recipe not found: .*nothing.yaml"):
        pretrain(tmp_path / "nothing.yaml")


def test_a_negative_seed_and_a_missing_model_fail_first(tone_recipe, tmp_path):
    config, _ = tone_recipe
    with pytest.raises(ValueError, match=r"`seed` must be between 0 and 4294967295, got -1"):
        pretrain(config, "--seed", -1, "--output_dir", tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="model folder not found: /nonexistent/model"):
        pretrain(config, "--model_config", "null", "--model_name_or_path", "/nonexistent/model",
                 "--output_dir", tmp_path / "run")


def test_a_missing_or_empty_sft_dataset_is_named(tmp_path):
    arguments = ["--config", str(TINY_SFT), "--model_name_or_path", str(tmp_path), "--output_dir", str(tmp_path / "run")]
    with pytest.raises(FileNotFoundError, match="dataset not found: .*missing.jsonl"):
        sft_recipe.main([*arguments, "--dataset_name", str(tmp_path / "missing.jsonl")])
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="The dataset .*empty.jsonl is empty"):
        sft_recipe.main([*arguments, "--dataset_name", str(tmp_path / "empty.jsonl")])


def test_the_demo_checks_its_seed_before_anything_starts(tmp_path):
    result = run_cli("--seed", "-1", "--output-dir", tmp_path / "demo", module="transformers_qwen_audio.demo",
                     timeout=120)
    assert_one_line_error(result, "python -m transformers_qwen_audio.demo: error:", "--seed", "-1")
    assert not (tmp_path / "demo").exists()
