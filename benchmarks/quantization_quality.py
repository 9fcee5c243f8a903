"""Quality loss and memory of quantized loading, measured on the original implementation's reference cases.

    python benchmarks/quantization_quality.py                       # every scheme that runs here, CPU, 32 new tokens
    python benchmarks/quantization_quality.py --device cuda --schemes bf16 bnb-int8 bnb-nf4
    python benchmarks/quantization_quality.py --dtype bfloat16      # quantized models with bf16 for what stays float

Loads each reference checkpoint (`../shared/qwen_audio_reference`: `tiny_original_layout`, `..._seq48`,
`tiny_real_vocab_original_layout`, all in the released layout) in float32 and with each scheme, runs every model
case and chat case and prints, per scheme, a markdown table: max abs and relative logits error against the float32
model of the same run (relative = max |error| / max |float32 logit|), max abs error against the original's stored
logits (full logits for model cases, the last position for chat cases), and greedy agreement with float32 over
`--new-tokens` new tokens (the common prefix, and the share of equal positions). Then each checkpoint's memory
(`model.get_memory_footprint()`, and the bytes the decoder layers really store, quantization scales included, as a
ratio to float32) and which Linear layers stayed unquantized.

Schemes: `bf16` (the whole model in bfloat16: the scale against which quantization error is read), torchao
int8 weight-only and int8 dynamic activation + int8 weight (`TorchAoConfig`), bitsandbytes LLM.int8() and 4-bit NF4
(`BitsAndBytesConfig`). A scheme whose library is not installed is skipped with the reason; a scheme that fails to
load or run is reported as failed (exit status 1). The reference models are tiny with random weights: the figures
say how the quantized code path behaves on this model (kept modules, error scale, greedy stability), not the quality
of a quantized 7B model.
"""

import argparse
import importlib.util
import os
import platform
import sys
import traceback
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, TorchAoConfig

import transformers_qwen_audio  # noqa: F401  (registers the model and the released layout's conversion)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_cases import (  # noqa: E402
    chat_case_inputs,
    checkpoint_for_case,
    manifest,
    model_case_inputs,
    model_outputs,
    require_reference,
)

SCHEMES = ("bf16", "torchao-int8-weight-only", "torchao-int8-dynamic", "bnb-int8", "bnb-nf4")


def scheme_requirement(scheme: str) -> str | None:
    """Why a scheme cannot run here (None when its library is importable)."""
    library = {"torchao": "torchao", "bnb": "bitsandbytes"}.get(scheme.split("-")[0])
    if library and importlib.util.find_spec(library) is None:
        return f"`{library}` is not installed (pip install {library})"
    return None


def quantization_config(scheme: str, dtype: torch.dtype):
    if scheme.startswith("torchao"):
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig

        config = Int8WeightOnlyConfig() if scheme == "torchao-int8-weight-only" else Int8DynamicActivationInt8WeightConfig()
        return TorchAoConfig(config)
    if scheme == "bnb-int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    if scheme == "bnb-nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
    return None


def load(path: Path, scheme: str, dtype: torch.dtype, device: str):
    kwargs = {"dtype": torch.bfloat16 if scheme == "bf16" else dtype, "device_map": {"": device}}
    config = quantization_config(scheme, dtype)
    if config is not None:
        kwargs["quantization_config"] = config
    return AutoModelForCausalLM.from_pretrained(path, **kwargs).eval()


def cases() -> list[tuple[str, Path, torch.Tensor, dict, torch.Tensor, bool]]:
    """(name, checkpoint, input_ids, clip inputs, the original's logits, whether those are the last row only)."""
    found = []
    for name in manifest()["model_cases"]:
        input_ids, audio = model_case_inputs(name)
        found.append((name, checkpoint_for_case(name), input_ids, audio, model_outputs()[f"{name}.logits"], False))
    real_vocab = require_reference() / "tiny_real_vocab_original_layout"
    for index in range(len(manifest()["chat_cases"])):
        input_ids, audio = chat_case_inputs(index)
        found.append((f"chat{index}", real_vocab, input_ids, audio, model_outputs()[f"chat{index}.last_logits"], True))
    return found


def run_case(model, input_ids, audio, new_tokens: int, device: str) -> tuple[torch.Tensor, list[int], float]:
    """No-cache logits of the prompt, `new_tokens` greedy tokens, and the smallest top-1/top-2 gap along them."""
    input_ids = input_ids.to(device)
    audio = {key: value.to(device) for key, value in audio.items()}
    with torch.no_grad():
        logits = model(input_ids, **audio).logits[0].float().cpu()
        output = model.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=new_tokens,
            min_new_tokens=new_tokens, do_sample=False, output_scores=True, return_dict_in_generate=True, **audio,
        )
    top2 = torch.stack(output.scores)[:, 0].float().topk(2, dim=-1).values
    return logits, output.sequences[0, input_ids.shape[1]:].tolist(), (top2[:, 0] - top2[:, 1]).min().item()


