"""
The main job, from the installed package alone: build a small multitask dataset, train a tiny Qwen-Audio from scratch
with the pre-training recipe (stage 1), evaluate it on the held-out split, fine-tune it into a tiny Qwen-Audio-Chat
on generated instruction dialogues (stage 2), score that on held-out dialogues, then use both through
`pipeline("audio-chat")` and the CLI.

    python -m transformers_qwen_audio.demo [--output-dir DIR] [--seed N] [--retrain]     (also: qwen-audio demo)

1. Data: English utterances of 2-6 words from a 40-word vocabulary, synthesised word by word with eSpeak NG (the
   `espeakng-loader` wheel) with exact word times, and five synthetic sound classes (`transformers_qwen_audio.data`);
   built once (about a minute) and cached.
2. Training: the packaged `tiny/pretrain.yaml` recipe (multitask: transcription, transcription with word timestamps,
   sound events, with the hierarchical task tags) on the CPU, with progress bars; `DIR/model` keeps the checkpoint (native
   layout, processor files, a model card with the metrics). A second run reuses a finished checkpoint (and resumes an
   unfinished one) unless `--retrain`.
3. Evaluation on the held-out split (the packaged `benchmarks/tiny_*.yaml`): WER, word-boundary error, sound accuracy.
4. Stage 2: dialogues generated, seeded, from each split of the dataset (`transformers_qwen_audio.data.tiny_chat`,
   in `DIR/chat-data`), and the packaged `tiny/sft.yaml` recipe (TRL's `SFTTrainer`, assistant replies only)
   fine-tuning `DIR/model` into `DIR/chat` (reused or resumed as stage 1 is).
5. Evaluation of `DIR/chat` on the held-out dialogues, per question type (`evaluation.dialogues`), into its card.
6. Use: a held-out clip transcribed with word timestamps and a sound classified by `DIR/model`, through
   `pipeline("audio-chat")` and `qwen-audio transcribe`; a conversation of three turns and two clips with `DIR/chat`.
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
TINY_SFT_RECIPE = recipe_path("tiny/sft.yaml")
PRETRAIN_MODULE = "transformers_qwen_audio.recipes.pretrain"
SFT_MODULE = "transformers_qwen_audio.recipes.sft"
TINY_BENCHMARKS = ("tiny_asr", "tiny_srwt", "tiny_sounds", "tiny_asr_unseen", "tiny_sounds_unseen", "tiny_long_asr")
DEFAULT_OUTPUT_DIR = Path("qwen-audio-demo")
# Where `qwen-audio chat`, `serve --tiny` and `web --tiny` look for the chat model the main job trains.
DEFAULT_CHAT_MODEL = DEFAULT_OUTPUT_DIR / "chat"
# The issues' targets on the held-out split: stage 1's benchmarks, then the chat model's dialogues per question type.
TARGETS = {
    "tiny_asr/wer": ("<=", 0.10), "tiny_srwt/boundary_mae": ("<=", 0.10), "tiny_sounds/accuracy": (">=", 0.90),
    "tiny_asr_unseen/wer": ("<=", 0.12), "tiny_sounds_unseen/accuracy": (">=", 0.95),
    "tiny_chat_transcription/wer": ("<=", 0.10), "tiny_chat_sound_kind/accuracy": (">=", 0.95),
    "tiny_chat_word_position/accuracy": (">=", 0.90), "tiny_chat_word_count/accuracy": (">=", 0.90),
    "tiny_chat_grounding/within_tolerance": (">=", 0.85), "tiny_chat_two_clips/accuracy": (">=", 0.90),
    "tiny_chat_follow_up/accuracy": (">=", 0.90), "tiny_chat_pure_text/accuracy": (">=", 0.90),
}
TARGETS_OF_CHAT = [key for key in TARGETS if key.startswith("tiny_chat_")]
# Long-form windows of the tiny models (`declare_long_form_window`): `benchmarks/long_form.py --split validation
# --window-seconds W` on the stage-1 model, vad: WER 0.055 at 3 s, 0.18 at 4 s, 0.32 at 5 s, 0.97 at 30 s (0.070 one
# utterance at a time; 0.044 at 3 s once 0.8 s pauses end windows).
LONG_FORM_WINDOW_SECONDS = 3.0
# Targets relative to another benchmark of the same run: the 10-30 s recordings in one window against the utterances
# they are made of, alone.
RELATIVE_TARGETS = {"tiny_long_asr/wer": ("tiny_asr/wer", 1.25)}


# --------------------------------------------------------------------------------------------------------------
# The main job
# --------------------------------------------------------------------------------------------------------------


def write_recipe(output_dir: Path, data_dir: Path, seed: int, overrides: dict | None = None) -> Path:
    """The tiny recipe with the dataset, output folder and seed of this run: `DIR/pretrain.yaml`."""
    recipe = {**yaml.safe_load(TINY_RECIPE.read_text()), **(overrides or {})}
    recipe.pop("build_local_data", None)  # the demo builds (or reuses) the data itself
    recipe["datasets"] = [{**source, "path": str(data_dir)} for source in recipe["datasets"]]
    recipe.update({"output_dir": str(output_dir / "model"), "seed": seed, "do_eval": False})
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


def write_sft_recipe(output_dir: Path, chat_data_dir: Path, audio_base_dir: Path, seed: int,
                     overrides: dict | None = None) -> Path:
    """The tiny SFT recipe from `DIR/model` into `DIR/chat` on the generated dialogues: `DIR/sft.yaml`."""
    recipe = yaml.safe_load(TINY_SFT_RECIPE.read_text())
    recipe.update({
        "model_name_or_path": str(output_dir / "model"), "output_dir": str(output_dir / "chat"),
        # The train file, not the folder: `load_dataset(FOLDER)` with the card's relative `data_files` reused the
        # cached rows of another folder of the same name (a 64-dialogue test build trained in place of 8,000).
        "dataset_name": str(chat_data_dir / "train.jsonl"), "audio_base_dir": str(audio_base_dir), "seed": seed,
        **(overrides or {}),
    })
    path = output_dir / "sft.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def mark_as_chat_model(chat_dir: Path) -> None:
    """Stage 1 declares a base model (`chat_format: raw`, so the pipeline sends it raw prompts and task tags), and
    fine-tuning copies that into the processor too; the fine-tuned model answers conversations in ChatML, so both
    must say `chatml` (the pipeline reads the processor's first)."""
    from transformers import AutoProcessor, GenerationConfig

    generation_config = GenerationConfig.from_pretrained(chat_dir)
    generation_config.chat_format = "chatml"
    generation_config.save_pretrained(chat_dir)
    processor = AutoProcessor.from_pretrained(chat_dir)
    processor.chat_format = "chatml"
    processor.save_pretrained(chat_dir)


def declare_long_form_window(model_dir: Path) -> None:
    """The tiny models were trained on clips of a few seconds and read long recordings best in windows of about
    that length: `generation_config.long_form_window_seconds` makes it the default of `long_audio="sequential"` and
    `"vad"` (the pipeline, `qwen-audio transcribe`, the server and the web demo)."""
    # The file itself: a config marked `_from_model_config` (as training saves it) loads without its extra keys, in
    # GenerationConfig.from_pretrained and so in the model, so the mark goes: the file now holds a setting of its own.
    from ..evaluation.results import atomic_write_text

    path = Path(model_dir) / "generation_config.json"
    generation_config = json.loads(path.read_text())
    if generation_config.get("long_form_window_seconds") is None or generation_config.get("_from_model_config"):
        generation_config.setdefault("long_form_window_seconds", LONG_FORM_WINDOW_SECONDS)
        generation_config.pop("_from_model_config", None)
        atomic_write_text(path, json.dumps(generation_config, indent=2) + "\n")


def train(recipe: Path, threads: int | None = None, module: str = PRETRAIN_MODULE) -> float:
    """Runs the recipe `module` with `--config RECIPE` (progress bars on the terminal); returns the wall time in
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
    status = subprocess.run([sys.executable, "-m", module, "--config", str(recipe)], env=env).returncode
    if status != 0:  # the recipe printed its own one-line error (or its traceback) above
        raise ChildProcessError(f"training with {recipe} failed (exit status {status}); its error is above")
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
    """Each target of `TARGETS` whose benchmark is among `results`: its value and whether it is reached."""
    values = {f"{r['benchmark']}/{metric}": value for r in results for metric, value in r["metrics"].items()}
    scored = {result["benchmark"] for result in results}
    verdict = {}
    for key, (direction, target) in TARGETS.items():
        if key.split("/")[0] not in scored:
            continue
        value = values.get(key)
        reached = value is not None and not math.isnan(value) and (value <= target if direction == "<=" else value >= target)
        verdict[key] = {"value": value, "target": f"{direction} {target}", "reached": bool(reached)}
    for key, (baseline_key, factor) in RELATIVE_TARGETS.items():
        if key in values and baseline_key in values:
            value, limit = values[key], factor * values[baseline_key]
            reached = not math.isnan(value) and value <= limit
            verdict[key] = {"value": value, "target": f"<= {factor} x {baseline_key} ({limit:.4f})",
                            "reached": bool(reached)}
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


def use_chat_model(chat_dir: Path, speech_clip: Path, sound_clip: Path) -> list[dict]:
    """One conversation with the chat model through the pipeline: a clip, another clip, then a question about the
    first one that does not repeat it; returns the whole conversation."""
    from transformers import pipeline

    pipe = pipeline("audio-chat", model=str(chat_dir))
    questions = [
        [{"type": "audio", "audio": str(speech_clip)}, {"type": "text", "text": "What does the person say?"}],
        [{"type": "audio", "audio": str(sound_clip)}, {"type": "text", "text": "What sound is this?"}],
        [{"type": "text", "text": "Back to the first clip: how many words does the person say?"}],
    ]
    messages = []
    for content in questions:
        messages = pipe(messages + [{"role": "user", "content": content}], do_sample=False, max_new_tokens=96)[0][
            "generated_text"]
    return messages


def run_stage(model_dir: Path, retrain: bool, write_recipe_file, module: str, threads: int | None) -> dict:
    """Trains `model_dir` with the recipe `write_recipe_file()` writes, unless a finished checkpoint is there."""
    if retrain and model_dir.exists():
        shutil.rmtree(model_dir)
    if is_finished(model_dir):
        print(f"   reusing the finished checkpoint in {model_dir} (--retrain to train again)", flush=True)
        return {"training": "reused"}
    seconds = train(write_recipe_file(), threads, module=module)
    return {"training": "trained", "train_seconds": round(seconds, 1)}


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
    chat_data_config=None,
    sft_overrides: dict | None = None,
) -> dict:
    """The whole job; returns a report (also written to `DIR/report.json`). `max_eval_samples` also caps the
    held-out dialogues scored."""
    from ..data import ensure_tiny_multitask
    from ..data.tiny_chat import ensure_tiny_chat
    from ..evaluation import evaluate_checkpoint, markdown_table
    from ..evaluation.dialogues import evaluate_dialogues

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_dir, chat_dir = output_dir / "model", output_dir / "chat"
    report = {"output_dir": str(output_dir), "seed": seed}

    print("== 1/6 data: the tiny multitask dataset (built once, then cached)", flush=True)
    started = time.perf_counter()
    data_dir = ensure_tiny_multitask(config=data_config)
    report.update(data_dir=str(data_dir), data_seconds=round(time.perf_counter() - started, 1))
    print(f"   {data_dir}", flush=True)

    print("== 2/6 stage 1: training a tiny Qwen-Audio from scratch (recipes/tiny/pretrain.yaml)", flush=True)
    # A new stage 1 makes the chat model fine-tuned from the old one stale.
    report.update(run_stage(model_dir, retrain, lambda: write_recipe(output_dir, data_dir, seed, recipe_overrides),
                            PRETRAIN_MODULE, threads))
    declare_long_form_window(model_dir)
    retrain_chat = retrain or report["training"] == "trained"
    trained_recipe = output_dir / "pretrain.yaml"
    warmup = yaml.safe_load(trained_recipe.read_text()).get("encoder_ctc_warmup_steps", 0) if trained_recipe.is_file() else 0
    losses = training_losses(model_dir, after_step=warmup)
    # The language-model loss after the encoder warm-up: first and last logged values.
    report["loss_first_last"] = [losses[0], losses[-1]] if losses else None

    print("== 3/6 evaluation on the held-out split", flush=True)
    started = time.perf_counter()
    results = evaluate_checkpoint(
        str(model_dir), tiny_benchmarks(data_dir, max_eval_samples), output_dir=str(output_dir / "eval"),
        batch_size=eval_batch_size, update_model_card=True,
    )
    report["eval_seconds"] = round(time.perf_counter() - started, 1)
    report["metrics"] = {result["benchmark"]: result["metrics"] for result in results}
    print(markdown_table(results), flush=True)

    print("== 4/6 stage 2: fine-tuning it into a tiny Qwen-Audio-Chat (recipes/tiny/sft.yaml)", flush=True)
    chat_data_dir = ensure_tiny_chat(data_dir, output_dir / "chat-data", chat_data_config)
    print(f"   dialogues: {chat_data_dir}", flush=True)
    chat_stage = run_stage(
        chat_dir, retrain_chat, lambda: write_sft_recipe(output_dir, chat_data_dir, data_dir, seed, sft_overrides),
        SFT_MODULE, threads,
    )
    if chat_stage["training"] == "trained":
        mark_as_chat_model(chat_dir)
    declare_long_form_window(chat_dir)
    chat_losses = training_losses(chat_dir)
    report["chat"] = {**chat_stage, "loss_first_last": [chat_losses[0], chat_losses[-1]] if chat_losses else None}

    print("== 5/6 evaluation of the chat model on the held-out dialogues", flush=True)
    started = time.perf_counter()
    chat_results = evaluate_dialogues(
        str(chat_dir), str(chat_data_dir), split="test", batch_size=eval_batch_size * 2, max_dialogues=max_eval_samples,
        output_dir=str(output_dir / "chat-eval"), update_model_card=True,
    )
    report["chat"]["eval_seconds"] = round(time.perf_counter() - started, 1)
    report["chat"]["metrics"] = {result["benchmark"]: result["metrics"] for result in chat_results}
    report["targets"] = check_targets(results + chat_results)
    print(markdown_table(chat_results), flush=True)

    print("== 6/6 using them: pipeline('audio-chat'), qwen-audio transcribe, a conversation", flush=True)
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
    conversation = use_chat_model(chat_dir, data_dir / speech["audio"], data_dir / sound["audio"])
    report["chat"]["conversation"] = conversation
    print(f"   a conversation with {chat_dir} (clips: {speech['text']!r}, then {sound['label']!r}):", flush=True)
    for message in conversation:
        text = " ".join(f"[{Path(part['audio']).name}]" if part["type"] == "audio" else part["text"]
                        for part in message["content"]) if isinstance(message["content"], list) else message["content"]
        print(f"     {message['role']}: {text}", flush=True)
    (output_dir / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    return report
