"""
The main job, from the repository alone: build a small multitask dataset, train a tiny Qwen-Audio from scratch with
`recipes/pretrain.py`, evaluate it on the held-out split, then use it through `pipeline("audio-chat")` and the CLI.

    python -m transformers_qwen_audio.demo [--output-dir DIR] [--seed N] [--retrain]     (also: qwen-audio demo)

1. Data: English utterances of 2-6 words from a 40-word vocabulary, synthesised word by word with eSpeak NG (the
   `espeakng-loader` wheel) with exact word times, and five synthetic sound classes (`transformers_qwen_audio.data`);
   built once (about a minute) and cached.
2. Training: `recipes/tiny/pretrain.yaml` (multitask: transcription, transcription with word timestamps, sound
   events, with the hierarchical task tags) on the CPU, with progress bars; `DIR/model` keeps the checkpoint (native
   layout, processor files, a model card with the metrics). A second run reuses a finished checkpoint (and resumes an
   unfinished one) unless `--retrain`.
3. Evaluation on the held-out split (`recipes/benchmarks/tiny_*.yaml`): WER, word-boundary error, sound accuracy.
4. Use: a held-out clip transcribed with word timestamps and a sound classified, through
   `pipeline("audio-chat")` and `qwen-audio transcribe`.

The module also holds `build_released_checkpoint`: a tiny Qwen-Audio-Chat in the *released* layout with seeded random
weights, used by the tests, benchmarks and recipe examples that need a checkpoint without a download.
"""

import argparse
import base64
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from .configuration_qwen_audio import QwenAudioConfig
from .modeling_qwen_audio import QwenAudioForConditionalGeneration
from .tokenization_qwen_audio import qwen_audio_special_tokens

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
TINY_RECIPE = REPOSITORY_ROOT / "recipes" / "tiny" / "pretrain.yaml"
PRETRAIN_SCRIPT = REPOSITORY_ROOT / "recipes" / "pretrain.py"
TINY_BENCHMARKS = ("tiny_asr", "tiny_srwt", "tiny_sounds")
DEFAULT_OUTPUT_DIR = Path("qwen-audio-demo")
# The targets on the held-out split.
TARGETS = {"tiny_asr/wer": ("<=", 0.10), "tiny_srwt/boundary_mae": ("<=", 0.10), "tiny_sounds/accuracy": (">=", 0.90)}


# --------------------------------------------------------------------------------------------------------------
# The main job
# --------------------------------------------------------------------------------------------------------------


def write_recipe(output_dir: Path, data_dir: Path, seed: int, overrides: dict | None = None) -> Path:
    """The tiny recipe with the dataset, output folder and seed of this run: `DIR/pretrain.yaml`."""
    if not TINY_RECIPE.is_file() or not PRETRAIN_SCRIPT.is_file():
        raise FileNotFoundError(
            f"The demo trains with the repository's recipes ({TINY_RECIPE}); run it from a source checkout "
            "(pip install -e .)."
        )
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
    """Runs `recipes/pretrain.py --config RECIPE` (progress bars on the terminal); returns the wall time in seconds."""
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
    subprocess.run([sys.executable, str(PRETRAIN_SCRIPT), "--config", str(recipe)], check=True, env=env)
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
    from .evaluation import BenchmarkSpec, resolve_benchmark

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
    from .data import ensure_tiny_multitask
    from .evaluation import evaluate_checkpoint, markdown_table

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


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m transformers_qwen_audio.demo")
    parser.description = "Train a tiny Qwen-Audio on synthetic data on the CPU, evaluate it, and use it."
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR,
                        help=f"keeps the data recipe, the checkpoint (DIR/model) and the results (default: {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--seed", type=int, default=42, help="training seed (the dataset is fixed: seed 0)")
    parser.add_argument("--retrain", action="store_true", help="train again even if DIR/model holds a finished checkpoint")
    parser.add_argument("--max-steps", type=int,
                        help="override the recipe's number of training steps (the encoder warm-up keeps its share)")
    parser.add_argument("--threads", type=int, help="CPU threads for training (default: torch's choice)")
    return parser


def add_parser(subcommands) -> argparse.ArgumentParser:
    """Registers `demo` on the `qwen-audio` command line."""
    parser = subcommands.add_parser("demo", help="train a tiny Qwen-Audio on synthetic data, evaluate it, use it")
    build_parser(parser)
    parser.set_defaults(run=run_from_args)
    return parser


