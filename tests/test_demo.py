"""The README's main job, shortened: tiny data, a few pre-training steps, evaluation, a few fine-tuning steps on
generated dialogues, their scores, pipeline and CLI use."""

import json
import math
from pathlib import Path

import pytest
import yaml

from transformers_qwen_audio import demo
from transformers_qwen_audio.data import TinyMultitaskConfig
from transformers_qwen_audio.data.tiny_chat import QUESTION_TYPES, TinyChatConfig


SMALL_DATA = TinyMultitaskConfig(
    seed=0, num_voices=8, num_train_speech=48, num_validation_speech=4, num_test_speech=8,
    num_train_sounds=20, num_validation_sounds=5, num_test_sounds=8,
    num_unseen_voices=2, num_validation_unseen_speech=4, num_test_unseen_speech=6, num_validation_unseen_sounds=5,
    num_test_unseen_sounds=5, num_train_long=3, num_validation_long=2, num_test_long=2,
)
SHORT_RECIPE = {"max_steps": 12, "encoder_ctc_warmup_steps": 4, "per_device_train_batch_size": 4, "learning_rate": 3.0e-3, "warmup_steps": 0,
                "logging_steps": 2, "save_steps": 1000}
SMALL_DIALOGUES = TinyChatConfig(seed=0, num_train_dialogues=64, num_validation_dialogues=8, num_test_dialogues=16)
SHORT_SFT = {"max_steps": 6, "per_device_train_batch_size": 4, "learning_rate": 3.0e-3, "warmup_steps": 0,
             "logging_steps": 2, "save_steps": 1000}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QWEN_AUDIO_CACHE", str(root / "cache"))
        report = demo.run(root / "out", seed=1, data_config=SMALL_DATA, recipe_overrides=SHORT_RECIPE,
                          max_eval_samples=8, threads=1, chat_data_config=SMALL_DIALOGUES, sft_overrides=SHORT_SFT)
    return root, report


def test_training_lowers_the_loss(demo_run):
    _, report = demo_run
    assert report["training"] == "trained"
    first, last = report["loss_first_last"]
    assert last < first - 0.5, report["loss_first_last"]


def test_evaluation_has_the_right_keys_and_finite_scores(demo_run):
    root, report = demo_run
    metrics = report["metrics"]
    assert set(metrics) == set(demo.TINY_BENCHMARKS) == {
        "tiny_asr", "tiny_srwt", "tiny_sounds", "tiny_asr_unseen", "tiny_sounds_unseen", "tiny_long_asr"}
    assert {"wer", "wer_whisper_basic"} <= set(metrics["tiny_asr"])
    assert {"wer", "average_shift", "boundary_mae", "matched_words", "reference_words"} <= set(metrics["tiny_srwt"])
    for value in (metrics["tiny_asr"]["wer"], metrics["tiny_srwt"]["wer"], metrics["tiny_sounds"]["accuracy"]):
        assert math.isfinite(value) and value >= 0
    assert 0 <= metrics["tiny_sounds"]["accuracy"] <= 1
    # Boundary errors exist only for words the model got right (NaN when none, after a few steps).
    assert metrics["tiny_srwt"]["reference_words"] > 0
    results = json.loads((root / "out" / "eval" / "results.json").read_text())["results"]
    assert [result["benchmark"] for result in results] == list(demo.TINY_BENCHMARKS)
    assert "| tiny_asr | wer ↓ |" in (root / "out" / "eval" / "results.md").read_text()
    card = (root / "out" / "model" / "README.md").read_text()
    assert "model-index" in card and "tiny_sounds" in card
    assert set(report["targets"]) <= set(demo.TARGETS) | set(demo.RELATIVE_TARGETS)
    assert {"tiny_asr/wer", "tiny_srwt/boundary_mae", "tiny_sounds/accuracy"} <= set(report["targets"])


