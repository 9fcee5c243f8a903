"""The fine-tuning recipe (`transformers_qwen_audio.recipes.sft`) end to end on a tiny Qwen-Audio-Chat (CPU, seconds): LoRA + resume, and a real learning check."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from safetensors.torch import load_file
from trl import SFTTrainer

from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint, chirp
from transformers_qwen_audio.recipes import recipe_path
from transformers_qwen_audio.recipes import sft as sft_recipe
from transformers_qwen_audio.training.runs import run_sft


REPO_ROOT = Path(__file__).resolve().parent.parent
RECIPES = REPO_ROOT / "recipes"  # the real-scale recipes; the tiny ones are package data
TINY_SFT = recipe_path("tiny/sft_smoke.yaml")
TINY_DATASET = REPO_ROOT / "examples" / "data" / "tiny_sft.jsonl"
SAMPLING_RATE = 16000


def load_recipe():
    return sft_recipe


@pytest.fixture(scope="module")
def recipe():
    return load_recipe()


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """The tiny released-layout checkpoint and the clips `examples/data/tiny_sft.jsonl` refers to."""
    root = tmp_path_factory.mktemp("tiny-sft")
    model_dir = build_released_checkpoint(root / "model")
    (root / "audio").mkdir()
    time_axis = np.arange(SAMPLING_RATE // 2) / SAMPLING_RATE
    soundfile.write(root / "audio" / "chirp_up.wav", chirp(0.5), SAMPLING_RATE)
    for frequency in (440, 880):
        tone = (0.3 * np.sin(2 * np.pi * frequency * time_axis)).astype(np.float32)
        soundfile.write(root / "audio" / f"tone_{frequency}.wav", tone, SAMPLING_RATE)
    return model_dir, root


def argv(config: Path, *overrides) -> list[str]:
    return ["--config", str(config), *map(str, overrides)]


def parse(recipe, config: Path, *overrides):
    return recipe.make_parser().parse_args_and_config(args=argv(config, *overrides))


def train(recipe, arguments: list[str]):
    """What the recipe's `main(argv)` runs, returning the trainer."""
    return run_sft(*recipe.make_parser().parse_args_and_config(args=arguments))


def tiny_args(tiny_setup, output_dir, *overrides) -> list[str]:
    model_dir, audio_dir = tiny_setup
    return argv(
        TINY_SFT,
        "--model_name_or_path", model_dir,
        "--dataset_name", TINY_DATASET,
        "--audio_base_dir", audio_dir,
        "--output_dir", output_dir,
        *overrides,
    )


def logged_losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_lora_recipe_trains_saves_adapters_and_resumes(recipe, tiny_setup, tmp_path, monkeypatch):
    output_dir = tmp_path / "lora"
    trainer = train(recipe, tiny_args(tiny_setup, output_dir))
    losses = logged_losses(trainer)
    assert trainer.state.global_step == 3 and len(losses) == 3
    assert all(math.isfinite(loss) for loss in losses)

    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md", "train_results.json",
                 "processor_config.json", "chat_template.jinja"):
        assert (output_dir / name).is_file(), name
    adapter_keys = list(load_file(output_dir / "adapter_model.safetensors"))
    assert adapter_keys and all("lora_" in key for key in adapter_keys)
    # Adapters on the language model only: the audio encoder stays frozen.
    assert any("language_model" in key for key in adapter_keys)
    assert not any("audio_tower" in key or "multi_modal_projector" in key for key in adapter_keys)
    assert json.loads((output_dir / "train_results.json").read_text())["train_samples"] == 4
    assert (output_dir / "checkpoint-2").is_dir() and (output_dir / "checkpoint-3").is_dir()

    # Running again with more steps picks up the last checkpoint instead of starting over.
    resumed_from = []
    original_train = SFTTrainer.train

    def spy_train(self, *args, **kwargs):
        resumed_from.append(kwargs.get("resume_from_checkpoint"))
        return original_train(self, *args, **kwargs)

    monkeypatch.setattr(SFTTrainer, "train", spy_train)
    trainer = train(recipe, tiny_args(tiny_setup, output_dir, "--max_steps", "5"))
    assert resumed_from == [str(output_dir / "checkpoint-3")]
    assert trainer.state.global_step == 5
    assert [entry["step"] for entry in trainer.state.log_history if "loss" in entry] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(loss) for loss in logged_losses(trainer))


