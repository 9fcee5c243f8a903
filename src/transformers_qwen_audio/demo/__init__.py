"""
The main job, from the installed package alone: build a small multitask dataset, train a tiny Qwen-Audio from scratch
with the pre-training recipe, evaluate it on the held-out split, then use it through `pipeline("audio-chat")` and the
CLI.

    python -m transformers_qwen_audio.demo [--output-dir DIR] [--seed N] [--retrain]     (also: qwen-audio demo)

1. Data: English utterances of 2-6 words from a 40-word vocabulary, synthesised word by word with eSpeak NG (the
   `espeakng-loader` wheel) with exact word times, and five synthetic sound classes (`transformers_qwen_audio.data`);
   built once (about a minute) and cached.
2. Training: the packaged `tiny/pretrain.yaml` recipe (multitask: transcription, transcription with word timestamps,
   sound events, with the hierarchical task tags) on the CPU, with progress bars; `DIR/model` keeps the checkpoint (native
   layout, processor files, a model card with the metrics). A second run reuses a finished checkpoint (and resumes an
   unfinished one) unless `--retrain`.
3. Evaluation on the held-out split (the packaged `benchmarks/tiny_*.yaml`): WER, word-boundary error, sound accuracy.
4. Use: a held-out clip transcribed with word timestamps and a sound classified, through
   `pipeline("audio-chat")` and `qwen-audio transcribe`.
"""

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ..recipes import recipe_path


TINY_RECIPE = recipe_path("tiny/pretrain.yaml")
PRETRAIN_MODULE = "transformers_qwen_audio.recipes.pretrain"
TINY_BENCHMARKS = ("tiny_asr", "tiny_srwt", "tiny_sounds")
DEFAULT_OUTPUT_DIR = Path("qwen-audio-demo")
# The targets on the held-out split.
TARGETS = {"tiny_asr/wer": ("<=", 0.10), "tiny_srwt/boundary_mae": ("<=", 0.10), "tiny_sounds/accuracy": (">=", 0.90)}


# --------------------------------------------------------------------------------------------------------------
# The main job
# --------------------------------------------------------------------------------------------------------------


def write_recipe(output_dir: Path, data_dir: Path, seed: int, overrides: dict | None = None) -> Path:
    """The tiny recipe with the dataset, output folder and seed of this run: `DIR/pretrain.yaml`."""
    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    recipe.pop("build_local_data", None)  # the demo builds (or reuses) the data itself
    for source in recipe["datasets"]:
        source["path"] = str(data_dir)
    recipe.update({"output_dir": str(output_dir / "model"), "seed": seed, "do_eval": False, **(overrides or {})})
    path = output_dir / "pretrain.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def step_overrides(max_steps: int | None) -> dict | None:
    """`--max-steps N`: the recipe's schedule shortened or stretched to N steps, the encoder warm-up keeping its
    share of them (a short run still trains the decoder)."""
    if not max_steps:
        return None
    if max_steps < 1:
        raise ValueError(f"--max-steps must be positive, got {max_steps}.")
    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    warmup_share = recipe.get("encoder_ctc_warmup_steps", 0) / recipe["max_steps"]
    overrides = {"max_steps": max_steps, "encoder_ctc_warmup_steps": int(round(max_steps * warmup_share))}
    if not overrides["encoder_ctc_warmup_steps"]:
        overrides["joint_learning_rate"] = None  # no warm-up left to restart the schedule after
    return overrides


