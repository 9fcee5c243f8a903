"""`convert` never loses data: refused destinations, replacing only its own output, interrupted and killed runs,
corrupted sources, failed uploads, read-only folders; and the model card names the real base model.

Command-line cases run `qwen-audio` / `python -m transformers_qwen_audio.convert` in a subprocess, as a user would."""

import configparser
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub.repocard import metadata_load
from transformers import AutoModelForCausalLM
from transformers.testing_utils import CaptureLogger

from transformers_qwen_audio import checkpoint_files
from transformers_qwen_audio import convert as convert_module
from transformers_qwen_audio.checkpoint_files import verify_weight_files
from transformers_qwen_audio.convert import ConversionError, convert, converted_by_us
from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint
from hostile_files import write_code_running_pickle
from cli_subprocess import assert_one_line_error, folder_digest, run_cli

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL_SHARDS = "200KB"  # several shards: a kill can fall between them


@pytest.fixture(scope="module")
def released_source(tmp_path_factory) -> Path:
    return build_released_checkpoint(tmp_path_factory.mktemp("source") / "released")


@pytest.fixture
def released(released_source, tmp_path) -> Path:
    """A private copy (tests may lay folders around it) and its digest, checked intact after the test."""
    folder = tmp_path / "pd" / "released"
    shutil.copytree(released_source, folder)
    digest = folder_digest(folder)
    yield folder
    assert folder_digest(folder) == digest, "SRC was modified"


def assert_complete_checkpoint(folder: Path) -> None:
    ours, reason = converted_by_us(folder)
    assert ours, reason
    verify_weight_files(folder)
    assert AutoModelForCausalLM.from_pretrained(folder) is not None


# ----------------------------------------------------------------------------------------------------------------
# Destinations that would destroy SRC or unrelated data
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where, message", [
    ("same", "is SRC"),
    ("parent", "contains SRC"),
    ("inside", "is inside SRC"),
])
def test_refuses_dst_that_is_contains_or_is_inside_src(released, where, message):
    other = released.parent / "other-user-file.txt"
    other.write_text("keep me")
    dst = {"same": released, "parent": released.parent, "inside": released / "native"}[where]
    # Not even the flags that force a replacement make these destinations acceptable.
    result = run_cli("convert", released, dst, "--overwrite", "--overwrite-any-folder")
    assert_one_line_error(result, message)
    assert other.read_text() == "keep me"
    assert not (released / "native").exists()


def test_refuses_home_root_and_current_folder(released, monkeypatch, tmp_path):
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for dst in (Path.home(), Path("/"), Path.cwd(), Path.cwd().parent):
        with pytest.raises(ConversionError):
            convert(released, dst, overwrite_any_folder=True)


def test_refuses_to_replace_a_folder_convert_did_not_write(released, tmp_path):
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "notes.txt").write_text("user data")
    result = run_cli("convert", released, dst, "--overwrite")
    assert_one_line_error(result, "was not written by convert", "--overwrite-any-folder")
    assert (dst / "notes.txt").read_text() == "user data"

    result = run_cli("convert", released, dst, "--overwrite-any-folder")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (dst / "notes.txt").exists()
    assert_complete_checkpoint(dst)
    assert not list(tmp_path.glob(".out.*"))


def test_replaces_its_own_output_only_while_nothing_was_added(released, tmp_path):
    dst = convert(released, tmp_path / "out")
    convert(released, dst, overwrite=True, dtype="bfloat16")  # its own output: replaced
    assert json.loads((dst / "config.json").read_text())["dtype"] == "bfloat16"
    (dst / "eval-results.json").write_text("{}")
    with pytest.raises(ConversionError, match="holds files convert did not write \\(eval-results.json\\)"):
        convert(released, dst, overwrite=True)
    assert (dst / "eval-results.json").exists()
    with pytest.raises(FileExistsError, match="--overwrite"):
        convert(released, dst)


# ----------------------------------------------------------------------------------------------------------------
# Staging folders of interrupted runs
# ----------------------------------------------------------------------------------------------------------------
def test_stale_staging_folders_are_removed_and_reported(released, tmp_path):
    partial = tmp_path / ".out.partial-abc123"
    partial.mkdir()
    (partial / "model-00001-of-00003.safetensors").write_bytes(b"\0" * 1000)
    with CaptureLogger(checkpoint_files.logger) as captured:
        convert(released, tmp_path / "out")
    assert f"removed {partial}, left by an interrupted conversion" in captured.out
    assert not partial.exists() and not list(tmp_path.glob(".out.*"))