def stored_bytes(tensor: torch.Tensor) -> int:
    """Bytes a tensor really holds: the inner tensors of a tensor subclass (torchao: int8 data and scales), and the
    side tensors bitsandbytes keeps next to its packed weights (LLM.int8() row scales, the 4-bit quant state)."""
    if hasattr(tensor, "__tensor_flatten__"):
        names, _ = tensor.__tensor_flatten__()
        total = sum(stored_bytes(getattr(tensor, name)) for name in names)
    else:
        total = tensor.nelement() * tensor.element_size()
    extras = [getattr(tensor, "SCB", None)]
    quant_state = getattr(tensor, "quant_state", None)
    if quant_state is not None:
        extras += [quant_state.absmax, getattr(quant_state.state2, "absmax", None) if quant_state.nested else None]
    return total + sum(extra.nelement() * extra.element_size() for extra in extras if isinstance(extra, torch.Tensor))


def decoder_layer_bytes(model) -> int:
    layers = model.model.language_model.layers
    return sum(stored_bytes(tensor) for tensor in [*layers.parameters(), *layers.buffers()])


def is_quantized(linear: torch.nn.Module) -> bool:
    weight = linear.weight
    return type(linear) is not torch.nn.Linear or type(weight) not in (torch.Tensor, torch.nn.Parameter) or (
        weight.dtype not in (torch.float32, torch.float16, torch.bfloat16)
    )


