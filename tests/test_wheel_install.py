"""The packaged recipes from an installed wheel, not the checkout: the wheel is built and installed into a fresh
virtual environment (torch, transformers, ... from the system site-packages, nothing downloaded), and from a folder
outside the checkout the main job runs shortened (tiny data, a few steps) and an evaluation runs on packaged
benchmarks."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_INPUTS = ("setup.cfg", "pyproject.toml", "README.md")
# The main job as tests/test_demo.py shortens it: small data, 12 steps, 8 held-out rows per benchmark.
SHORT_DEMO = """
from pathlib import Path
import json, sys
from transformers_qwen_audio import demo
from transformers_qwen_audio.data import TinyMultitaskConfig
from transformers_qwen_audio.data.tiny_chat import TinyChatConfig

data = TinyMultitaskConfig(seed=0, num_voices=8, num_train_speech=48, num_validation_speech=4, num_test_speech=8,
                           num_train_sounds=20, num_validation_sounds=5, num_test_sounds=8, num_unseen_voices=2,
                           num_validation_unseen_speech=4, num_test_unseen_speech=6, num_validation_unseen_sounds=5,
                           num_test_unseen_sounds=5, num_train_long=3, num_validation_long=2, num_test_long=2)
steps = {"max_steps": 12, "encoder_ctc_warmup_steps": 4, "warmup_steps": 0, "logging_steps": 2, "save_steps": 1000}
# Both stages shortened, as tests/test_demo.py does.
dialogues = TinyChatConfig(seed=0, num_train_dialogues=64, num_validation_dialogues=8, num_test_dialogues=16)
sft_steps = {"max_steps": 6, "per_device_train_batch_size": 4, "learning_rate": 3.0e-3, "warmup_steps": 0,
             "logging_steps": 2, "save_steps": 1000}
report = demo.run(Path("out"), seed=1, data_config=data, recipe_overrides=steps, max_eval_samples=8, threads=1,
                  cli=False, chat_data_config=dialogues, sft_overrides=sft_steps)
print(json.dumps({"recipe": str(demo.TINY_RECIPE), "package": demo.__file__, "report": report}, default=str))
"""


def run(command, cwd, env, timeout=900):
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, (command, completed.stdout[-2000:], completed.stderr[-4000:])
    return completed


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A virtual environment with the wheel of this working tree installed; returns its python and a clean env."""
    root = tmp_path_factory.mktemp("wheel")
    # Built from a copy: the build writes build/ and *.egg-info next to its inputs, not in the checkout.
    source = root / "source"
    shutil.copytree(REPO_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in BUILD_INPUTS:
        shutil.copy2(REPO_ROOT / name, source / name)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(OMP_NUM_THREADS="1", QWEN_AUDIO_CACHE=str(root / "cache"), HF_HUB_OFFLINE="1")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(root / "dist"), str(source)], cwd=root, env=env)
    (wheel,) = (root / "dist").glob("transformers_qwen_audio-*.whl")
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root / "venv")], cwd=root,
        env=env)
    python = root / "venv" / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--force-reinstall",
         "--no-index", "-q", str(wheel)], cwd=root, env=env)
    work = root / "work"  # outside the checkout: nothing there to import or read recipes from
    work.mkdir()
    return python, env, work


def test_the_installed_package_is_the_wheel_not_the_checkout(venv):
    python, env, work = venv
    located = run([str(python), "-I", "-c", textwrap.dedent("""
        import transformers_qwen_audio
        from transformers_qwen_audio.recipes import recipe_path
        print(transformers_qwen_audio.__file__)
        print(recipe_path("tiny/pretrain.yaml"))
        print(recipe_path("benchmarks/tiny_asr.yaml"))
    """)], cwd=work, env=env).stdout.split()
    site_packages = python.parent.parent / "lib"
    for path in located:
        assert Path(path).is_relative_to(site_packages) and Path(path).is_file(), located


def test_main_job_and_evaluation_run_from_the_wheel(venv):
    python, env, work = venv
    completed = run([str(python), "-I", "-c", SHORT_DEMO], cwd=work, env=env)
    ran = json.loads(completed.stdout.strip().splitlines()[-1])
    site_packages = python.parent.parent / "lib"
    assert Path(ran["package"]).is_relative_to(site_packages) and Path(ran["recipe"]).is_relative_to(site_packages)
    report = ran["report"]
    assert report["training"] == "trained" and report["loss_first_last"] is not None
    assert set(report["metrics"]) == {"tiny_asr", "tiny_srwt", "tiny_sounds", "tiny_asr_unseen", "tiny_sounds_unseen", "tiny_long_asr"}
    model = work / "out" / "model"
    assert (model / "config.json").is_file() and (model / "train_results.json").is_file()
    assert isinstance(report["example"]["pipeline_transcript"]["text"], str)

    # The evaluation recipe on packaged benchmarks by name, its options in a YAML (`--config`); their dataset path
    # (data/tiny-multitask, relative to the working folder) is the data the job built.
    (work / "data").mkdir()
    (work / "data" / "tiny-multitask").symlink_to(report["data_dir"])
    config = work / "evaluate.yaml"
    config.write_text(f"model_name_or_path: {model}\nbenchmarks: [tiny_sounds, tiny_asr]\nmax_samples: 4\n"
                      f"output_dir: {work / 'eval'}\nbatch_size: 4\n")
    run([str(python), "-I", "-m", "transformers_qwen_audio.recipes.evaluate", "--config", str(config),
         "--max_samples", "3"], cwd=work, env=env)
    results = json.loads((work / "eval" / "results.json").read_text())["results"]
    assert [result["benchmark"] for result in results] == ["tiny_sounds", "tiny_asr"]
    assert all(result["num_samples"] == 3 for result in results)  # the command line overrides the YAML
    assert 0 <= results[0]["metrics"]["accuracy"] <= 1 and results[1]["metrics"]["wer"] >= 0
