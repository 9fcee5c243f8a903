"""A pre-training step with the logits of the labelled positions only (what `QwenAudioPretrainer` computes) against
the full logits of every position (transformers' default causal-LM loss), measured in the same run.

In pre-training only the target and `<|endoftext|>` are learned; the audio span and the task tags are most of each
row, so the full loss projects and log-softmaxes mostly positions it then ignores. Batches like the tiny recipe's:
`--batch-size` clips of `--seconds` each, the transcription task tags, `--target-tokens` learned tokens a row.

    python benchmarks/pretraining_logits.py                               # the tiny recipe's model, CPU
    python benchmarks/pretraining_logits.py --vocab-size 155947           # the released vocabulary
    python benchmarks/pretraining_logits.py --device cuda --dtype bfloat16 --vocab-size 155947

Prints the median forward + backward time of both, the ratio full / labelled (higher is better), the largest
difference of the loss and of the gradients, and on CUDA the peak memory of each.
"""

import argparse
import statistics
import time

import torch
import yaml

from transformers_qwen_audio.modeling_qwen_audio import audio_token_lengths
from transformers_qwen_audio.recipes import recipe_path
from transformers_qwen_audio.training import QwenAudioPretrainer, QwenAudioPretrainingConfig
from transformers_qwen_audio.training.label_positions import keep_logits_at_labels
from transformers_qwen_audio.training.model_setup import byte_level_processor, model_from_config


TINY_RECIPE = recipe_path("tiny/pretrain.yaml")
PROMPT = "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"


def build_batch(processor, batch_size: int, seconds: float, target_tokens: int, device) -> dict:
    tokenizer = processor.tokenizer
    mel_frames = int(seconds * 16000) // 160
    span = [processor.audio_start_token_id] + [processor.audio_token_id] * int(audio_token_lengths(torch.tensor(mel_frames)))
    span += [tokenizer.convert_tokens_to_ids("</audio>")]
    prompt = tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    generator = torch.Generator().manual_seed(0)
    rows, labels = [], []
    for _ in range(batch_size):
        target = torch.randint(ord("a"), ord("z") + 1, (target_tokens - 1,), generator=generator).tolist()
        target.append(tokenizer.eos_token_id)
        rows.append(span + prompt + target)
        labels.append([-100] * (len(span) + len(prompt)) + target)
    features = torch.randn(batch_size, 80, mel_frames, generator=generator)
    return {
        "input_ids": torch.tensor(rows, device=device),
        "attention_mask": torch.ones(len(rows), len(rows[0]), dtype=torch.long, device=device),
        "labels": torch.tensor(labels, device=device),
        "input_features": features.to(device),
        "feature_attention_mask": torch.ones(batch_size, mel_frames, dtype=torch.long, device=device),
    }


def timed_step(model, batch, loss_of, device, repeats: int):
    times, peak = [], None
    for index in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        loss_of(batch).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() / 2**30
        if index >= 2:  # two warm-up steps
            times.append(time.perf_counter() - started)
        model.zero_grad(set_to_none=True)
    return statistics.median(times), peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="clip length (the tiny dataset's are 1-5 s)")
    parser.add_argument("--target-tokens", type=int, default=24, help="learned tokens a row")
    parser.add_argument("--vocab-size", type=int, default=None, help="default: the byte-level tokenizer's")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    processor = byte_level_processor()
    model_config = yaml.safe_load(TINY_RECIPE.read_text())["model_config"]
    if args.vocab_size:
        model_config = {**model_config, "text_config": {**model_config["text_config"], "vocab_size": args.vocab_size}}
    torch.manual_seed(0)
    model = model_from_config(model_config, processor).to(device=device, dtype=dtype).train()
    batch = build_batch(processor, args.batch_size, args.seconds, args.target_tokens, device)
    batch["input_features"] = batch["input_features"].to(dtype)
    trainer = QwenAudioPretrainer(model=model, args=QwenAudioPretrainingConfig(
        output_dir="/tmp/pretraining-logits-benchmark", report_to="none", use_cpu=device.type == "cpu"))

    def full(inputs):
        return model(**inputs).loss

    def labelled(inputs):
        return trainer.compute_loss(model, dict(inputs))

    # Same loss and gradients first: the speed-up must not change what is learned.
    results = {}
    for name, loss_of in (("full", full), ("labelled", labelled)):
        loss = loss_of(batch)
        loss.backward()
        results[name] = (loss.detach().float(), [p.grad.float().clone() for p in model.parameters() if p.grad is not None])
        model.zero_grad(set_to_none=True)
    loss_difference = abs(float(results["full"][0] - results["labelled"][0]))
    gradient_difference = max(float((a - b).abs().max()) for a, b in zip(results["full"][1], results["labelled"][1]))

    kept = keep_logits_at_labels(batch)["logits_to_keep"]
    full_time, full_peak = timed_step(model, batch, full, device, args.repeats)
    labelled_time, labelled_peak = timed_step(model, batch, labelled, device, args.repeats)
    vocab = model.config.text_config.vocab_size
    print(f"batch {args.batch_size} x {batch['input_ids'].shape[1]} positions, {int(kept.sum())} labelled "
          f"({float(kept.float().mean()):.1%}), vocabulary {vocab}, {args.device} {args.dtype}, "
          f"{torch.get_num_threads()} threads")
    print(f"loss difference {loss_difference:.2e}, largest gradient difference {gradient_difference:.2e}")
    print("| logits | forward + backward (ms) | peak GPU memory (GiB) |")
    print("| --- | --- | --- |")
    for name, seconds, peak in (("every position", full_time, full_peak), ("labelled positions", labelled_time, labelled_peak)):
        print(f"| {name} | {seconds * 1000:.1f} | {'-' if peak is None else f'{peak:.2f}'} |")
    print(f"speed-up (full / labelled): {full_time / labelled_time:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
