"""
The training collator's batch with features padded to the batch's longest clip (`feature_padding="longest"`, the
collator's default) against the 30 s window (`"max_length"`, the original's), in one run.

Usage: python benchmarks/training_collation.py [--batch-size 8] [--repeats 5] [--threads 1]

Batches of pre-training examples like the tiny recipe's (clips of 0.5-6 s, transcription prompts) are collated both
ways; the script asserts that both give the same tokens, labels and feature values on every frame of the shorter
padding, and prints the median collation time of both and their ratio. Target: >= 3x for clips of at most 6 s.
"""

import argparse
import statistics
import time

import numpy as np
import torch

from transformers_qwen_audio.training import QwenAudioCollator
from transformers_qwen_audio.training.model_setup import byte_level_processor


PROMPT = "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"


def examples(rng: np.random.Generator, batch_size: int) -> list[dict]:
    rows = []
    for _ in range(batch_size):
        num_samples = int(rng.uniform(0.5, 6.0) * 16000)
        envelope = np.abs(np.sin(np.linspace(0, rng.uniform(3, 12), num_samples)))  # syllable-like bursts
        clip = (0.2 * envelope * rng.standard_normal(num_samples)).astype(np.float32)
        rows.append({"audio": clip, "prompt": PROMPT, "completion": "one two three"})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the STFT); default 1, as on a busy machine")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    processor = byte_level_processor()
    collators = {mode: QwenAudioCollator(processor, feature_padding=mode) for mode in ("max_length", "longest")}
    rng = np.random.default_rng(0)
    batches = [examples(rng, args.batch_size) for _ in range(args.repeats)]
    times = {mode: [] for mode in collators}
    for batch in batches:
        outputs = {}
        for mode, collator in collators.items():
            start = time.perf_counter()
            outputs[mode] = collator(batch)
            times[mode].append(time.perf_counter() - start)
        full, short = outputs["max_length"], outputs["longest"]
        frames = short["input_features"].shape[-1]
        for key in ("input_ids", "labels", "attention_mask"):
            assert torch.equal(short[key], full[key]), key
        torch.testing.assert_close(short["input_features"], full["input_features"][..., :frames], rtol=0, atol=1e-6)

    full_time, short_time = statistics.median(times["max_length"]), statistics.median(times["longest"])
    print(f"{args.repeats} batches of {args.batch_size} clips of 0.5-6 s, {args.threads} thread(s), median")
    print(f"30 s window (max_length): {full_time * 1000:8.1f} ms")
    print(f"longest clip (longest):   {short_time * 1000:8.1f} ms")
    print(f"max_length / longest time ratio: {full_time / short_time:.2f}x")


if __name__ == "__main__":
    main()