def linear_layers_by_kind(model) -> tuple[dict[str, int], dict[str, int]]:
    """Linear layers (quantized, left float) counted by their top module path (`model.audio_tower`, `lm_head`)."""
    quantized, kept = {}, {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            top = ".".join(name.split(".")[:2]) if name.startswith("model.") else name.split(".")[0]
            side = quantized if is_quantized(module) else kept
            side[top] = side.get(top, 0) + 1
    return quantized, kept


def skipped_modules(model) -> list[str] | None:
    config = getattr(model.config, "quantization_config", None)
    if config is None:
        return None
    as_dict = config if isinstance(config, dict) else config.to_dict()
    return as_dict.get("llm_int8_skip_modules") or as_dict.get("modules_to_not_convert")


def greedy_agreement(got: list[int], expected: list[int]) -> tuple[int, float]:
    """The common prefix (tokens before the first difference) and the share of equal positions."""
    prefix = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    equal = sum(a == b for a, b in zip(got, expected)) / max(len(expected), 1)
    return prefix, equal


def describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{top} {count}" for top, count in sorted(counts.items())) or "none"


def known_limitation(model, scheme: str, device: str) -> str | None:
    """A limitation of the quantization library itself for this checkpoint, found before running it."""
    if scheme == "bnb-nf4" and device == "cpu":
        # bitsandbytes' CPU 4-bit path (inference, no grad) repacks each weight in blocks of `blocksize` input
        # features and fails on layers narrower than a block; real checkpoints are thousands wide
        blocks = [(module.in_features, module.weight.quant_state.blocksize) for module in model.modules()
                  if getattr(getattr(module, "weight", None), "quant_state", None) is not None]
        narrow = sorted({(width, block) for width, block in blocks if width % block})
        if narrow:
            widths = ", ".join(str(width) for width, _ in narrow)
            return (f"bitsandbytes' CPU 4-bit kernel needs in_features divisible by its block size "
                    f"{narrow[0][1]}; this checkpoint has quantized layers {widths} wide")
    return None


class Report:
    """The markdown tables of one scheme, filled checkpoint by checkpoint."""

    def __init__(self):
        self.cases, self.memory, self.modules, self.problems = [], [], [], []
        self.worst_relative, self.prefixes, self.top1, self.layer_ratios = 0.0, [], [], []


def measure_scheme(scheme, checkpoints, all_cases, baseline, args, dtype) -> tuple[Report, bool]:
    report, failed = Report(), False
    for checkpoint in checkpoints:
        try:
            model = load(checkpoint, scheme, dtype, args.device)
            reason = known_limitation(model, scheme, args.device)
            if reason:
                report.problems.append(f"{checkpoint.name}: skipped, {reason}")
                continue
            for name, path, input_ids, audio, expected, last_row_only in all_cases:
                if path != checkpoint:
                    continue
                logits, tokens, _ = run_case(model, input_ids, audio, args.new_tokens, args.device)
                base_logits, base_tokens, base_margin = baseline["cases"][name]
                error = (logits - base_logits).abs().max().item()
                relative = error / base_logits.abs().max().item()
                vs_original = ((logits[-1] if last_row_only else logits) - expected).abs().max().item()
                prefix, equal = greedy_agreement(tokens, base_tokens)
                top1 = (logits.argmax(-1) == base_logits.argmax(-1)).float().mean().item()
                report.worst_relative = max(report.worst_relative, relative)
                report.prefixes.append(prefix)
                report.top1.append(top1)
                report.cases.append(f"| {name} | {error:.2e} | {relative:.2e} | {vs_original:.2e} | {top1:.1%} |"
                                    f" {base_margin:.3f} | {prefix}/{args.new_tokens} | {equal:.0%} |")
            footprint, layers = model.get_memory_footprint(), decoder_layer_bytes(model)
            base_footprint, base_layers = baseline["memory"][checkpoint]
            report.layer_ratios.append(f"{checkpoint.name} {layers / base_layers:.2f}x")
            report.memory.append(f"| {checkpoint.name} | {footprint / 2**20:.2f} MiB ({footprint / base_footprint:.2f}x)"
                                 f" | {layers / 2**10:.0f} KiB ({layers / base_layers:.2f}x) |")
            quantized, kept = linear_layers_by_kind(model)
            report.modules.append(f"| {checkpoint.name} | {skipped_modules(model)} | {describe_counts(quantized)} |"
                                  f" {describe_counts(kept)} |")
        except Exception as error:  # reported, not hidden: the table says what failed, the traceback where
            traceback.print_exc()
            first_line = str(error).splitlines()[0] if str(error) else ""
            report.problems.append(f"{checkpoint.name}: FAILED, {type(error).__name__}: {first_line}")
            failed = True
        finally:
            model = None
    return report, failed


def print_report(report: Report) -> None:
    if report.cases:
        print("| case | max abs error vs float32 | relative | max abs error vs original | top-1 = float32's |"
              " float32 greedy margin | greedy common prefix | greedy equal positions |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(report.cases) + "\n")
        print("| checkpoint | get_memory_footprint() (vs float32) | decoder layers stored (vs float32) |")
        print("| --- | --- | --- |")
        print("\n".join(report.memory) + "\n")
        print("| checkpoint | skipped modules (config) | quantized Linear layers | float Linear layers |")
        print("| --- | --- | --- | --- |")
        print("\n".join(report.modules) + "\n")
    for problem in report.problems:
        print(f"- {problem}")
    if report.problems:
        print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", help="reference folder (default ../shared/qwen_audio_reference)")
    parser.add_argument("--schemes", nargs="+", choices=SCHEMES, default=list(SCHEMES))
    parser.add_argument("--new-tokens", type=int, default=32, help="greedy tokens compared per case")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="dtype of what stays float in the quantized models (the baseline is always float32)")
    args = parser.parse_args(argv)
    if args.reference:
        os.environ["QWEN_AUDIO_REFERENCE_DIR"] = args.reference
    if args.new_tokens < 1:
        parser.error("--new-tokens must be at least 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here")
    dtype = getattr(torch, args.dtype)
    all_cases = cases()
    checkpoints = list(dict.fromkeys(case[1] for case in all_cases))
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else platform.machine()
    print(f"# Quantization quality on the reference cases\n\ndevice {args.device} ({device_name}), torch "
          f"{torch.__version__}, {args.new_tokens} greedy tokens, quantized models' float parts in {args.dtype}\n")

    baseline = {"cases": {}, "memory": {}}
    for checkpoint in checkpoints:
        model = load(checkpoint, "fp32", torch.float32, args.device)
        baseline["memory"][checkpoint] = (model.get_memory_footprint(), decoder_layer_bytes(model))
        for name, path, input_ids, audio, _, _ in all_cases:
            if path == checkpoint:
                baseline["cases"][name] = run_case(model, input_ids, audio, args.new_tokens, args.device)
        model = None
    print("## float32 (the baseline) against the original implementation\n")
    print("| case | max abs error vs original | greedy tokens equal to the original's |")
    print("| --- | --- | --- |")
    for name, _, _, _, expected, last_row_only in all_cases:
        logits, tokens, _ = baseline["cases"][name]
        original = (manifest()["chat_cases"][int(name[4:])]["greedy_new_tokens"] if name.startswith("chat")
                    else model_outputs()[f"{name}.generated"].tolist())
        compared = min(len(original), len(tokens))
        error = ((logits[-1] if last_row_only else logits) - expected).abs().max().item()
        print(f"| {name} | {error:.2e} | {tokens[:compared] == original[:compared]} ({compared} tokens) |")
    print()

    failed, summary, worst = [], [], {}
    for scheme in args.schemes:
        print(f"## {scheme}\n")
        reason = scheme_requirement(scheme)
        if reason:
            print(f"skipped: {reason}\n")
            summary.append([scheme, f"skipped: {reason}", "", "", "", ""])
            continue
        report, scheme_failed = measure_scheme(scheme, checkpoints, all_cases, baseline, args, dtype)
        print_report(report)
        if scheme_failed:
            failed.append(scheme)
        if report.prefixes:
            worst[scheme] = report.worst_relative
            summary.append([scheme, f"{report.worst_relative:.2e}", f"{min(report.top1):.1%}",
                            f"{min(report.prefixes)}/{args.new_tokens}",
                            f"{sum(report.prefixes) / len(report.prefixes):.1f}/{args.new_tokens}",
                            ", ".join(report.layer_ratios)])
        for problem in report.problems:
            summary.append([scheme, problem, "", "", "", ""])

    print("## Summary\n")
    print("| scheme | worst relative logits error vs float32 | the same / bf16's | worst top-1 = float32's |"
          " worst greedy common prefix | mean greedy common prefix | decoder layers stored vs float32 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for scheme, error, *rest in summary:
        ratio = f"{worst[scheme] / worst['bf16']:.2f}x" if error[0].isdigit() and "bf16" in worst else ""
        print("| " + " | ".join([scheme, error, ratio, *rest]) + " |")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
