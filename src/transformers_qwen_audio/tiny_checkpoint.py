# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Seeded tiny checkpoints, for the tests, the benchmarks, `qwen-audio serve --tiny` / `web --tiny` and the recipe
examples that need a checkpoint without a download.

- `build_released_checkpoint`: a tiny Qwen-Audio-Chat in the *released* layout (`qwen` config, `transformer.*` keys,
  `qwen.tiktoken`) with seeded random weights.
- `write_byte_level_tiktoken`: a `qwen.tiktoken` of the 256 byte tokens plus whole words (the tiny recipes' vocabulary).
- `chirp`: a rising test tone at 16 kHz.
"""

import base64
import json
from pathlib import Path

import numpy as np
import torch

from .configuration_qwen_audio import QwenAudioConfig
from .modeling_qwen_audio import QwenAudioForConditionalGeneration
from .tokenization_qwen_audio import qwen_audio_special_tokens


SAMPLING_RATE = 16000


def write_byte_level_tiktoken(path: Path, words=()) -> int:
    """
    A `qwen.tiktoken` with the 256 byte tokens and, for each of `words`, one token for the word and one for the word
    after a space (as a BPE trained on a corpus of those words would learn them; Qwen's own vocabulary has " five" as
    one token). tiktoken merges by rank, so every prefix of a word gets a rank before the word. Returns the number of
    ranks: the special tokens start at that id.
    """
    tokens = [bytes([value]) for value in range(256)]
    known = set(tokens)
    for word in words:
        if not isinstance(word, str) or not word.strip() or word != word.strip():
            raise ValueError(f"Vocabulary words must be non-empty strings without surrounding spaces, got {word!r}.")
        for form in (word.encode("utf-8"), b" " + word.encode("utf-8")):
            for end in range(2, len(form) + 1):
                if form[:end] not in known:
                    known.add(form[:end])
                    tokens.append(form[:end])
    lines = [f"{base64.b64encode(token).decode()} {rank}" for rank, token in enumerate(tokens)]
    path.write_text("\n".join(lines) + "\n")
    return len(tokens)


def build_released_checkpoint(folder: Path, seed: int = 0) -> Path:
    """A tiny Qwen-Audio-Chat in the released layout, weights seeded at random."""
    folder.mkdir(parents=True, exist_ok=True)
    num_ranks = write_byte_level_tiktoken(folder / "qwen.tiktoken")
    special = qwen_audio_special_tokens()
    audio_start_id = num_ranks + special.index("<audio>")
    vocab_size = num_ranks + len(special)
    released_config = {
        "architectures": ["QWenLMHeadModel"],
        "auto_map": {"AutoConfig": "configuration_qwen.QWenConfig",
                     "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"},
        "model_type": "qwen", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 256, "kv_channels": 16, "layer_norm_epsilon": 1e-6, "max_position_embeddings": 8192,
        "rotary_emb_base": 10000, "rotary_pct": 1.0, "seq_length": 2048, "use_dynamic_ntk": True,
        "use_logn_attn": True, "vocab_size": vocab_size, "no_bias": True, "tie_word_embeddings": False,
        "bf16": False, "fp16": False, "fp32": True,
        "audio": {"n_mels": 80, "n_ctx": 1500, "n_state": 64, "n_head": 4, "n_layer": 2, "output_dim": 64,
                  "avg_pool": True, "add_audio_bos_eos_token": True, "audio_start_id": audio_start_id},
    }
    torch.manual_seed(seed)
    model = QwenAudioForConditionalGeneration(QwenAudioConfig.from_released_config_dict(released_config))
    model.save_pretrained(folder, save_original_format=True)  # `transformer.*` keys, as released
    (folder / "config.json").write_text(json.dumps(released_config, indent=2))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "QWenTokenizer", "auto_map": {"AutoTokenizer": ["tokenization_qwen.QWenTokenizer", None]}}
    ))
    return folder


def chirp(seconds: float = 2.5) -> np.ndarray:
    time_axis = np.arange(int(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    return (0.3 * np.sin(2 * np.pi * (200 + 400 * time_axis) * time_axis)).astype(np.float32)
