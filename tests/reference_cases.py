"""Loading the original implementation's fixtures (../shared/qwen_audio_reference) for the model tests."""

import functools
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO_ROOT = Path(__file__).resolve().parents[1]


def reference_path() -> Path:
    return Path(os.environ.get("QWEN_AUDIO_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "qwen_audio_reference"))


def require_reference() -> Path:
    path = reference_path()
    if not (path / "manifest.json").is_file():
        pytest.skip(f"reference fixtures not found at {path} (set QWEN_AUDIO_REFERENCE_DIR)")
    return path


@functools.cache
def manifest() -> dict:
    return json.loads((require_reference() / "manifest.json").read_text())


@functools.cache
def model_outputs() -> dict:
    return load_file(require_reference() / "model_outputs.safetensors")


@functools.cache
def audio_features() -> dict:
    return load_file(require_reference() / "audio_features.safetensors")


def clip_inputs(audio_keys: list[str]) -> dict:
    """input_features / feature_attention_mask for clips of the reference, as the processor gives them."""
    if not audio_keys:
        return {}
    features = torch.stack([audio_features()[f"{key}.input_features"] for key in audio_keys])
    mask = torch.zeros(len(audio_keys), features.shape[-1], dtype=torch.long)
    for row, key in enumerate(audio_keys):
        mask[row, : manifest()["audio"][key]["samples_16k"] // 160] = 1
    return {"input_features": features, "feature_attention_mask": mask}


def checkpoint_for_case(case_name: str) -> Path:
    folder = {"tiny": "tiny_original_layout", "tiny_seq48": "tiny_original_layout_seq48"}[case_name.split(".")[0]]
    return require_reference() / folder


def model_case_inputs(case_name: str) -> tuple[torch.Tensor, dict]:
    """`input_ids` [1, length] of a model case and its clips' model inputs."""
    case = manifest()["model_cases"][case_name]
    return model_outputs()[f"{case_name}.input_ids"].long()[None], clip_inputs(case["audios"])


def chat_case_inputs(index: int) -> tuple[torch.Tensor, dict]:
    """The context tokens [1, length] the original fed the model for a chat case, and its clips' model inputs."""
    case = manifest()["chat_cases"][index]
    file_to_key = {entry["file"]: key for key, entry in manifest()["audio"].items()}
    return torch.tensor([case["context_tokens"]]), clip_inputs([file_to_key[url] for url in case["audio_urls"]])


def left_pad(sequences: list[torch.Tensor], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, sequence in enumerate(sequences):
        input_ids[row, length - len(sequence) :] = sequence
        attention_mask[row, length - len(sequence) :] = 1
    return input_ids, attention_mask


def run_model_case(model, case_name: str) -> dict:
    """The original's three figures for one model case: no-cache eval logits, cached greedy tokens, train loss."""
    case = manifest()["model_cases"][case_name]
    input_ids, audio = model_case_inputs(case_name)
    with torch.no_grad():
        logits = model.eval()(input_ids, **audio).logits[0]
        generated = model.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=case["new_tokens"],
            min_new_tokens=case["new_tokens"], do_sample=False, **audio,
        )[0, input_ids.shape[1] :]
    model.train()
    try:
        loss = model(input_ids, labels=input_ids, **audio).loss.item()
    finally:
        model.eval()
    return {
        "logits_error": (logits - model_outputs()[f"{case_name}.logits"]).abs().max().item(),
        "generated": generated.tolist(),
        "expected_generated": model_outputs()[f"{case_name}.generated"].tolist(),
        "loss": loss,
        "expected_loss": case["train_loss_labels_eq_input_ids"],
    }


def run_chat_case(model, index: int) -> dict:
    """Last-position logits and 10 greedy tokens of a chat case, from its stored context tokens."""
    case = manifest()["chat_cases"][index]
    input_ids, audio = chat_case_inputs(index)
    with torch.no_grad():
        last_logits = model(input_ids, **audio).logits[0, -1]
        generated = model.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=10, min_new_tokens=10,
            do_sample=False, **audio,
        )[0, input_ids.shape[1] :]
    return {
        "last_logits_error": (last_logits - model_outputs()[f"chat{index}.last_logits"]).abs().max().item(),
        "generated": generated.tolist(),
        "expected_generated": case["greedy_new_tokens"],
    }
