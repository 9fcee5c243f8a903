"""Loading the released layout without running its code, converting it, and saving back."""

import json
import os
import shutil

import pytest
import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMultimodalLM, AutoModelForSeq2SeqLM

import transformers_qwen_audio  # noqa: F401
from transformers_qwen_audio import QwenAudioConfig, QwenAudioForConditionalGeneration, QwenAudioModel
from transformers_qwen_audio.cli.convert import main as convert_main
from transformers_qwen_audio.convert import convert
from hostile_files import write_code_running_pickle
from reference_cases import clip_inputs, manifest, model_outputs, require_reference

TRAP = "raise RuntimeError('code from the checkpoint folder was executed')\n"


def released(name="tiny_original_layout"):
    return require_reference() / name


def case_inputs(case_name="tiny.two_audios"):
    case = manifest()["model_cases"][case_name]
    return model_outputs()[f"{case_name}.input_ids"].long()[None], clip_inputs(case["audios"])


def logits_of(model, case_name="tiny.two_audios"):
    input_ids, audio = case_inputs(case_name)
    with torch.no_grad():
        return model.eval()(input_ids, **audio).logits


@pytest.fixture
def trapped_copy(tmp_path):
    """The released folder plus the remote-code files its auto_map names, each raising when imported."""
    folder = tmp_path / "released"
    shutil.copytree(released(), folder)
    for module in ("configuration_qwen.py", "modeling_qwen.py", "tokenization_qwen.py", "audio.py", "qwen_generation_utils.py"):
        (folder / module).write_text(TRAP)
    return folder


def test_auto_config_reads_released_layout_without_remote_code(trapped_copy):
    config = AutoConfig.from_pretrained(trapped_copy)
    assert isinstance(config, QwenAudioConfig)
    assert config.model_type == "qwen_audio"
    assert config.text_config.intermediate_size == 128  # released intermediate_size // 2
    assert config.audio_end_id == 1001
    assert not getattr(config, "auto_map", None)


