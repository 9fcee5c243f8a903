"""Generation throughput of ours against transformers' Qwen2-Audio, identical dimensions, random weights, one run.

    python benchmarks/generation_throughput.py                      # real dims (Whisper-large-v2 + Qwen-7B), GPU, bf16
    python benchmarks/generation_throughput.py --tiny               # small dims, CPU in minutes
    python benchmarks/generation_throughput.py --tiny --models ours --caches dynamic   # one model, one cache

For batch 1 and batch 8 (clips of 3-20 s), greedy, a fixed number of new tokens (no early stop), with the dynamic
cache and with `cache_implementation="static"` (transformers compiles the decoding step on a GPU; on CPU only with
`--compile`): decode tokens/s (batch / the median decoding step, timed per step through a streamer, so a loaded
machine's spikes do not count), total tokens/s (prefill included). Time to first token at batch 1 and batch 8 for
5 s and 30 s clips. Peak GPU memory of each generation (CUDA only). Each figure is the best of `--repeats` after one
warm-up run; ratios are
ours / Qwen2-Audio (higher is better for ours on throughput, lower on time and memory). The two models are built one
after the other, so one GPU holds one 8B model at a time.

Targets (issue 12, on an H100): static batch-8 decode at least Qwen2-Audio's; batch-1 5 s TTFT <= 25 ms; batch-8 5 s
TTFT at least 2x faster than Qwen2-Audio's. On CPU: eager decode no slower than before (compare two runs).
"""

import argparse
import gc
import json
import statistics
import time

import torch
from transformers import CompileConfig, Qwen2AudioConfig, Qwen2AudioForConditionalGeneration
from transformers.generation.streamers import BaseStreamer

from transformers_qwen_audio import QwenAudioConfig, QwenAudioForConditionalGeneration
from transformers_qwen_audio.modeling_qwen_audio import audio_token_lengths

REAL_AUDIO = dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120, num_mel_bins=80)
REAL_TEXT = dict(vocab_size=155947, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32)
TINY_AUDIO = dict(d_model=128, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=512, num_mel_bins=80)
TINY_TEXT = dict(vocab_size=4096, hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=4)
PAD = 0
BATCH_SECONDS = {1: [10.0], 8: [3.0 + 17.0 * i / 7 for i in range(8)]}  # 3 to 20 s


class Bench:
    """One model family: how to build it and how to write a prompt with its audio placeholders."""

    def __init__(self, name, audio, text):
        self.name, self.audio, self.text = name, audio, text
        vocab = text["vocab_size"]
        self.audio_start, self.placeholder = vocab - 3, vocab - 4  # ours: <audio> and </audio> = vocab - 2

    def build(self, device, dtype):
        if self.name == "ours":
            config = QwenAudioConfig(audio_config=self.audio, text_config=self.text, audio_start_id=self.audio_start,
                                     audio_token_id=self.placeholder)
            model_class = QwenAudioForConditionalGeneration
        else:
            config = Qwen2AudioConfig(audio_config={**self.audio, "model_type": "qwen2_audio_encoder"},
                                      text_config={**self.text, "model_type": "qwen2"},
                                      audio_token_index=self.placeholder)
            model_class = Qwen2AudioForConditionalGeneration
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                model = model_class(config)
        finally:
            torch.set_default_dtype(previous)
        model.eval().set_attn_implementation("sdpa")
        model.generation_config.eos_token_id = None  # fixed-length generations
        model.generation_config.pad_token_id = PAD
        return model

    def prompt_ids(self, tokens: int) -> list[int]:
        text = list(range(10, 26))
        if self.name == "ours":
            return [self.audio_start] + [self.placeholder] * tokens + [self.audio_start + 1] + text
        return [self.placeholder] * tokens + text

    def inputs(self, seconds: list[float], device, dtype):
        mel_frames = [int(s * 16000) // 160 for s in seconds]
        features = torch.randn(len(seconds), 80, 3000, device=device, dtype=dtype)
        mask = torch.zeros(len(seconds), 3000, dtype=torch.long, device=device)
        rows = []
        for row, frames in enumerate(mel_frames):
            mask[row, :frames] = 1
            rows.append(self.prompt_ids(int(audio_token_lengths(torch.tensor(frames)))))
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), PAD, dtype=torch.long, device=device)
        attention = torch.zeros_like(ids)
        for row, tokens in enumerate(rows):  # left padding, as the processors pad for generation
            ids[row, width - len(tokens):] = torch.tensor(tokens, device=device)
            attention[row, width - len(tokens):] = 1
        return dict(input_ids=ids, attention_mask=attention, input_features=features, feature_attention_mask=mask)


