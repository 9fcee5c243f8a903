"""
The main job end to end, per seed: build the tiny dataset (cached), train the tiny recipe from scratch, evaluate on
the held-out split, fine-tune it into the tiny chat model and score that on the held-out dialogues. Prints the
metrics, the issues' targets and the wall time of each phase, per seed.

    python benchmarks/tiny_end_to_end.py [--seeds 1 2] [--output-dir tiny-e2e] [--threads 2] [--max-steps N]

Targets (held-out split, every seed): WER <= 10 %, sound accuracy >= 90 %, mean absolute word-boundary error
<= 0.1 s, with at most 15 minutes of training on 2 CPU cores; the chat model's per question type (`demo.TARGETS`),
both stages within 20 minutes. Training throughput is printed as steps/s, so that a
run on a shared machine can be compared with one on an idle machine.
"""

import argparse
import json
import time
from pathlib import Path

from transformers_qwen_audio import demo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--output-dir", type=Path, default=Path("tiny-e2e"))
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for training")
    parser.add_argument("--max-steps", type=int, default=None, help="override the recipe's training steps")
    parser.add_argument("--reuse", action="store_true", help="evaluate finished checkpoints instead of retraining")
    args = parser.parse_args(argv)

    overrides = demo.step_overrides(args.max_steps)
    rows = []
    for seed in args.seeds:
        started = time.perf_counter()
        report = demo.run(args.output_dir / f"seed-{seed}", seed=seed, retrain=not args.reuse,
                          recipe_overrides=overrides, threads=args.threads, cli=False)
        state = json.loads((Path(report["output_dir"]) / "model" / "trainer_state.json").read_text())
        steps = state["global_step"]
        train_seconds = report.get("train_seconds")
        rows.append({
            "seed": seed,
            "wer": report["metrics"]["tiny_asr"]["wer"],
            "srwt_wer": report["metrics"]["tiny_srwt"]["wer"],
            "boundary_mae_s": report["metrics"]["tiny_srwt"]["boundary_mae"],
            "sound_accuracy": report["metrics"]["tiny_sounds"]["accuracy"],
            "unseen_voices_wer": report["metrics"]["tiny_asr_unseen"]["wer"],
            "unseen_sounds_accuracy": report["metrics"]["tiny_sounds_unseen"]["accuracy"],
            "long_recordings_wer": report["metrics"]["tiny_long_asr"]["wer"],
            "targets_reached": all(verdict["reached"] for verdict in report["targets"].values()),
            "train_steps": steps,
            "train_seconds": train_seconds,
            "train_steps_per_second": round(steps / train_seconds, 3) if train_seconds else None,
            "eval_seconds": report["eval_seconds"],
            "total_seconds": round(time.perf_counter() - started, 1),
        })
        rows[-1]["chat_train_seconds"] = report["chat"].get("train_seconds")
        rows[-1]["chat"] = {f"{name}/{metric}": value for name, metrics in report["chat"]["metrics"].items()
                            for metric, value in metrics.items()}
        print(json.dumps(rows[-1]), flush=True)
    print("\n| seed | WER | SRWT WER | boundary MAE (s) | sound acc. | steps | train s | steps/s | eval s | targets |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['seed']} | {row['wer']:.3f} | {row['srwt_wer']:.3f} | {row['boundary_mae_s']:.3f} | "
              f"{row['sound_accuracy']:.3f} | {row['train_steps']} | {row['train_seconds']} | "
              f"{row['train_steps_per_second']} | {row['eval_seconds']} | {'yes' if row['targets_reached'] else 'no'} |")
    print("\n| seed | unseen voices WER | unseen sounds acc. | 10-30 s recordings WER |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['seed']} | {row['unseen_voices_wer']:.3f} | {row['unseen_sounds_accuracy']:.3f} | "
              f"{row['long_recordings_wer']:.3f} |")
    print("\n| seed | chat train s | " + " | ".join(demo.TARGETS_OF_CHAT) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in demo.TARGETS_OF_CHAT) + " |")
    for row in rows:
        values = [row["chat"].get(key) for key in demo.TARGETS_OF_CHAT]
        print(f"| {row['seed']} | {row['chat_train_seconds']} | "
              + " | ".join("–" if value is None else f"{value:.3f}" for value in values) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
