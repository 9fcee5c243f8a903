"""Session-scoped objects shared by the processor tests (building the tokenizer takes a few seconds)."""

import json

import pytest
from safetensors.numpy import load_file


RELEASED_FOLDER = "tiny_real_vocab_original_layout"


@pytest.fixture(scope="session")
def manifest(reference_dir):
    return json.loads((reference_dir / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def audio_features(reference_dir):
    return load_file(reference_dir / "audio_features.safetensors")


@pytest.fixture(scope="session")
def released_dir(reference_dir):
    return reference_dir / RELEASED_FOLDER


@pytest.fixture(scope="session")
def processor(released_dir):
    from transformers_qwen_audio import QwenAudioProcessor

    return QwenAudioProcessor.from_pretrained(released_dir)


@pytest.fixture(scope="session")
def tokenizer(processor):
    return processor.tokenizer


@pytest.fixture(scope="session")
def file_to_key(manifest):
    return {info["file"]: key for key, info in manifest["audio"].items()}


def chat_case_messages(case, audio_value):
    """Builds HF chat messages from a manifest chat case; `audio_value(file_name)` gives each audio part's value."""

    def content(query):
        return [
            {"type": "audio", "audio": audio_value(element["audio"])}
            if "audio" in element
            else {"type": "text", "text": element["text"]}
            for element in query
        ]

    messages = []
    for query, answer in case["history"] or []:
        messages.append({"role": "user", "content": content(query)})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": content(case["query"])})
    return messages


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory):
    """A tiny Qwen-Audio-Chat checkpoint in the released layout, built offline (no reference fixtures needed)."""
    from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint

    return build_released_checkpoint(tmp_path_factory.mktemp("tiny-qwen-audio-chat"))


@pytest.fixture(scope="session")
def tiny_processor(tiny_checkpoint_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_checkpoint_dir)


def decoded_runs(tokenizer, input_ids, mask) -> list[str]:
    """The decoded runs of consecutive positions where `mask` is true (assistant masks, trained labels)."""
    runs, current = [], []
    for token_id, keep in zip(list(input_ids), list(mask)):
        if keep:
            current.append(int(token_id))
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    return runs
