"""The pre-training recipe (`transformers_qwen_audio.recipes.pretrain`) end to end on CPU: the smoke recipe as shipped (data built on first use) learns, its output
loads with the Auto classes and the audio-chat pipeline, and the train_modules schedules freeze what they say."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from transformers_qwen_audio.recipes import pretrain as pretrain_recipe
from transformers_qwen_audio.recipes import recipe_path
from transformers_qwen_audio.training.runs import run_pretraining
from transformers_qwen_audio.training.toy_data import PITCHES, _tone


REPO_ROOT = Path(__file__).resolve().parent.parent
RECIPES = REPO_ROOT / "recipes"  # the real-scale recipes and the README; the tiny ones are package data
TINY_PRETRAIN = recipe_path("tiny/pretrain_smoke.yaml")


@pytest.fixture(scope="module")
def recipe():
    return pretrain_recipe


def run(recipe, *overrides, config=TINY_PRETRAIN):
    """What the recipe's `main(argv)` runs, returning the trainer."""
    arguments = ["--config", str(config), *map(str, overrides)]
    return run_pretraining(*recipe.make_parser().parse_args_and_config(args=arguments))


@pytest.fixture(scope="module")
def tiny_run(recipe, tmp_path_factory):
    """The smoke recipe as shipped, run from an empty folder (its relative data paths are built there)."""
    workdir = tmp_path_factory.mktemp("pretrain")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        trainer = run(recipe, "--eval_on_start", "true")
    return workdir, trainer


def test_tiny_recipe_builds_its_data_and_lowers_the_held_out_loss(tiny_run):
    workdir, trainer = tiny_run
    assert (workdir / "data" / "tiny-pretrain" / "tones" / "train" / "metadata.jsonl").is_file()
    assert (workdir / "data" / "tiny-pretrain" / "chirps" / "README.md").is_file()
    eval_losses = [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry]
    assert all(math.isfinite(loss) for loss in eval_losses)
    # From random (about ln(vocabulary)) to well below it: the model learned the targets, not just noise.
    assert eval_losses[0] > math.log(16) and eval_losses[-1] < 0.6 * eval_losses[0], eval_losses


def test_output_is_a_native_checkpoint_with_processor_files(tiny_run):
    output_dir = tiny_run[0] / "data" / "tiny-qwen-audio-pretrain-smoke"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json",
                 "preprocessor_config.json", "generation_config.json", "README.md", "train_results.json"):
        assert (output_dir / name).is_file(), name
    config = json.loads((output_dir / "config.json").read_text())
    assert config["model_type"] == "qwen_audio" and config["use_cache"] is True
    assert all(key.startswith(("model.", "lm_head.")) for key in load_file(output_dir / "model.safetensors"))


def test_output_loads_with_auto_classes_and_the_pipeline(tiny_run):
    from transformers import AutoModelForCausalLM, AutoProcessor, pipeline

    output_dir = tiny_run[0] / "data" / "tiny-qwen-audio-pretrain-smoke"
    model = AutoModelForCausalLM.from_pretrained(output_dir)
    processor = AutoProcessor.from_pretrained(output_dir)
    clip = _tone(PITCHES["high"], 0.5)
    prompt = "<audio></audio><|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"
    inputs = processor(text=prompt, audio=clip, return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]

    pipe = pipeline("audio-chat", model=str(output_dir))
    result = pipe(clip, task="transcribe", language="en", max_new_tokens=6)
    assert isinstance(result["text"], str)


def test_audio_encoder_schedule_leaves_the_language_model_untouched(recipe, tiny_run, tmp_path):
    workdir, first = tiny_run
    start = workdir / "data" / "tiny-qwen-audio-pretrain-smoke"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)  # the data is there already
        run(recipe, "--model_config", "null", "--model_name_or_path", start, "--train_modules", "audio_encoder",
            "--max_steps", 3, "--eval_strategy", "no", "--save_strategy", "no", "--output_dir", tmp_path / "stage")
    before, after = load_file(start / "model.safetensors"), load_file(tmp_path / "stage" / "model.safetensors")
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed and all(key.startswith(("model.audio_tower.", "model.multi_modal_projector.",
                                           "model.audio_boundary_embeddings.")) for key in changed)
    assert not any("embed_positions" in key for key in changed)


@pytest.mark.parametrize("config", ["tiny/pretrain_smoke.yaml", "tiny/pretrain.yaml", "qwen-audio/pretrain/config_full.yaml"])
def test_pretraining_yamls_are_valid_mixtures_with_documented_keys(config):
    from transformers_qwen_audio.training import AudioMixtureArguments

    loaded = yaml.safe_load((recipe_path(config) if config.startswith("tiny/") else RECIPES / config).read_text())
    readme = (RECIPES / "README.md").read_text()
    for source in loaded["datasets"]:
        for key in source:
            assert f"`{key}`" in readme, key
    mixture = AudioMixtureArguments(datasets=loaded["datasets"])  # every source's keys and tags are valid
    assert all(source.weight > 0 for source in mixture.datasets)
    if config.startswith("qwen-audio"):
        assert "openslr/librispeech_asr" in {source.path for source in mixture.datasets}