class StepTimer(BaseStreamer):
    """`generate` calls `put` with the prompt, then once per generated step: the gaps are the step times."""

    def __init__(self, device):
        self.device, self.times = device, []

    def put(self, value):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())

    def end(self):
        pass


def timed_generation(model, inputs, kwargs, new_tokens, device, repeats):
    """Time to first token and the median decoding step (robust to a loaded machine), best of `repeats` after a
    warm-up, and the peak GPU memory (GiB) of one generation."""
    best_first, best_step, peak = float("inf"), float("inf"), float("nan")
    for attempt in range(repeats + 1):
        timer = StepTimer(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, streamer=timer, **kwargs)
        if attempt == 0:
            continue  # warm-up (and compilation)
        steps = [later - earlier for earlier, later in zip(timer.times[1:], timer.times[2:])]
        best_first = min(best_first, timer.times[1] - timer.times[0])
        if steps:
            best_step = min(best_step, statistics.median(steps))
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated() / 2**30
    return best_first, best_step, peak


def measure(bench: Bench, args, device, dtype) -> dict:
    torch.manual_seed(0)
    model = bench.build(device, dtype)
    results = {}
    for cache in args.caches:
        kwargs = dict(do_sample=False)
        if cache == "static":
            kwargs["cache_implementation"] = "static"
            if args.compile or device.type == "cuda":
                compile_config = CompileConfig(fullgraph=True)
                compile_config._compile_all_devices = args.compile
                kwargs["compile_config"] = compile_config
        for batch in args.batches:
            inputs = bench.inputs(BATCH_SECONDS[batch], device, dtype)
            first, step, peak = timed_generation(model, inputs, kwargs, args.new_tokens, device, args.repeats)
            results[f"{cache} batch {batch}"] = dict(
                decode_tokens_per_s=batch / step,
                total_tokens_per_s=batch * args.new_tokens / (first + step * (args.new_tokens - 1)),
                peak_gib=peak,
            )
    for seconds in args.ttft_seconds:
        for batch in args.batches:
            inputs = bench.inputs([seconds] * batch, device, dtype)
            first, _, peak = timed_generation(model, inputs, dict(do_sample=False), 1, device, args.repeats)
            results[f"ttft {seconds:.0f} s batch {batch}"] = dict(ms=first * 1e3, peak_gib=peak)
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="small dimensions (CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                        help="default: bfloat16 on a GPU, float32 on CPU")
    parser.add_argument("--models", nargs="+", default=["ours", "qwen2-audio"], choices=["ours", "qwen2-audio"])
    parser.add_argument("--caches", nargs="+", default=["dynamic", "static"], choices=["dynamic", "static"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], choices=[1, 8])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--ttft-seconds", type=float, nargs="*", default=[5.0, 30.0],
                        help="clip lengths for the time to first token (none: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="compile the static-cache decoding step on CPU too")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    audio, text = (TINY_AUDIO, TINY_TEXT) if args.tiny else (REAL_AUDIO, REAL_TEXT)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device={name} dtype={dtype} new_tokens={args.new_tokens} repeats={args.repeats} audio={audio} text={text}")

    figures = {bench_name: measure(Bench(bench_name, audio, text), args, device, dtype) for bench_name in args.models}
    for key in figures[args.models[0]]:
        line = f"{key:22s}"
        for bench_name in args.models:
            values = figures[bench_name][key]
            shown = {k: v for k, v in values.items() if v == v}  # drop NaN (no GPU memory figure on CPU)
            line += f" | {bench_name}: " + " ".join(f"{k}={v:.1f}" if k != "peak_gib" else f"{k}={v:.2f}"
                                                     for k, v in shown.items())
        if len(args.models) == 2:
            ours, theirs = figures["ours"][key], figures["qwen2-audio"][key]
            first = next(iter(ours))
            line += f" | ratio ours/qwen2-audio {first}: {ours[first] / theirs[first]:.2f}x"
        print(line)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=1)
    return figures


if __name__ == "__main__":
    main()
