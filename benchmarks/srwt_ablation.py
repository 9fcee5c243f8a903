"""
The paper's SRWT claim at small scale: Qwen-Audio credits speech recognition with word-level timestamps (SRWT) in
pre-training with better grounding and question answering after instruction tuning. This trains the main job's
stage 1 twice, with and without its SRWT source (the `timestamps: true` entry of `recipes/tiny/pretrain.yaml`), the
same steps and seed, then the same stage 2 on each, and prints
the chat model's held-out scores side by side: grounding (start and end within 0.15 s), its boundary error, WER and
the other question types, with the stage-1 WER.

    python benchmarks/srwt_ablation.py [--seed 42] [--output-dir srwt-ablation] [--with-srwt-from qwen-audio-demo]

`--with-srwt-from DIR` reuses a finished main job (`python -m transformers_qwen_audio.demo`, same seed and recipe)
as the "with SRWT" arm instead of training it again. `--max-steps N` shortens stage 1 in both arms (a smoke run).
"""

import argparse
import json
from pathlib import Path

import yaml

from transformers_qwen_audio import demo


CHAT_COLUMNS = (
    ("tiny_chat_grounding", "within_tolerance", "grounding within 0.15 s"),
    ("tiny_chat_grounding", "boundary_mae", "grounding MAE (s)"),
    ("tiny_chat_transcription", "wer", "chat WER"),
    ("tiny_chat_word_position", "accuracy", "word position"),
    ("tiny_chat_word_count", "accuracy", "word count"),
    ("tiny_chat_follow_up", "accuracy", "follow-up"),
)


def without_srwt(overrides: dict | None) -> dict:
    """Recipe overrides that drop every SRWT source of the tiny recipe (the rest keep their weights)."""
    recipe = yaml.safe_load(demo.TINY_RECIPE.read_text())
    sources = [source for source in recipe["datasets"] if not source.get("timestamps")]
    if len(sources) == len(recipe["datasets"]):
        raise ValueError(f"{demo.TINY_RECIPE} has no SRWT source (`timestamps: true`) to leave out.")
    return {**(overrides or {}), "datasets": sources}


def row(name: str, report: dict) -> dict:
    chat = report["chat"]["metrics"]
    values = {"arm": name, "stage-1 WER": report["metrics"]["tiny_asr"]["wer"]}
    for benchmark, metric, label in CHAT_COLUMNS:
        values[label] = chat.get(benchmark, {}).get(metric)
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", type=Path, default=Path("srwt-ablation"))
    parser.add_argument("--with-srwt-from", type=Path, default=None,
                        help="a finished main-job folder to use as the arm with SRWT")
    parser.add_argument("--max-steps", type=int, default=None, help="override stage 1's steps in both arms")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    steps = demo.step_overrides(args.max_steps)
    with_dir = args.with_srwt_from or args.output_dir / "with-srwt"
    if args.with_srwt_from is not None and not demo.is_finished(with_dir / "chat"):
        parser.error(f"{with_dir} holds no finished main job (no {with_dir / 'chat'} with train_results.json).")
    reports = {
        "with SRWT": demo.run(with_dir, seed=args.seed, recipe_overrides=steps, threads=args.threads, cli=False),
        "without SRWT": demo.run(args.output_dir / "without-srwt", seed=args.seed, recipe_overrides=without_srwt(steps),
                                 threads=args.threads, cli=False),
    }
    rows = [row(name, report) for name, report in reports.items()]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "srwt_ablation.json").write_text(json.dumps(rows, indent=1) + "\n")
    labels = list(rows[0])
    print("\n| " + " | ".join(labels) + " |")
    print("| " + " | ".join("---" for _ in labels) + " |")
    for values in rows:
        print("| " + " | ".join(value if isinstance(value, str) else "–" if value is None else f"{value:.3f}"
                                for value in values.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
