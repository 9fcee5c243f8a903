"""`qwen-audio` run as a user runs it (a subprocess): one-line errors with exit status 2, `--version`, option
choices, `transcribe` going on past failing files, output names that never collide, URLs only with --allow-urls,
and the interactive chat dropping a clip that fails to decode."""

import functools
import http.server
import io
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from transformers_qwen_audio import __version__
from transformers_qwen_audio import cli
from transformers_qwen_audio.cli import chat
from transformers_qwen_audio.cli.common import CliError, dtype_argument
from transformers_qwen_audio.cli.transcribe import output_paths
from transformers_qwen_audio.convert import convert
from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint
from cli_subprocess import assert_one_line_error, error_lines, run_cli

FAST = ["--max-new-tokens", "3", "--greedy"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_released_checkpoint(tmp_path_factory.mktemp("model") / "released")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    tone = (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    for name in ("a.wav", "c.wav", "UPPER.WAV", "UPPER.FLAC"):
        soundfile.write(folder / name, tone, 16000)
    (folder / "bad.wav").write_bytes(b"this is not audio" * 20)
    return folder


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and f"transformers-qwen-audio) {__version__}" in result.stdout


@pytest.mark.parametrize("argv, fragment", [
    (["transcribe", "{model}", "{clip}", "--dtype", "int8"], "argument --dtype: invalid choice 'int8'"),
    (["chat", "{model}", "--device", "tpu", "-p", "hi"], "argument --device: invalid choice 'tpu'"),
    (["convert", "{model}", "{clip}.out", "--dtype", "fp8"], "argument --dtype: invalid choice 'fp8'"),
])
def test_invalid_choices_are_one_line_usage_errors(model, clips, argv, fragment):
    result = run_cli(*[arg.format(model=model, clip=clips / "a.wav") for arg in argv])
    assert_one_line_error(result, fragment)


def test_accelerator_missing_on_this_machine(model, clips):
    # Without CUDA, `cuda`; with it, an index past the last GPU.
    device = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    result = run_cli("transcribe", model, clips / "a.wav", "--device", device)
    assert_one_line_error(result, f"--device {device}")


def test_transcribe_reports_each_failure_goes_on_and_exits_non_zero(model, clips):
    inputs = [clips / "a.wav", clips / "bad.wav", clips / "missing.wav", clips / "c.wav"]
    result = run_cli("transcribe", model, *inputs, "--batch-size", "2", *FAST)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert f"==> {clips / 'a.wav'} <==" in result.stdout and f"==> {clips / 'c.wav'} <==" in result.stdout
    failures = error_lines(result)
    assert len(failures) == 2, result.stderr
    assert any(str(clips / "bad.wav") in line and "Could not decode" in line for line in failures)
    assert any(str(clips / "missing.wav") in line and "not found" in line for line in failures)
    assert "2 of 4 files failed" in result.stderr


def test_output_dir_never_overwrites_silently(model, clips, tmp_path):
    inputs = [clips / "UPPER.WAV", clips / "UPPER.FLAC", clips / "a.wav"]
    result = run_cli("transcribe", model, *inputs, "--output-dir", tmp_path, *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    # Inputs that share a name keep their extension; the others get NAME.txt.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["UPPER.FLAC.txt", "UPPER.WAV.txt", "a.txt"]
    (tmp_path / "a.txt").write_text("edited by hand")
    result = run_cli("transcribe", model, clips / "a.wav", "--output-dir", tmp_path, *FAST)
    assert_one_line_error(result, f"{tmp_path / 'a.txt'} exists", "--overwrite")
    assert (tmp_path / "a.txt").read_text() == "edited by hand"


def test_output_names_for_same_named_inputs_in_different_folders_are_refused(tmp_path):
    assert output_paths(["x/a.wav", "x/b.wav"], "out", "srt", False) == ["out/a.srt", "out/b.srt"]
    assert output_paths(["x/a.wav", "y/A.flac"], "out", "srt", False) == ["out/a.wav.srt", "out/A.flac.srt"]
    with pytest.raises(CliError, match="would write the same file"):
        output_paths(["x/a.wav", "y/a.wav"], "out", "srt", False)


@pytest.fixture
def audio_server(clips):
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # one call per request: record it instead of printing
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(clips)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_urls_are_fetched_only_with_allow_urls(model, audio_server):
    base, requests = audio_server
    result = run_cli("transcribe", model, f"{base}/a.wav", *FAST)
    assert_one_line_error(result, f"{base}/a.wav", "--allow-urls")
    assert requests == []
    result = run_cli("transcribe", model, f"{base}/a.wav", "--allow-urls", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    assert requests == ["/a.wav"]


def test_interactive_chat_drops_a_clip_that_fails_to_decode(model, clips):
    session = f"/audio {clips / 'bad.wav'}\n/audio {clips / 'a.wav'}\nwhat is this?\n/quit\n"
    result = run_cli("chat", model, *FAST, input=session)
    assert result.returncode == 0, result.stderr[-3000:]
    (dropped,) = error_lines(result)
    assert str(clips / "bad.wav") in dropped and "not attached" in dropped
    assert "/reset" not in dropped  # nothing of the conversation needs clearing
    assert f"(attached {clips / 'a.wav'})" in result.stdout and result.stdout.count("assistant> ") == 1


def test_corrupted_shard_is_named_before_loading(model, clips, tmp_path):
    native = convert(model, tmp_path / "native", max_shard_size="200KB")
    shard = sorted(native.glob("model-*.safetensors"))[0]
    shard.write_bytes(b"\xff" * 64)
    result = run_cli("chat", native, clips / "a.wav", "-p", "hi", *FAST)
    assert_one_line_error(result, f"corrupted or truncated safetensors file {shard}")


def test_interactive_chat_suggests_reset_only_when_earlier_turns_can_be_the_cause(model, monkeypatch, capsys):
    class LongConversationFails:
        def stream(self, messages, **kwargs):
            if len(messages) > 1:
                raise ValueError("the conversation is longer than the context window")
            yield "hello"

    monkeypatch.setattr(chat, "load_pipeline", lambda *args, **kwargs: LongConversationFails())
    monkeypatch.setattr("sys.stdin", io.StringIO("hi\nand now?\nstill there?\n/reset\nhi again\n/quit\n"))
    assert cli.main(["chat", str(model)]) == 0
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("/reset starts over" in line and "message not sent" in line for line in errors)
    assert captured.out.count("hello") == 2  # the first turn, and the first turn after /reset


@pytest.mark.parametrize("given, expected", [("fp16", "float16"), ("BF16", "bfloat16"), ("auto", "auto")])
def test_dtype_aliases(given, expected):
    assert dtype_argument(given) == expected