def test_the_model_is_used_through_the_pipeline_and_the_cli(demo_run):
    _, report = demo_run
    example = report["example"]
    assert isinstance(example["pipeline_transcript"]["text"], str)
    assert isinstance(example["pipeline_transcript"].get("chunks"), list)
    assert isinstance(example["pipeline_event"], str)
    assert "qwen-audio transcribe" in example["cli_command"]


def test_the_tiny_models_declare_their_long_form_window(demo_run):
    from transformers import pipeline

    root, _ = demo_run
    for name in ("model", "chat"):
        pipe = pipeline("audio-chat", model=str(root / "out" / name))
        assert pipe.model.generation_config.long_form_window_seconds == demo.LONG_FORM_WINDOW_SECONDS, name
    assert pipe.chat_format == "chatml"


def test_stage_two_fine_tunes_the_stage_one_model_into_a_chat_model(demo_run):
    from transformers_qwen_audio.configuration_qwen_audio import declared_chat_format

    root, report = demo_run
    chat = report["chat"]
    assert chat["training"] == "trained" and all(math.isfinite(loss) for loss in chat["loss_first_last"])
    sft_recipe = (root / "out" / "sft.yaml").read_text()
    assert str(root / "out" / "model") in sft_recipe and str(root / "out" / "chat-data" / "train.jsonl") in sft_recipe
    # Its pipeline asks it in words, not with the base model's task tags.
    from transformers import AutoProcessor

    assert declared_chat_format(str(root / "out" / "chat")) == "chatml"
    assert AutoProcessor.from_pretrained(root / "out" / "chat").chat_format == "chatml"
    assert declared_chat_format(str(root / "out" / "model")) == "raw"
    assert set(chat["metrics"]) <= {f"tiny_chat_{kind}" for kind in QUESTION_TYPES} and chat["metrics"]
    card = (root / "out" / "chat" / "README.md").read_text()
    assert "model-index" in card and "tiny_chat_" in card
    assert "| tiny_chat_" in (root / "out" / "chat-eval" / "results.md").read_text()
    assert {key.split("/")[0] for key in report["targets"]} == {name for name in report["metrics"]} | set(chat["metrics"])


def test_the_chat_model_holds_a_conversation_with_two_clips(demo_run):
    _, report = demo_run
    conversation = report["chat"]["conversation"]
    assert [message["role"] for message in conversation] == ["user", "assistant"] * 3
    clips = [part for message in conversation[0::2] for part in message["content"] if part["type"] == "audio"]
    assert len(clips) == 2 and all(isinstance(message["content"], str) for message in conversation[1::2])


def test_batch_of_eight_scores_what_batch_of_one_scores(demo_run):
    from transformers import AutoModelForCausalLM, AutoProcessor

    from transformers_qwen_audio.evaluation import generate_replies, load_benchmark_rows
    from transformers_qwen_audio.evaluation.benchmarks import build_prompt

    root, report = demo_run
    model = AutoModelForCausalLM.from_pretrained(root / "out" / "model").eval()
    processor = AutoProcessor.from_pretrained(root / "out" / "model")
    for spec in demo.tiny_benchmarks(Path(report["data_dir"]), max_samples=8):
        if spec.name == "tiny_srwt":
            continue  # same generation path as tiny_asr, with longer outputs
        rows, base_dir = load_benchmark_rows(spec)
        prompts, clips = [build_prompt(spec, row) for row in rows], [row["audio"] for row in rows]
        one_by_one = generate_replies(model, processor, prompts, clips, spec.max_new_tokens, batch_size=1,
                                      audio_base_dir=base_dir, progress=False)
        batched = generate_replies(model, processor, prompts, clips, spec.max_new_tokens, batch_size=8,
                                   audio_base_dir=base_dir, progress=False)
        assert batched == one_by_one


