"""recipes/evaluate.py: one process and two accelerate processes (shards gathered on the main one) agree."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transformers_qwen_audio.data import TinyMultitaskConfig, ensure_tiny_multitask
from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint


REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    data = ensure_tiny_multitask(root / "data", TinyMultitaskConfig(
        num_voices=4, num_train_speech=8, num_validation_speech=2, num_test_speech=5,
        num_train_sounds=5, num_validation_sounds=5, num_test_sounds=5, held_out_words_per_voice=6,
        num_unseen_voices=1, num_validation_unseen_speech=2, num_test_unseen_speech=2, num_validation_unseen_sounds=2,
        num_test_unseen_sounds=2, num_train_long=1, num_validation_long=1, num_test_long=1,
    ))
    model = build_released_checkpoint(root / "model")
    benchmark = root / "sounds.yaml"
    benchmark.write_text(
        f"name: tiny_sounds_small\ntask: classification\ndataset: {data}\ndataset_config: sounds\nsplit: test\n"
        "columns: {audio: audio, reference: label}\n"
        'prompt: "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|event|>"\nmax_new_tokens: 4\n'
    )
    return root, model, benchmark


def run(command, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=600, **kwargs)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def test_two_processes_give_the_one_process_results(setup):
    root, model, benchmark = setup
    arguments = ["recipes/evaluate.py", "--model_name_or_path", str(model), "--benchmarks", str(benchmark),
                 "--batch_size", "2"]
    run([sys.executable, *arguments, "--output_dir", str(root / "one")])
    run([sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", *arguments, "--output_dir", str(root / "two")])
    one = (root / "one" / "predictions" / "tiny_sounds_small.jsonl").read_text().splitlines()
    two = (root / "two" / "predictions" / "tiny_sounds_small.jsonl").read_text().splitlines()
    assert len(one) == 1 + 5 and [json.loads(line)["row"] for line in one[1:]] == list(range(5))
    assert two == one  # every row once, in dataset order, same replies (the second process's part merged)
    assert not list((root / "two" / "predictions").glob("*.part*.jsonl"))
    results = json.loads((root / "two" / "results.json").read_text())["results"][0]
    assert results["num_samples"] == 5 and 0 <= results["metrics"]["accuracy"] <= 1
    assert "model-index" in (root / "two" / "model_index.yaml").read_text()


def test_unknown_benchmark_is_a_clear_error(setup):
    _, model, _ = setup
    completed = subprocess.run([sys.executable, "recipes/evaluate.py", "--model_name_or_path", str(model),
                                "--benchmarks", "no_such_benchmark"], cwd=REPOSITORY, capture_output=True, text=True)
    assert completed.returncode != 0 and "No benchmark 'no_such_benchmark'" in completed.stderr


def test_options_from_a_config_yaml_and_the_command_line(tmp_path, capsys):
    from transformers_qwen_audio.recipes.evaluate import parse_arguments

    config = tmp_path / "evaluate.yaml"
    config.write_text("model_name_or_path: some/model\nbenchmarks: [tiny_asr]\nbatch_size: 3\n")
    arguments = parse_arguments(["--config", str(config), "--batch_size", "5"])
    assert (arguments.model_name_or_path, arguments.benchmarks, arguments.batch_size) == ("some/model", ["tiny_asr"], 5)
    config.write_text("model_name_or_path: some/model\nbatch_sise: 3\n")
    with pytest.raises(SystemExit):
        parse_arguments(["--config", str(config)])
    assert "unknown option(s) ['batch_sise']" in capsys.readouterr().err
