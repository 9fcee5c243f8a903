"""Processor + model together, from the audio files a user has, against the original's chat replies."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from processor_fixtures import chat_case_messages


@pytest.fixture(scope="module")
def chat_model(released_dir):
    return AutoModelForCausalLM.from_pretrained(released_dir).eval()


@pytest.mark.parametrize("case_index", [0, 1, 2])
def test_chat_case_from_files_reproduces_original_greedy_reply(processor, chat_model, manifest, reference_dir,
                                                              case_index):
    """FLAC at 16 kHz and a 24 kHz WAV (resampled by soxr, not ffmpeg): the same context and the same 10 tokens."""
    case = manifest["chat_cases"][case_index]
    messages = chat_case_messages(case, lambda name: str(reference_dir / "audio" / name))
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    assert inputs["input_ids"][0].tolist() == case["context_tokens"]
    with torch.no_grad():
        generated = chat_model.generate(**inputs, max_new_tokens=10, min_new_tokens=10, do_sample=False)
    assert generated[0, inputs["input_ids"].shape[1] :].tolist() == case["greedy_new_tokens"]