def test_a_second_run_reuses_the_finished_checkpoint(demo_run):
    root, _ = demo_run
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QWEN_AUDIO_CACHE", str(root / "cache"))
        report = demo.run(root / "out", seed=1, data_config=SMALL_DATA, max_eval_samples=1, cli=False,
                          chat_data_config=SMALL_DIALOGUES)
    assert report["training"] == "reused" and report["chat"]["training"] == "reused"


def test_the_main_job_needs_no_source_checkout():
    """The tiny recipe is package data and training runs the recipe's module, so `pip install .` (not editable) runs
    the demo from any folder."""
    import importlib.util

    package = Path(demo.__file__).parents[1]  # transformers_qwen_audio/demo/__init__.py
    assert demo.TINY_RECIPE.is_relative_to(package / "recipes") and demo.TINY_RECIPE.is_file()
    assert importlib.util.find_spec(demo.PRETRAIN_MODULE) is not None


def test_max_steps_keeps_the_share_of_the_encoder_warm_up():
    import yaml

    recipe = yaml.safe_load(demo.TINY_RECIPE.read_text())
    assert 0 < recipe["encoder_ctc_warmup_steps"] < recipe["max_steps"]
    overrides = demo.step_overrides(recipe["max_steps"] // 3)
    assert overrides["max_steps"] == recipe["max_steps"] // 3
    share = recipe["encoder_ctc_warmup_steps"] / recipe["max_steps"]
    assert overrides["encoder_ctc_warmup_steps"] == round(overrides["max_steps"] * share)
    assert "joint_learning_rate" not in overrides  # the recipe's restart stays
    assert demo.step_overrides(1) == {"max_steps": 1, "encoder_ctc_warmup_steps": 0, "joint_learning_rate": None}
    assert demo.step_overrides(None) is None
    with pytest.raises(ValueError, match="--max-steps"):
        demo.step_overrides(-5)


def test_busy_cpu_share_is_a_fraction_and_sees_a_busy_core():
    import multiprocessing
    import time

    idle_share = demo.busy_cpu_share(0.2)
    if idle_share is None:
        pytest.skip("no /proc/stat on this system")
    assert 0.0 <= idle_share <= 1.0
    spinner = multiprocessing.get_context("spawn").Process(target=_spin, args=(3.0,))
    spinner.start()
    try:
        time.sleep(0.5)
        # One core of the machine's is fully busy: at least a share of 1 / cores (less a little for timing).
        import os
        assert demo.busy_cpu_share(0.5) >= 0.8 / os.cpu_count()
    finally:
        spinner.join()


def _spin(seconds):
    import time

    end = time.time() + seconds
    while time.time() < end:
        pass


def test_relative_targets_compare_with_their_baseline_of_the_same_run():
    results = [{"benchmark": "tiny_asr", "metrics": {"wer": 0.08}},
               {"benchmark": "tiny_long_asr", "metrics": {"wer": 0.09}}]
    verdict = demo.check_targets(results)
    assert verdict["tiny_long_asr/wer"]["reached"] and "1.25 x tiny_asr/wer" in verdict["tiny_long_asr/wer"]["target"]
    results[1]["metrics"]["wer"] = 0.11  # above 1.25 x 0.08
    assert not demo.check_targets(results)["tiny_long_asr/wer"]["reached"]
    assert "tiny_long_asr/wer" not in demo.check_targets(results[1:])  # no baseline scored: no verdict


def test_the_srwt_ablation_leaves_out_every_timestamped_source_and_only_those():
    import importlib.util

    spec = importlib.util.spec_from_file_location("srwt_ablation", Path(__file__).parents[1] / "benchmarks" / "srwt_ablation.py")
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    recipe = yaml.safe_load(demo.TINY_RECIPE.read_text())
    overrides = ablation.without_srwt({"max_steps": 10})
    assert overrides["max_steps"] == 10
    assert overrides["datasets"] == [source for source in recipe["datasets"] if not source.get("timestamps")]
    assert len(overrides["datasets"]) < len(recipe["datasets"])
    assert {source.get("name") for source in overrides["datasets"]} == {"speech", "sounds"}
