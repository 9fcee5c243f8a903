"""One training step (forward + backward) of ours against transformers' Qwen2-Audio at the same dimensions.

A batch of `--batch-size` clips of `--seconds` each (default 8 x 5 s) with 32 text tokens a row, of which the last 16
are labelled; random weights, every parameter trainable. Qwen2-Audio's encoder always runs on the 30 s window
(3000 mel frames); ours runs on the frames that hold audio, so the step costs less for short clips (the reason the
pre-training recipe groups batches by clip length). Each model is measured in its own process, so that peak memory
is its own: CUDA `max_memory_allocated`, or the process's peak resident set on CPU.

    python benchmarks/train_step.py                                   # CPU, encoder-heavy tiny config
    python benchmarks/train_step.py --device cuda --dtype bfloat16 --config full   # real 7B dimensions

Prints the median step time of both, the ratio Qwen2-Audio / ours (higher is better for us) and peak memory.
Target on CPU at 5 s: >= 3x.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch


CONFIGS = {
    # Encoder-heavy and small: the encoder dominates the step, as it does at full scale for short clips.
    "tiny": (
        dict(d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536, num_mel_bins=80),
        dict(vocab_size=2048, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=4),
    ),
    # Qwen-Audio: Whisper-large-v2 encoder + Qwen-7B decoder.
    "full": (
        dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120, num_mel_bins=80),
        dict(vocab_size=155947, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
             num_attention_heads=32, num_key_value_heads=32),
    ),
}
TEXT_TOKENS, LABELLED_TOKENS = 32, 16


def build(which: str, config_name: str, device, dtype):
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    from transformers_qwen_audio import QwenAudioConfig, QwenAudioForConditionalGeneration

    audio, text = CONFIGS[config_name]
    vocab = text["vocab_size"]
    # Special ids at the top of the vocabulary, text ids below them.
    audio_start, placeholder, qwen2_audio_token = vocab - 10, vocab - 11, vocab - 12
    with torch.device(device):
        if which == "ours":
            model = QwenAudioForConditionalGeneration(QwenAudioConfig(
                audio_config=audio, text_config=text, audio_start_id=audio_start, audio_token_id=placeholder))
        else:
            model = Qwen2AudioForConditionalGeneration(Qwen2AudioConfig(
                audio_config={**audio, "model_type": "qwen2_audio_encoder"},
                text_config={**text, "model_type": "qwen2"}, audio_token_index=qwen2_audio_token))
    model.to(dtype=dtype).train()
    model.set_attn_implementation("sdpa")
    model.config.use_cache = False
    return model, (audio_start, placeholder, qwen2_audio_token)


def batch_for(which: str, ids, batch_size: int, seconds: float, device, dtype):
    from transformers_qwen_audio.modeling_qwen_audio import audio_token_lengths

    audio_start, placeholder, qwen2_audio_token = ids
    mel_frames = int(seconds * 16000) // 160
    features = torch.randn(batch_size, 80, 3000, device=device, dtype=dtype)
    mask = torch.zeros(batch_size, 3000, dtype=torch.long, device=device)
    mask[:, :mel_frames] = 1
    tokens = int(audio_token_lengths(torch.tensor(mel_frames)))
    text = list(range(10, 10 + TEXT_TOKENS))
    if which == "ours":
        row = [audio_start] + [placeholder] * tokens + [audio_start + 1] + text
    else:
        row = [qwen2_audio_token] * tokens + text
    input_ids = torch.tensor([row] * batch_size, device=device)
    labels = torch.full_like(input_ids, -100)
    labels[:, -LABELLED_TOKENS:] = input_ids[:, -LABELLED_TOKENS:]
    return dict(input_ids=input_ids, input_features=features, feature_attention_mask=mask, labels=labels)


def measure(args) -> dict:
    """One model, in this process: median seconds of a forward + backward step, and peak memory."""
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.manual_seed(0)
    model, ids = build(args.only, args.config, device, dtype)
    batch = batch_for(args.only, ids, args.batch_size, args.seconds, device, dtype)

    def step():
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak_gib = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return {"seconds": statistics.median(times), "peak_gib": peak_gib}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--only", choices=["ours", "qwen2_audio"], help=argparse.SUPPRESS)  # one model (child run)
    args = parser.parse_args(argv)
    if args.only:
        print(json.dumps(measure(args)))
        return None

    results = {}
    for which in ("qwen2_audio", "ours"):
        command = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--only", which]
        completed = subprocess.run(command, capture_output=True, text=True, check=True)
        results[which] = json.loads(completed.stdout.strip().splitlines()[-1])
    ratio = results["qwen2_audio"]["seconds"] / results["ours"]["seconds"]
    memory = "peak GPU memory" if args.device.startswith("cuda") else "peak process RSS"
    print(f"device={args.device} dtype={args.dtype} threads={torch.get_num_threads()} config={args.config} "
          f"batch={args.batch_size} x {args.seconds:g} s")
    print(f"train step (fwd+bwd): qwen2-audio {results['qwen2_audio']['seconds'] * 1e3:9.1f} ms  "
          f"ours {results['ours']['seconds'] * 1e3:9.1f} ms  ratio {ratio:5.2f}x")
    print(f"{memory}: qwen2-audio {results['qwen2_audio']['peak_gib']:.2f} GiB  ours {results['ours']['peak_gib']:.2f} GiB")
    return {"ratio": ratio, **results}


if __name__ == "__main__":
    main()