def run_from_args(args) -> int:
    overrides = step_overrides(args.max_steps)
    started = time.perf_counter()
    report = run(args.output_dir, seed=args.seed, retrain=args.retrain, recipe_overrides=overrides, threads=args.threads)
    print(f"done in {time.perf_counter() - started:.0f} s; report: {Path(args.output_dir) / 'report.json'}")
    for key, verdict in report["targets"].items():
        print(f"   {key}: {verdict['value']} (target {verdict['target']}) {'reached' if verdict['reached'] else 'NOT reached'}")
    return 0


def main(argv=None) -> int:
    return run_from_args(build_parser().parse_args(argv))


# --------------------------------------------------------------------------------------------------------------
# An embedded tiny checkpoint in the released layout (random weights), for tests and examples without a download
# --------------------------------------------------------------------------------------------------------------

SAMPLING_RATE = 16000


def write_byte_level_tiktoken(path: Path, words=()) -> int:
    """
    A `qwen.tiktoken` with the 256 byte tokens and, for each of `words`, one token for the word and one for the word
    after a space (as a BPE trained on a corpus of those words would learn them; Qwen's own vocabulary has " five" as
    one token). tiktoken merges by rank, so every prefix of a word gets a rank before the word. Returns the number of
    ranks: the special tokens start at that id.
    """
    tokens = [bytes([value]) for value in range(256)]
    known = set(tokens)
    for word in words:
        if not isinstance(word, str) or not word.strip() or word != word.strip():
            raise ValueError(f"Vocabulary words must be non-empty strings without surrounding spaces, got {word!r}.")
        for form in (word.encode("utf-8"), b" " + word.encode("utf-8")):
            for end in range(2, len(form) + 1):
                if form[:end] not in known:
                    known.add(form[:end])
                    tokens.append(form[:end])
    lines = [f"{base64.b64encode(token).decode()} {rank}" for rank, token in enumerate(tokens)]
    path.write_text("\n".join(lines) + "\n")
    return len(tokens)


def build_released_checkpoint(folder: Path, seed: int = 0) -> Path:
    """A tiny Qwen-Audio-Chat in the released layout, weights seeded at random."""
    folder.mkdir(parents=True, exist_ok=True)
    num_ranks = write_byte_level_tiktoken(folder / "qwen.tiktoken")
    special = qwen_audio_special_tokens()
    audio_start_id = num_ranks + special.index("<audio>")
    vocab_size = num_ranks + len(special)
    released_config = {
        "architectures": ["QWenLMHeadModel"],
        "auto_map": {"AutoConfig": "configuration_qwen.QWenConfig",
                     "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"},
        "model_type": "qwen", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 256, "kv_channels": 16, "layer_norm_epsilon": 1e-6, "max_position_embeddings": 8192,
        "rotary_emb_base": 10000, "rotary_pct": 1.0, "seq_length": 2048, "use_dynamic_ntk": True,
        "use_logn_attn": True, "vocab_size": vocab_size, "no_bias": True, "tie_word_embeddings": False,
        "bf16": False, "fp16": False, "fp32": True,
        "audio": {"n_mels": 80, "n_ctx": 1500, "n_state": 64, "n_head": 4, "n_layer": 2, "output_dim": 64,
                  "avg_pool": True, "add_audio_bos_eos_token": True, "audio_start_id": audio_start_id},
    }
    torch.manual_seed(seed)
    model = QwenAudioForConditionalGeneration(QwenAudioConfig.from_released_config_dict(released_config))
    model.save_pretrained(folder, save_original_format=True)  # `transformer.*` keys, as released
    (folder / "config.json").write_text(json.dumps(released_config, indent=2))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "QWenTokenizer", "auto_map": {"AutoTokenizer": ["tokenization_qwen.QWenTokenizer", None]}}
    ))
    return folder


def chirp(seconds: float = 2.5) -> np.ndarray:
    time_axis = np.arange(int(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    return (0.3 * np.sin(2 * np.pi * (200 + 400 * time_axis) * time_axis)).astype(np.float32)


if __name__ == "__main__":
    raise SystemExit(main())
