"""Prefill time of transformers' Qwen2-Audio against ours, same dimensions, random weights, CPU or GPU.

Qwen2-Audio always encodes a 30 s window (3000 mel frames); Qwen-Audio's encoder (ours) runs only on the frames
that hold audio. The decoder and every dimension are the same in both models (an encoder-heavy tiny config, so the
encoder dominates as it does at 7B scale for short clips). Both get the same 80 x 3000 features and the same
feature mask, and a prompt of the clip's audio tokens plus 16 text tokens.

    python benchmarks/prefill_vs_qwen2_audio.py [--seconds 5 30] [--repeats 5] [--device cpu|cuda] [--dtype float32]

Prints one line per clip length with both median times and the ratio Qwen2-Audio / ours (higher is better for us).
Target: >= 6x at 5 s, >= 1x at 30 s.
"""

import argparse
import statistics
import time

import torch
from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

from transformers_qwen_audio import QwenAudioConfig, QwenAudioForConditionalGeneration
from transformers_qwen_audio.modeling_qwen_audio import audio_token_lengths

AUDIO = dict(d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536, num_mel_bins=80)
TEXT = dict(vocab_size=2048, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4)
AUDIO_START, AUDIO_PLACEHOLDER, QWEN2_AUDIO_TOKEN = 2000, 1999, 1998


def build_models(device, dtype):
    ours = QwenAudioForConditionalGeneration(
        QwenAudioConfig(audio_config=AUDIO, text_config=TEXT, audio_start_id=AUDIO_START,
                        audio_token_id=AUDIO_PLACEHOLDER)
    )
    theirs = Qwen2AudioForConditionalGeneration(
        Qwen2AudioConfig(audio_config={**AUDIO, "model_type": "qwen2_audio_encoder"},
                         text_config={**TEXT, "model_type": "qwen2"}, audio_token_index=QWEN2_AUDIO_TOKEN)
    )
    for model in (ours, theirs):
        model.to(device=device, dtype=dtype).eval()
        model.set_attn_implementation("sdpa")
    return ours, theirs


def inputs_for(seconds: float, device, dtype):
    mel_frames = int(seconds * 16000) // 160
    features = torch.randn(1, 80, 3000, device=device, dtype=dtype)
    mask = torch.zeros(1, 3000, dtype=torch.long, device=device)
    mask[0, :mel_frames] = 1
    tokens = int(audio_token_lengths(torch.tensor(mel_frames)))
    text = list(range(10, 26))
    ours_ids = torch.tensor([[AUDIO_START] + [AUDIO_PLACEHOLDER] * tokens + [AUDIO_START + 1] + text], device=device)
    theirs_ids = torch.tensor([[QWEN2_AUDIO_TOKEN] * tokens + text], device=device)
    return features, mask, ours_ids, theirs_ids


def median_seconds(run, repeats: int, device) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 30.0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args(argv)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.manual_seed(0)
    ours, theirs = build_models(device, dtype)
    print(f"device={device} dtype={args.dtype} threads={torch.get_num_threads()} audio={AUDIO} text={TEXT}")
    ratios = {}
    for seconds in args.seconds:
        features, mask, ours_ids, theirs_ids = inputs_for(seconds, device, dtype)
        with torch.inference_mode():
            ours_time = median_seconds(
                lambda: ours(ours_ids, input_features=features, feature_attention_mask=mask, use_cache=False),
                args.repeats, device)
            theirs_time = median_seconds(
                lambda: theirs(theirs_ids, input_features=features, feature_attention_mask=mask, use_cache=False),
                args.repeats, device)
        ratios[seconds] = theirs_time / ours_time
        print(f"clip {seconds:5.1f} s: qwen2-audio {theirs_time * 1e3:8.1f} ms  ours {ours_time * 1e3:8.1f} ms  "
              f"ratio {ratios[seconds]:5.2f}x")
    return ratios


if __name__ == "__main__":
    main()
