"""The pre-training recipe through accelerate (`-m transformers_qwen_audio.recipes.pretrain`; the checkout's
recipes/pretrain.py for one process): two CPU processes (gloo) give the weights of one process with the same
global batch, and a run killed mid-way resumes from its last checkpoint with the same data order."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transformers_qwen_audio.recipes import recipe_path


REPO_ROOT = Path(__file__).resolve().parent.parent
RECIPE = REPO_ROOT / "recipes" / "pretrain.py"
CONFIG = recipe_path("tiny/pretrain_smoke.yaml")
# Four steps of a global batch of 4, random (seeded) order, checkpoints at step 2, no evaluation.
COMMON = ["--config", str(CONFIG), "--max_steps", "4", "--save_steps", "2", "--eval_strategy", "no",
          "--do_eval", "false", "--train_sampling_strategy", "random", "--logging_steps", "1",
          "--learning_rate", "1e-3", "--lr_scheduler_type", "constant", "--warmup_steps", "0"]
# Kills its own process (SIGKILL: no cleanup, as a crash or a preemption) when a step is about to start.
KILLER = """
import os, runpy, signal, sys
from transformers import Trainer, TrainerCallback

class KillAt(TrainerCallback):
    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ["KILL_AT_STEP"]):
            os.kill(os.getpid(), signal.SIGKILL)

original_init = Trainer.__init__
def init(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    self.add_callback(KillAt())
Trainer.__init__ = init
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run(command, cwd, **env):
    result = subprocess.run(command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    return result


def check(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def losses(output_dir: Path) -> dict:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the tiny recipe's data built once (both runs read the same files)."""
    folder = tmp_path_factory.mktemp("scale-out")
    from transformers_qwen_audio.training.toy_data import build_toy_pretraining_data

    build_toy_pretraining_data(folder / "data" / "tiny-pretrain")
    return folder


@pytest.fixture(scope="module")
def one_process(workdir):
    output_dir = workdir / "one"
    check(run([sys.executable, str(RECIPE), *COMMON, "--per_device_train_batch_size", "4",
               "--output_dir", str(output_dir)], workdir))
    return output_dir


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(workdir, one_process):
    output_dir = workdir / "two"
    # `--multi_gpu` starts the processes with torchrun; with no GPU visible they train on CPU over gloo.
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]
    # The packaged recipe module (`accelerate launch -m`); the one-process runs use the checkout's script.
    result = run([*launch, "-m", "transformers_qwen_audio.recipes.pretrain", *COMMON,
                  "--per_device_train_batch_size", "2", "--output_dir", str(output_dir)], workdir, CUDA_VISIBLE_DEVICES="")
    check(result)
    single, distributed = load_file(one_process / "model.safetensors"), load_file(output_dir / "model.safetensors")
    assert set(single) == set(distributed)
    for key, value in single.items():
        torch.testing.assert_close(distributed[key], value, atol=2e-5, rtol=1e-4, msg=key)
    # The same samples in the same steps: the per-step losses agree too (logged averaged over the processes).
    one, two = losses(one_process), losses(output_dir)
    assert sorted(one) == sorted(two) == [1, 2, 3, 4]
    for step in one:
        assert abs(one[step] - two[step]) < 1e-4 * max(1.0, abs(one[step])), (step, one[step], two[step])
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and state["epoch"] == pytest.approx(json.loads(
        (one_process / "trainer_state.json").read_text())["epoch"])  # 2 processes x 2 = the same 4 rows a step


def test_a_killed_run_resumes_from_its_checkpoint_with_the_same_data_order(workdir, one_process):
    output_dir = workdir / "killed"
    command = [*COMMON, "--per_device_train_batch_size", "4", "--output_dir", str(output_dir)]
    killed = run([sys.executable, "-c", KILLER, str(RECIPE), *command], workdir, KILL_AT_STEP="3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (output_dir / "checkpoint-2").is_dir() and not (output_dir / "model.safetensors").exists()

    resumed = run([sys.executable, str(RECIPE), *command], workdir)
    check(resumed)
    # Only the two steps after the checkpoint ran (one logged loss each), not four.
    assert resumed.stdout.count("'loss':") == 2, resumed.stdout[-2000:]
    # Steps 3 and 4 ran again from the step-2 checkpoint on the same batches: same losses, same final weights.
    reference, after_resume = losses(one_process), losses(output_dir)
    for step in (3, 4):
        assert after_resume[step] == pytest.approx(reference[step], rel=1e-5), (step, after_resume, reference)
    final, expected = load_file(output_dir / "model.safetensors"), load_file(one_process / "model.safetensors")
    for key, value in expected.items():
        torch.testing.assert_close(final[key], value, atol=1e-6, rtol=1e-5, msg=key)
    shutil.rmtree(output_dir, ignore_errors=True)