def train(recipe: Path, threads: int | None = None) -> float:
    """Runs the pre-training recipe with `--config RECIPE` (progress bars on the terminal); returns the wall time in
    seconds."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    # How OpenMP threads wait between the recipe's many small operations decides its speed on 2 cores (joint steps of
    # recipes/tiny/pretrain.yaml, batch 4, 2 threads): on an idle machine a short spin (GOMP_SPINCOUNT=20000) runs
    # 13.4 steps/s against 8.0 sleeping at once (OMP_WAIT_POLICY=PASSIVE); beside another busy process spinning
    # collapses to 3.2 where passive keeps 7.4. So spin only when the other processes leave the cores idle. A user's
    # own setting wins.
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        busy = busy_cpu_share()
        if busy is not None and busy < 0.25:
            env["GOMP_SPINCOUNT"] = "20000"
        else:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", PRETRAIN_MODULE, "--config", str(recipe)], check=True, env=env)
    return time.perf_counter() - started


def busy_cpu_share(seconds: float = 0.5) -> float | None:
    """Share of the CPUs' time that was not idle over `seconds` (Linux `/proc/stat`), None where it cannot be read.
    Unlike the load average, it does not remember the dataset build that just ran."""

    def totals():
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    try:
        total_before, idle_before = totals()
        time.sleep(seconds)
        total_after, idle_after = totals()
    except (OSError, ValueError, IndexError):
        return None
    elapsed = total_after - total_before
    return None if elapsed <= 0 else 1.0 - (idle_after - idle_before) / elapsed


def is_finished(model_dir: Path) -> bool:
    """`train_results.json` is written after the final save: its presence means the checkpoint is complete."""
    return (model_dir / "train_results.json").is_file() and (model_dir / "config.json").is_file()


def training_losses(model_dir: Path, after_step: int = 0) -> list[float]:
    """The logged training losses of the run (from the final `trainer_state.json`), of the steps after `after_step`
    (past the encoder warm-up, whose logged loss is the CTC loss, not the language model's)."""
    state = model_dir / "trainer_state.json"
    if not state.is_file():
        return []
    history = json.loads(state.read_text())["log_history"]
    return [entry["loss"] for entry in history if "loss" in entry and entry.get("step", 0) > after_step]


def tiny_benchmarks(data_dir: Path, max_samples: int | None = None) -> list:
    from ..evaluation import BenchmarkSpec, resolve_benchmark

    specs = []
    for name in TINY_BENCHMARKS:
        spec = BenchmarkSpec.from_yaml(resolve_benchmark(name))
        spec.dataset, spec.build_local_data, spec.max_samples = str(data_dir), None, max_samples
        specs.append(spec)
    return specs


def check_targets(results: list[dict]) -> dict:
    values = {f"{r['benchmark']}/{metric}": value for r in results for metric, value in r["metrics"].items()}
    verdict = {}
    for key, (direction, target) in TARGETS.items():
        value = values.get(key)
        reached = value is not None and not math.isnan(value) and (value <= target if direction == "<=" else value >= target)
        verdict[key] = {"value": value, "target": f"{direction} {target}", "reached": bool(reached)}
    return verdict


def use_model(model_dir: Path, speech_clip: Path, sound_clip: Path, cli: bool = True) -> dict:
    """Transcribes a clip with word timestamps and classifies a sound through the pipeline, then the CLI."""
    from transformers import pipeline

    pipe = pipeline("audio-chat", model=str(model_dir))
    transcript = pipe(str(speech_clip), task="transcribe", language="en", return_timestamps="word")
    event = pipe(str(sound_clip), task="event")
    used = {"pipeline_transcript": transcript, "pipeline_event": event["text"]}
    if cli:
        command = [sys.executable, "-m", "transformers_qwen_audio.cli", "transcribe", str(model_dir), str(speech_clip),
                   "--language", "en", "--output", "srt", "--greedy"]
        used["cli_command"] = "qwen-audio " + " ".join(command[3:])
        used["cli_output"] = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return used


def run(
    output_dir: Path = DEFAULT_OUTPUT_DIR,
    seed: int = 42,
    retrain: bool = False,
    data_config=None,
    recipe_overrides: dict | None = None,
    max_eval_samples: int | None = None,
    eval_batch_size: int = 8,
    threads: int | None = None,
    cli: bool = True,
) -> dict:
    """The whole job; returns a report (also written to `DIR/report.json`)."""
    from ..data import ensure_tiny_multitask
    from ..evaluation import evaluate_checkpoint, markdown_table

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_dir = output_dir / "model"
    report = {"output_dir": str(output_dir), "seed": seed}

    print("== 1/4 data: the tiny multitask dataset (built once, then cached)", flush=True)
    started = time.perf_counter()
    data_dir = ensure_tiny_multitask(config=data_config)
    report.update(data_dir=str(data_dir), data_seconds=round(time.perf_counter() - started, 1))
    print(f"   {data_dir}", flush=True)

    print("== 2/4 training a tiny Qwen-Audio from scratch (recipes/tiny/pretrain.yaml)", flush=True)
    if retrain and model_dir.exists():
        shutil.rmtree(model_dir)
    if is_finished(model_dir):
        print(f"   reusing the finished checkpoint in {model_dir} (--retrain to train again)", flush=True)
        report["training"] = "reused"
    else:
        recipe = write_recipe(output_dir, data_dir, seed, recipe_overrides)
        report["train_seconds"] = round(train(recipe, threads), 1)
        report["training"] = "trained"
    trained_recipe = output_dir / "pretrain.yaml"
    warmup = yaml.safe_load(trained_recipe.read_text()).get("encoder_ctc_warmup_steps", 0) if trained_recipe.is_file() else 0
    losses = training_losses(model_dir, after_step=warmup)
    # The language-model loss after the encoder warm-up: first and last logged values.
    report["loss_first_last"] = [losses[0], losses[-1]] if losses else None

    print("== 3/4 evaluation on the held-out split", flush=True)
    started = time.perf_counter()
    results = evaluate_checkpoint(
        str(model_dir), tiny_benchmarks(data_dir, max_eval_samples), output_dir=str(output_dir / "eval"),
        batch_size=eval_batch_size, update_model_card=True,
    )
    report["eval_seconds"] = round(time.perf_counter() - started, 1)
    report["metrics"] = {result["benchmark"]: result["metrics"] for result in results}
    report["targets"] = check_targets(results)
    print(markdown_table(results), flush=True)

    print("== 4/4 using it: pipeline('audio-chat') and qwen-audio transcribe", flush=True)
    speech = json.loads((data_dir / "speech" / "test.jsonl").read_text().splitlines()[0])
    sound = json.loads((data_dir / "sounds" / "test.jsonl").read_text().splitlines()[0])
    used = use_model(model_dir, data_dir / speech["audio"], data_dir / sound["audio"], cli=cli)
    report["example"] = {"speech_reference": speech["words"], "sound_reference": sound["label"], **used}
    print(f"   held-out clip: {speech['text']!r}", flush=True)
    print(f"   transcribed:   {used['pipeline_transcript']['text']!r}", flush=True)
    for chunk in used["pipeline_transcript"].get("chunks", []):
        print(f"     {chunk['timestamp']}  {chunk['text']}", flush=True)
    print(f"   sound {sound['label']!r} -> task='event': {used['pipeline_event']!r}", flush=True)
    if cli:
        print(f"   $ {used['cli_command']}\n{used['cli_output']}", flush=True)
    (output_dir / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    return report
