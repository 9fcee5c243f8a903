"""Parity report against the original implementation's fixtures: one line per reference case.

    python benchmarks/reference_parity.py [--reference ../shared/qwen_audio_reference]

For every model case: max abs logit error (no cache, eval), greedy tokens equal (cache on), train-mode loss
relative error; the same cases left-padded into one batch; every chat case of the real-vocabulary checkpoint (last
position logits, greedy tokens). The tests assert the same with tolerances; this prints the measured figures.
"""

import argparse
import os
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

import transformers_qwen_audio  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_cases import (  # noqa: E402
    checkpoint_for_case,
    clip_inputs,
    left_pad,
    manifest,
    model_outputs,
    run_chat_case,
    run_model_case,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", help="reference folder (default ../shared/qwen_audio_reference)")
    args = parser.parse_args(argv)
    if args.reference:
        os.environ["QWEN_AUDIO_REFERENCE_DIR"] = args.reference
    models = {}

    def load(path):
        if path not in models:
            models[path] = AutoModelForCausalLM.from_pretrained(path).eval()
        return models[path]

    print("case                 max|dlogits|  greedy  loss rel.err")
    by_checkpoint = {}
    for name in manifest()["model_cases"]:
        figures = run_model_case(load(checkpoint_for_case(name)), name)
        same = figures["generated"] == figures["expected_generated"]
        relative = abs(figures["loss"] / figures["expected_loss"] - 1)
        print(f"{name:20s} {figures['logits_error']:12.2e}  {str(same):6s}  {relative:.1e}")
        by_checkpoint.setdefault(checkpoint_for_case(name), []).append(name)

    for checkpoint, names in by_checkpoint.items():
        model = load(checkpoint)
        sequences = [model_outputs()[f"{name}.input_ids"].long() for name in names]
        input_ids, attention_mask = left_pad(sequences)
        audio = clip_inputs([key for name in names for key in manifest()["model_cases"][name]["audios"]])
        with torch.no_grad():
            logits = model(input_ids, attention_mask=attention_mask, **audio).logits
            generated = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=12,
                                       min_new_tokens=12, do_sample=False, **audio)[:, input_ids.shape[1]:]
        for row, name in enumerate(names):
            error = (logits[row, -len(sequences[row]):] - model_outputs()[f"{name}.logits"]).abs().max().item()
            same = generated[row].tolist() == model_outputs()[f"{name}.generated"].tolist()
            print(f"batch[{len(names)}] {name:12s} {error:9.2e}  {same}")

    model = load(checkpoint_for_case("tiny.one_audio").parent / "tiny_real_vocab_original_layout")
    for index in range(len(manifest()["chat_cases"])):
        figures = run_chat_case(model, index)
        same = figures["generated"] == figures["expected_generated"]
        print(f"chat{index} last logits  {figures['last_logits_error']:9.2e}  greedy {same}")

if __name__ == "__main__":
    main()