def test_dst_moved_aside_by_an_interrupted_swap_is_restored(released, tmp_path):
    """A kill between moving DST aside and renaming the new one into place leaves DST only in `.DST.previous-*`."""
    complete = convert(released, tmp_path / "out")
    previous = tmp_path / ".out.previous-xyz"
    previous.mkdir()
    complete.rename(previous / "out")
    (previous / "out" / "notes.txt").write_text("added by the user")  # not ours any more: must not be replaced
    with CaptureLogger(checkpoint_files.logger) as captured:
        with pytest.raises(ConversionError, match="holds files convert did not write"):
            convert(released, tmp_path / "out", overwrite=True)
    assert "restored" in captured.out and (tmp_path / "out" / "notes.txt").read_text() == "added by the user"
    assert not previous.exists()


@pytest.mark.skipif(os.name != "posix", reason="staging locks use flock")
def test_refuses_to_run_beside_a_live_conversion_into_the_same_dst(released, tmp_path):
    live = tmp_path / ".out.partial-live"
    live.mkdir()
    lock = checkpoint_files._lock(live)  # as the running conversion holds it
    try:
        with pytest.raises(checkpoint_files.OutputInUseError, match="another conversion into .*out is running"):
            convert(released, tmp_path / "out")
        assert live.exists()
    finally:
        checkpoint_files._unlock(lock)


# ----------------------------------------------------------------------------------------------------------------
# Kill test
# ----------------------------------------------------------------------------------------------------------------
def _kill_after(context, seconds: float, *args, **kwargs) -> int:
    process = context.Process(target=convert, args=args, kwargs=kwargs)
    process.start()
    process.join(seconds)
    if process.is_alive():
        os.kill(process.pid, signal.SIGKILL)
    process.join()
    return process.exitcode


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_at_random_points_leaves_dst_absent_or_complete_and_src_intact(released, tmp_path):
    # Children fork from a server that has imported the converter once, so a kill lands inside the conversion.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["transformers_qwen_audio.convert"])
    options = {"max_shard_size": SMALL_SHARDS, "overwrite": True}
    assert _kill_after(context, 600, released, tmp_path / "warm-up", **options) == 0
    started = time.monotonic()
    assert _kill_after(context, 600, released, tmp_path / "timed", **options) == 0
    duration = time.monotonic() - started

    dst = tmp_path / "native"
    rng = random.Random(20251125)
    killed = 0
    for attempt in range(6):
        had_complete_dst = dst.exists()
        exitcode = _kill_after(context, rng.uniform(0.0, duration), released, dst, **options)
        killed += exitcode == -signal.SIGKILL
        if dst.exists():
            assert_complete_checkpoint(dst)
        elif had_complete_dst:
            # Killed mid-swap: the previous checkpoint waits, complete, in `.native.previous-*`.
            (kept,) = [folder / "native" for folder in tmp_path.glob(".native.previous-*") if (folder / "native").is_dir()]
            assert_complete_checkpoint(kept)
    assert killed >= 3, f"only {killed} of 6 runs were killed before finishing"

    convert(released, dst, **options)  # a clean run afterwards: complete, nothing stale left
    assert_complete_checkpoint(dst)
    assert not list(tmp_path.glob(".native.*"))
    direct = AutoModelForCausalLM.from_pretrained(released)
    converted = AutoModelForCausalLM.from_pretrained(dst)
    for name, tensor in direct.state_dict().items():
        assert torch.equal(tensor, converted.state_dict()[name]), name


