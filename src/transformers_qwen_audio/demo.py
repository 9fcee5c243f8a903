"""The main job on an embedded default: released checkpoint -> native checkpoint -> audio chat, with no network.

    python -m transformers_qwen_audio.demo [--workdir DIR] [--keep]

It builds a tiny Qwen-Audio-Chat in the *released* layout (`config.json` with `model_type: "qwen"` and an `audio`
block, `transformer.*` weights, a byte-level `qwen.tiktoken`; seeded random weights, so replies are gibberish),
loads it without remote code, converts it with `transformers_qwen_audio.convert`, checks that both give
bit-identical logits, then answers a chat turn about a synthesized 2.5 s chirp through the processor, the chat
template and `generate()`, batched with a text-only conversation. The same commands work on
`Qwen/Qwen-Audio-Chat` once downloaded.
"""

import argparse
import base64
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoProcessor

from .configuration_qwen_audio import QwenAudioConfig
from .convert import convert
from .modeling_qwen_audio import QwenAudioForConditionalGeneration
from .tokenization_qwen_audio import qwen_audio_special_tokens

SAMPLING_RATE = 16000


def write_byte_level_tiktoken(path: Path) -> int:
    """A `qwen.tiktoken` with the 256 byte tokens only (no merges): the special tokens then start at id 256."""
    lines = [f"{base64.b64encode(bytes([value])).decode()} {value}" for value in range(256)]
    path.write_text("\n".join(lines) + "\n")
    return 256


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


def run(workdir: Path) -> dict:
    released = build_released_checkpoint(workdir / "released")
    started = time.perf_counter()
    direct = AutoModelForCausalLM.from_pretrained(released).eval()
    native = convert(released, workdir / "native", overwrite=True)
    converted = AutoModelForCausalLM.from_pretrained(native).eval()
    processor = AutoProcessor.from_pretrained(native)

    conversations = [
        [{"role": "user", "content": [{"type": "audio", "audio": chirp()},
                                      {"type": "text", "text": "What is that sound?"}]}],
        [{"role": "user", "content": "Say hello."}],
    ]
    inputs = processor.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True,
                                           return_dict=True, return_tensors="pt")
    with torch.no_grad():
        same_logits = torch.equal(direct(**inputs).logits, converted(**inputs).logits)
        generated = converted.generate(**inputs, max_new_tokens=8, do_sample=False)
    replies = processor.batch_decode(generated[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    return {
        "released_checkpoint": str(released),
        "native_checkpoint": str(native),
        "native_files": sorted(p.name for p in native.iterdir()),
        "bit_identical_logits_released_vs_native": same_logits,
        "audio_tokens_in_prompt_1": int((inputs["input_ids"][0] == processor.audio_token_id).sum()),
        "prompt_tokens": inputs["input_ids"].shape[1],
        "replies (random weights)": replies,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="where to write the checkpoints (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="qwen-audio-demo-"))
    try:
        report = run(workdir)
        print(json.dumps(report, indent=1, ensure_ascii=False))
        if not report["bit_identical_logits_released_vs_native"]:
            print("error: converted logits differ from the released checkpoint's")
            return 1
        return 0
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