def test_full_fine_tuning_learns_a_repeated_batch(recipe, tiny_setup, tmp_path):
    from transformers import AutoModelForCausalLM, AutoProcessor

    model_dir, _ = tiny_setup
    trainer = train(
        recipe, tiny_args(
            tiny_setup, tmp_path / "full",
            # The whole 4-example dataset is one batch, seen at every step.
            "--use_peft", "false", "--max_steps", "10", "--per_device_train_batch_size", "4",
            "--learning_rate", "1e-2", "--save_strategy", "no", "--audio_embedding_cache_mb", "8",
            "--add_word_tokens", "chirp", "second",
        )
    )
    losses = logged_losses(trainer)
    assert len(losses) == 10 and all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.5 * losses[0], losses
    # The frozen encoder encoded the first step's 4 clips (3 files); the nine later steps read them from the cache.
    cache = trainer.model.model.get_audio_features.cache
    assert (cache.misses, len(cache), cache.hits) == (4, 3, 9 * 4)
    # The two added words are one token each in the saved processor, their rows trained (the replies hold them).
    saved = AutoProcessor.from_pretrained(tmp_path / "full").tokenizer
    vocabulary = trainer.model.config.text_config.vocab_size
    assert vocabulary == len(saved) == len(AutoProcessor.from_pretrained(model_dir).tokenizer) + 2
    assert saved("A rising chirp.", add_special_tokens=False)["input_ids"][-2] == vocabulary - 2
    letters = AutoProcessor.from_pretrained(model_dir).tokenizer("chirp", add_special_tokens=False)["input_ids"]
    initial_row = AutoModelForCausalLM.from_pretrained(model_dir).get_input_embeddings().weight[letters].mean(0)
    assert not torch.allclose(trainer.model.get_input_embeddings().weight[vocabulary - 2], initial_row)

    # `freeze_audio_encoder` (default) left the encoder as it was: the audio encoder as pre-training's
    # `train_modules` defines it (tower, projection and the <audio>/</audio> embeddings).
    initial = AutoModelForCausalLM.from_pretrained(model_dir)
    trained = trainer.model
    encoder = ("model.audio_tower.", "model.multi_modal_projector.", "model.audio_boundary_embeddings.")
    encoder_parameters = [(name, p) for name, p in initial.named_parameters() if name.startswith(encoder)]
    assert any(name.startswith("model.audio_boundary_embeddings.") for name, _ in encoder_parameters)
    for name, parameter in encoder_parameters:
        assert not trained.get_parameter(name).requires_grad, name
        assert torch.equal(parameter, trained.get_parameter(name)), name
    assert not torch.equal(
        initial.model.language_model.layers[0].self_attn.q_proj.weight,
        trained.model.language_model.layers[0].self_attn.q_proj.weight,
    )


def test_added_word_tokens_need_full_fine_tuning(recipe, tiny_setup, tmp_path):
    with pytest.raises(ValueError, match="`add_word_tokens` needs full fine-tuning"):
        train(recipe, tiny_args(tiny_setup, tmp_path / "lora", "--add_word_tokens", "chirp"))


def test_recipe_yamls_parse(recipe):
    # bf16 is validated against the machine at parse time: this one may have no GPU.
    script_args, training_args, model_args, audio_args, _ = parse(
        recipe, RECIPES / "qwen-audio-chat" / "sft" / "config_lora.yaml", "--bf16", "false"
    )
    assert model_args.model_name_or_path == "Qwen/Qwen-Audio-Chat" and model_args.use_peft
    assert training_args.activation_checkpointing and audio_args.freeze_audio_encoder
    assert training_args.assistant_only_loss
    # Command-line values override the YAML.
    _, training_args, model_args, _, _ = parse(
        recipe, TINY_SFT, "--learning_rate", "0.5", "--lora_r", "4"
    )
    assert training_args.learning_rate == 0.5 and model_args.lora_r == 4