# ----------------------------------------------------------------------------------------------------------------
# Corrupted sources, failed uploads, unwritable destinations: one line, exit 2
# ----------------------------------------------------------------------------------------------------------------
def test_truncated_shard_is_named(released, tmp_path):
    native = convert(released, tmp_path / "native", max_shard_size=SMALL_SHARDS)
    shard = sorted(native.glob("model-*.safetensors"))[1]
    with open(shard, "r+b") as handle:
        handle.truncate(shard.stat().st_size // 2)
    result = run_cli("convert", native, tmp_path / "again")
    assert_one_line_error(result, f"corrupted or truncated safetensors file {shard}")
    assert not (tmp_path / "again").exists() and not list(tmp_path.glob(".again.*"))


def test_pickle_with_code_is_refused_without_suggesting_weights_only_false(released, tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    shutil.copy(released / "config.json", folder / "config.json")
    marker = tmp_path / "pwned"
    write_code_running_pickle(folder / "pytorch_model.bin", marker)
    result = run_cli("convert", folder, tmp_path / "out")
    assert_one_line_error(result, f"refused to load {folder / 'pytorch_model.bin'}", "safetensors")
    assert "weights_only=False" not in result.stderr and "weights_only` set to `False" not in result.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_push_to_hub_network_failure_says_the_local_output_is_complete(released, tmp_path):
    dst = tmp_path / "out"
    # A closed local port stands for an unreachable Hub.
    result = run_cli("convert", released, dst, "--push-to-hub", "me/qwen-audio-tiny",
                     env={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_not_a_real_token", "HF_HUB_OFFLINE": "0"})
    assert_one_line_error(result, f"the converted checkpoint is complete in {dst}", "me/qwen-audio-tiny",
                          f"hf upload me/qwen-audio-tiny {dst}")
    assert_complete_checkpoint(dst)


@pytest.fixture
def read_only_folder(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.geteuid() == 0:  # root ignores permissions; an immutable folder refuses even root
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("running as root without chattr: cannot make a folder read-only")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_read_only_output_folder(released, read_only_folder):
    result = run_cli(released, read_only_folder / "native", module="transformers_qwen_audio.convert")
    assert_one_line_error(result, f"cannot write into {read_only_folder}", "choose a writable DST")


# ----------------------------------------------------------------------------------------------------------------
# Model card
# ----------------------------------------------------------------------------------------------------------------
def test_card_links_the_project_url_of_setup_cfg(released, tmp_path):
    setup = configparser.ConfigParser()
    setup.read(REPO_ROOT / "setup.cfg")
    assert setup["metadata"]["url"] == convert_module.PROJECT_URL
    card = (convert(released, tmp_path / "out") / "README.md").read_text()
    assert f"]({convert_module.PROJECT_URL})" in card
    assert "base_model" not in metadata_load(tmp_path / "out" / "README.md")  # unknown: no made-up id


def test_card_base_model_from_released_config_or_flag(released, tmp_path):
    config = json.loads((released / "config.json").read_text())
    source = tmp_path / "with-name"
    shutil.copytree(released, source)
    (source / "config.json").write_text(json.dumps({**config, "_name_or_path": "Qwen/Qwen-Audio-Chat"}))
    assert metadata_load(convert(source, tmp_path / "a") / "README.md")["base_model"] == "Qwen/Qwen-Audio-Chat"
    card = convert(released, tmp_path / "b", base_model="Qwen/Qwen-Audio") / "README.md"
    assert metadata_load(card)["base_model"] == "Qwen/Qwen-Audio"
    with pytest.raises(ConversionError, match="--base-model must be a Hub repo id"):
        convert(released, tmp_path / "c", base_model="../some folder")


def _hub_cache(released: Path, cache: Path, repo_id: str) -> Path:
    """`released` laid out as huggingface_hub's cache holds a download of `repo_id`."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    shutil.copytree(released, snapshot)
    return snapshot


def test_card_base_model_of_a_cache_snapshot_is_the_repo_id_not_the_hash(released, tmp_path):
    snapshot = _hub_cache(released, tmp_path / "cache", "Qwen/Qwen-Audio-Chat")
    card = (convert(snapshot, tmp_path / "out") / "README.md").read_text()
    assert metadata_load(tmp_path / "out" / "README.md")["base_model"] == "Qwen/Qwen-Audio-Chat"
    assert snapshot.name not in card


def test_hub_id_as_src_is_the_base_model(released, tmp_path):
    _hub_cache(released, tmp_path / "cache", "Qwen/Qwen-Audio-Chat")
    result = run_cli("convert", "Qwen/Qwen-Audio-Chat", tmp_path / "out",
                     env={"HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert metadata_load(tmp_path / "out" / "README.md")["base_model"] == "Qwen/Qwen-Audio-Chat"
    assert_complete_checkpoint(tmp_path / "out")
