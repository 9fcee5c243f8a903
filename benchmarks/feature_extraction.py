"""
Batched vs one-by-one log-mel extraction with QwenAudioProcessor's feature extractor.

Usage: python benchmarks/feature_extraction.py [--clips 16] [--repeats 3]
Prints the time of both and their ratio, measured in the same run on synthetic clips of mixed length (1-30 s).
"""

import argparse
import time

import numpy as np

from transformers_qwen_audio.feature_extraction_qwen_audio import MAX_AUDIO_SAMPLES, default_feature_extractor


def extract(feature_extractor, clips):
    return feature_extractor(
        clips,
        sampling_rate=16000,
        padding="max_length",
        max_length=MAX_AUDIO_SAMPLES,
        truncation=True,
        return_attention_mask=False,
        return_tensors="np",
    )["input_features"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    lengths = rng.integers(16000, MAX_AUDIO_SAMPLES + 1, size=args.clips)
    clips = [(0.1 * rng.standard_normal(length)).astype(np.float32) for length in lengths]
    feature_extractor = default_feature_extractor()
    extract(feature_extractor, clips[:2])  # warm-up

    batched_times, single_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        batched = extract(feature_extractor, clips)
        batched_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        single = np.concatenate([extract(feature_extractor, [clip]) for clip in clips])
        single_times.append(time.perf_counter() - start)
    np.testing.assert_allclose(batched, single, atol=1e-5)

    batched_time, single_time = min(batched_times), min(single_times)
    print(f"{args.clips} clips of {lengths.min() / 16000:.1f}-{lengths.max() / 16000:.1f} s, best of {args.repeats}")
    print(f"batched:    {batched_time * 1000:8.1f} ms")
    print(f"one by one: {single_time * 1000:8.1f} ms")
    print(f"one-by-one / batched time ratio: {single_time / batched_time:.2f}x")


if __name__ == "__main__":
    main()