def test_released_config_without_audio_block_is_refused(tmp_path):
    config = json.loads((released() / "config.json").read_text())
    del config["audio"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no `audio` block"):
        AutoConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("auto_class", [AutoModelForCausalLM, AutoModelForMultimodalLM, AutoModelForSeq2SeqLM])
def test_auto_classes_load_released_layout_with_trap(trapped_copy, auto_class):
    model = auto_class.from_pretrained(trapped_copy)
    assert isinstance(model, QwenAudioForConditionalGeneration)
    expected = model_outputs()["tiny.two_audios.logits"]
    assert (logits_of(model)[0] - expected).abs().max().item() <= 1e-4


def test_auto_model_gives_the_base_model(trapped_copy):
    base = AutoModel.from_pretrained(trapped_copy)
    full = AutoModelForCausalLM.from_pretrained(trapped_copy)
    assert isinstance(base, QwenAudioModel)
    for name, tensor in base.state_dict().items():
        assert torch.equal(tensor, full.model.state_dict()[name]), name


def test_pickle_checkpoint_is_loaded_with_weights_only(tmp_path):
    """A `pytorch_model.bin` that would run code when unpickled must be refused, not executed."""
    folder = tmp_path / "evil"
    folder.mkdir()
    shutil.copy(released() / "config.json", folder / "config.json")
    marker = tmp_path / "pwned"
    write_code_running_pickle(folder / "pytorch_model.bin", marker)
    with pytest.raises(Exception):
        AutoModelForCausalLM.from_pretrained(folder)
    assert not marker.exists()


def test_conversion_round_trip_is_bit_identical(tmp_path):
    destination = convert(released(), tmp_path / "native", max_shard_size="300KB")
    index = json.loads((destination / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1
    assert not any(key.startswith("transformer.") for key in index["weight_map"])
    with safe_open(destination / shards[0], "pt") as handle:
        assert all(not key.startswith("transformer.") for key in handle.keys())
    config = json.loads((destination / "config.json").read_text())
    assert config["model_type"] == "qwen_audio" and "auto_map" not in config
    assert (destination / "README.md").read_text().count("QwenAudio") >= 0 and "convert" in (destination / "README.md").read_text()
    assert not list(tmp_path.glob(".native.partial-*"))

    direct = AutoModelForCausalLM.from_pretrained(released())
    converted = AutoModelForCausalLM.from_pretrained(destination)
    assert torch.equal(logits_of(direct), logits_of(converted))


def test_conversion_to_bfloat16_matches_direct_bfloat16_load(tmp_path):
    destination = convert(released(), tmp_path / "bf16", dtype="bfloat16")
    converted = AutoModelForCausalLM.from_pretrained(destination)
    direct = AutoModelForCausalLM.from_pretrained(released(), dtype=torch.bfloat16)
    assert converted.dtype == torch.bfloat16
    assert torch.equal(logits_of(direct), logits_of(converted))


def test_conversion_writes_processor_files_for_real_vocabulary(tmp_path):
    destination = convert(released("tiny_real_vocab_original_layout"), tmp_path / "chat")
    for name in ("tokenizer.json", "chat_template.jinja", "preprocessor_config.json", "processor_config.json",
                 "generation_config.json"):
        assert (destination / name).is_file(), name
    assert not (destination / "qwen.tiktoken").exists()
    generation = json.loads((destination / "generation_config.json").read_text())
    assert 151645 in generation["eos_token_id"] and 151643 in generation["eos_token_id"]


def test_conversion_refuses_to_overwrite_and_replaces_atomically(tmp_path):
    destination = tmp_path / "out"
    destination.mkdir()
    (destination / "keep.txt").write_text("user data")
    assert convert_main([str(released()), str(destination)]) == 2
    assert (destination / "keep.txt").read_text() == "user data"
    # --overwrite replaces only a folder convert wrote; this one needs the explicit flag.
    assert convert_main([str(released()), str(destination), "--overwrite"]) == 2
    assert (destination / "keep.txt").read_text() == "user data"
    convert(released(), destination, overwrite_any_folder=True)
    assert not (destination / "keep.txt").exists() and (destination / "config.json").is_file()
    convert(released(), destination, overwrite=True)  # now it is one of ours
    assert not list(tmp_path.glob(".out.*"))


def test_failed_conversion_leaves_no_partial_output(tmp_path, monkeypatch):
    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(QwenAudioForConditionalGeneration, "save_pretrained", broken_save)
    with pytest.raises(OSError, match="disk full"):
        convert(released(), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_push_to_hub_uploads_the_converted_folder(tmp_path, monkeypatch):
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls.append(("create_repo", repo_id))

        def upload_folder(self, folder_path, repo_id, commit_message):
            calls.append(("upload_folder", repo_id, sorted(os.listdir(folder_path))))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    convert(released(), tmp_path / "out", push_to_hub="me/qwen-audio-tiny")
    assert calls[0] == ("create_repo", "me/qwen-audio-tiny")
    assert calls[1][0] == "upload_folder" and "config.json" in calls[1][2]


def test_save_pretrained_native_by_default_and_original_on_request(tmp_path):
    model = AutoModelForCausalLM.from_pretrained(released())
    model.save_pretrained(tmp_path / "native")
    model.save_pretrained(tmp_path / "original", save_original_format=True)
    with safe_open(tmp_path / "native" / "model.safetensors", "pt") as handle:
        assert "model.language_model.layers.0.self_attn.q_proj.weight" in handle.keys()
    with safe_open(tmp_path / "original" / "model.safetensors", "pt") as handle:
        assert "transformer.h.0.attn.c_attn.weight" in handle.keys()
    reference = logits_of(model)
    for folder in ("native", "original"):
        assert torch.equal(logits_of(AutoModelForCausalLM.from_pretrained(tmp_path / folder)), reference), folder


def test_device_map_auto_and_half_precision_load(tmp_path):
    model = AutoModelForCausalLM.from_pretrained(released(), device_map="auto", dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    logits = logits_of(model).float()
    expected = model_outputs()["tiny.two_audios.logits"]
    assert torch.isfinite(logits).all()
    assert (logits[0] - expected).abs().max().item() < 0.5  # bf16 rounding only


def test_released_generation_config_gets_chat_stop_ids(tmp_path):
    folder = tmp_path / "chat"
    shutil.copytree(released("tiny_real_vocab_original_layout"), folder)
    (folder / "generation_config.json").write_text(json.dumps({
        "chat_format": "chatml", "eos_token_id": 151643, "pad_token_id": 151643, "max_window_size": 6144,
        "max_new_tokens": 512, "do_sample": True, "top_k": 0, "top_p": 0.8, "repetition_penalty": 1.1,
    }))
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.generation_config.eos_token_id == [151643, 151645, 151644]
    assert model.generation_config.top_p == 0.8 and model.generation_config.repetition_penalty == 1.1
    assert model.generation_config.chat_format == "chatml"  # the pipeline tells chat from base checkpoints by it
    destination = convert(folder, tmp_path / "native")
    saved = json.loads((destination / "generation_config.json").read_text())
    assert saved["eos_token_id"] == [151643, 151645, 151644] and saved["top_p"] == 0.8


@pytest.mark.parametrize("dtype, expected", [("auto", torch.float32), ("bfloat16", torch.bfloat16)])
def test_released_config_accepts_loading_dtype(dtype, expected):
    assert AutoConfig.from_pretrained(released(), dtype=dtype).dtype == expected
