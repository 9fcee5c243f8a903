# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
What every `qwen-audio` command shares: user errors as one line with exit status 2, the arguments and checks of the
commands that load a model (`--device`, `--dtype`, MODEL or `--tiny`, audio paths), loading the pipeline, and
running a parsed command (`run_command`).
"""

import argparse
import contextlib
import os
import re
import signal
import sys
import tempfile
import threading
import warnings
from pathlib import Path

from ..checkpoint_files import DTYPES, dtype_name, explain_load_error, verify_weight_files


EXIT_OK = 0
EXIT_SOME_INPUTS_FAILED = 1
EXIT_USAGE_ERROR = 2
EXIT_INTERRUPTED = 130
DEVICE_PATTERN = re.compile(r"^(cpu|mps|(cuda|xpu|npu|hpu)(:\d+)?|\d+)$")
# The namespace attribute of the commands that hand the arguments they do not know on (to a recipe's own parser).
FORWARDED_ARGUMENTS = "forwarded_arguments"


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line (`prog: error: ... (see prog --help)`) and exit status 2, like every other error."""

    def error(self, message):
        self.exit(EXIT_USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 400 else text[:397] + "..."


# ----------------------------------------------------------------------------------------------------------------
# Arguments shared by the commands that load a model
# ----------------------------------------------------------------------------------------------------------------
def device_argument(value: str) -> str:
    """`--device` value: cpu, cuda, cuda:N, mps, xpu[:N] or a GPU index; argparse reports anything else."""
    if not DEVICE_PATTERN.match(value):
        raise argparse.ArgumentTypeError(f"invalid choice {value!r} (choose from cpu, cuda, cuda:N, mps, xpu, xpu:N)")
    return value


def dtype_argument(value: str) -> str:
    """`--dtype` value: one of `DTYPES` (or an alias such as fp16); argparse reports anything else."""
    try:
        return dtype_name(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid choice {value!r} (choose from {', '.join(DTYPES)})") from None


def add_dtype_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype", default="auto", type=dtype_argument, metavar="{" + ",".join(DTYPES) + "}",
                        help="weights dtype (default: as stored)")


def add_model_loading_arguments(parser: argparse.ArgumentParser) -> None:
    """`--device` and `--dtype`, checked by argparse (`--dtype int8` and `--device tpu` are usage errors)."""
    parser.add_argument("--device", default=None, type=device_argument, metavar="{cpu,cuda,cuda:N,mps,xpu}",
                        help="where the model runs (default: first GPU, else CPU)")
    add_dtype_argument(parser)


def add_generation_arguments(parser: argparse.ArgumentParser, model_help: str = "",
                             model_optional: bool = False) -> None:
    """MODEL (optional for `chat`), how it loads, and the decoding options of `chat` and `transcribe`."""
    parser.add_argument("model", nargs="?" if model_optional else None,
                        help="checkpoint folder (native or released layout) or Hub repo id" + model_help)
    add_model_loading_arguments(parser)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="longest reply, in tokens")
    parser.add_argument("--min-new-tokens", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of the checkpoint's sampling")
    parser.add_argument("--long-audio", choices=("truncate", "chunk"), default=None,
                        help="clips over 30 s: keep the first 30 s (truncate) or use every 30 s window (chunk)")
    parser.add_argument("--allow-urls", action="store_true",
                        help="download audio given as http(s) URLs (size-capped, with a timeout)")


def generation_kwargs(args) -> dict:
    """The pipeline's generation keywords from the options of `add_generation_arguments`."""
    kwargs = {}
    if args.max_new_tokens is not None:
        kwargs["max_new_tokens"] = args.max_new_tokens
    if args.min_new_tokens is not None:
        kwargs["min_new_tokens"] = args.min_new_tokens
    if args.greedy:
        kwargs["do_sample"] = False
    if args.long_audio:
        kwargs["long_audio"] = args.long_audio
    return kwargs


# ----------------------------------------------------------------------------------------------------------------
# Checks before anything loads
# ----------------------------------------------------------------------------------------------------------------
def check_device(device: str | None) -> None:
    """Fails in one line, before loading, when the asked accelerator is not there."""
    if device is None or device == "cpu":
        return
    import torch

    kind, _, index = device.partition(":")
    if kind.isdigit():
        kind, index = "cuda", kind
    backend = {"cuda": torch.cuda, "mps": getattr(torch.backends, "mps", None)}.get(kind) or getattr(torch, kind, None)
    if backend is None or not backend.is_available():
        raise CliError(f"--device {device}: this machine has no {kind} device available to torch; use --device cpu")
    if index and hasattr(backend, "device_count") and int(index) >= backend.device_count():
        raise CliError(f"--device {device}: there are only {backend.device_count()} {kind} devices")


def check_model(model: str) -> None:
    """Fails fast, before loading anything, on a local model path that cannot be a checkpoint (or has a truncated or
    corrupted weight file)."""
    looks_local = os.path.isabs(model) or model.startswith((".", "~")) or os.path.exists(model) or model.count("/") > 1
    if not looks_local:
        return  # a Hub repo id: from_pretrained says whether it can be reached
    path = os.path.expanduser(model)
    if not os.path.isdir(path):
        raise CliError(f"model folder not found: {model}")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise CliError(f"{model} is not a checkpoint folder (no config.json)")
    verify_weight_files(path)


def check_model_or_tiny(args) -> None:
    """`serve` and `web` take MODEL or `--tiny` (the embedded tiny model), exactly one; a local MODEL is checked."""
    if args.tiny == (args.model is not None):
        raise CliError("give MODEL (a checkpoint folder or Hub repo id) or --tiny, not both" if args.tiny
                       else "give MODEL (a checkpoint folder or Hub repo id), or --tiny for the embedded tiny model")
    if args.model is not None:
        check_model(args.model)


def check_audio_files(paths) -> None:
    for path in paths:
        if path.startswith(("http://", "https://")):
            continue
        if not os.path.exists(path):
            raise CliError(f"audio file not found: {path}")
        if os.path.isdir(path):
            raise CliError(f"audio path is a directory: {path}")


# ----------------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def model_or_tiny(args):
    """MODEL as given, or with `--tiny` the tiny chat model of `demo_chat_model_or_random`."""
    if not args.tiny:
        yield args.model
        return
    with demo_chat_model_or_random() as model:
        yield model


@contextlib.contextmanager
def demo_chat_model_or_random():
    """The tiny Qwen-Audio-Chat the main job trains (`qwen-audio-demo/chat` in the working folder) when it is
    finished there, else the embedded tiny one with random weights, built in a temporary folder removed when the block
    ends; says on stderr which one, and where it looked."""
    from ..demo import DEFAULT_CHAT_MODEL, is_finished
    from ..tiny_checkpoint import build_released_checkpoint

    if is_finished(DEFAULT_CHAT_MODEL):
        print(f"using the main job's tiny Qwen-Audio-Chat in {DEFAULT_CHAT_MODEL}", file=sys.stderr)
        yield os.fspath(DEFAULT_CHAT_MODEL)
        return
    print(f"no trained chat model in {DEFAULT_CHAT_MODEL} (`qwen-audio demo` trains one there): falling back to a tiny "
          "model with RANDOM weights, whose replies mean nothing", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="qwen-audio-tiny-", ignore_cleanup_errors=True) as folder:
        yield os.fspath(build_released_checkpoint(Path(folder) / "released"))


def load_pipeline(model: str, device: str | None = None, dtype: str = "auto", **kwargs):
    """The `audio-chat` pipeline for MODEL (tests replace this where a command uses it, to share one loaded model)."""
    from transformers import pipeline

    from .. import register_pipeline

    check_device(device)
    register_pipeline()
    try:
        return pipeline("audio-chat", model=model, device=device, dtype=dtype, **kwargs)
    except Exception as error:
        explained = explain_load_error(error, model)
        if explained is not None:
            raise explained from None
        if isinstance(error, (OSError, ValueError)):
            raise CliError(f"could not load model {model}: {one_line(error)}") from None
        raise


def decode_clip(path: str, allow_urls: bool):
    """The clip as a 16 kHz `{"array", "sampling_rate"}` dict, decoded once (errors name the file)."""
    from ..audio_io import QWEN_AUDIO_SAMPLING_RATE, load_audio

    try:
        waveform = load_audio(path, allow_urls=allow_urls)
    except (OSError, ValueError, TypeError) as error:
        message = one_line(error)
        raise CliError(message if path in message else f"{path}: {message}") from None
    return {"array": waveform, "sampling_rate": QWEN_AUDIO_SAMPLING_RATE}


@contextlib.contextmanager
def terminate_like_interrupt():
    """SIGTERM (docker stop, systemd, kill) ends the block as Ctrl+C does, with a `KeyboardInterrupt`: `finally` blocks
    and context managers run (a `--tiny` checkpoint, working folders) instead of the process dying where it stands.
    uvicorn catches SIGTERM itself while it serves, then sends it again once it has shut down: it lands here."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------------------------------------------
# Commands that run a recipe
# ----------------------------------------------------------------------------------------------------------------
def add_recipe_parser(subcommands, name: str, run, help: str) -> argparse.ArgumentParser:
    """`qwen-audio NAME ARGS...`: every argument goes to the recipe's own parser (`--help` shows its options)."""
    parser = subcommands.add_parser(name, help=help, add_help=False)
    parser.set_defaults(run=run, **{FORWARDED_ARGUMENTS: []})
    return parser


def add_served_model_arguments(parser: argparse.ArgumentParser, served: str) -> None:
    """MODEL or `--tiny`, and `--host`: what `serve` and `web` both take (`served`: what the command does with it)."""
    parser.add_argument("model", nargs="?", help="checkpoint folder (native or released layout) or Hub repo id")
    parser.add_argument("--tiny", action="store_true",
                        help=f"{served} the main job's tiny Qwen-Audio-Chat (qwen-audio-demo/chat of the working "
                             "folder) when `qwen-audio demo` has trained it, else one with random weights built "
                             "offline in a temporary folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")


def packaged_config(argv: list[str]) -> list[str]:
    """`--config NAME` where NAME is no file here but a packaged recipe (`tiny/pretrain.yaml`,
    `benchmarks/tiny_asr.yaml`) becomes that recipe's path, so an installed package runs its recipes by name."""
    from ..recipes import recipe_path

    argv = list(argv)
    for index, argument in enumerate(argv):
        option, equals, value = argument.partition("=")
        if option != "--config":
            continue
        if not equals:
            index, value = index + 1, argv[index + 1] if index + 1 < len(argv) else None
        if value and not os.path.exists(value) and value.endswith((".yaml", ".yml")):
            try:
                packaged = str(recipe_path(value))
            except (FileNotFoundError, ValueError):
                continue  # the recipe reports the missing file itself
            argv[index] = f"--config={packaged}" if equals else packaged
    return argv


def run_recipe(recipe_main, args) -> int:
    """Runs `recipe_main(argv)` with the arguments the command line forwarded (a packaged recipe named by
    `--config`, see `packaged_config`); its status, 0 when it returns none."""
    status = recipe_main(packaged_config(getattr(args, FORWARDED_ARGUMENTS)))
    return EXIT_OK if status is None else status


# ----------------------------------------------------------------------------------------------------------------
# Running a command
# ----------------------------------------------------------------------------------------------------------------
def user_error_message(error: BaseException) -> str | None:
    """The one-line message for an error a user can fix (None for a bug, which keeps its traceback)."""
    explained = explain_load_error(error, "the checkpoint")
    if explained is not None:
        return one_line(explained)
    if isinstance(error, (CliError, OSError, ValueError, TypeError)):
        return one_line(error)
    try:
        import httpx

        if isinstance(error, httpx.HTTPError):
            return f"network error: {one_line(error)}"
    except ImportError:
        pass
    return None


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"warning: {' '.join(str(message).split())}\n"


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parses `argv` and runs the chosen command (its `run` default): user errors become one line on stderr and exit
    status 2. Arguments the parser does not know are an error, except for the commands that forward them."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if not hasattr(args, FORWARDED_ARGUMENTS):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        setattr(args, FORWARDED_ARGUMENTS, unknown)
    prefix = f"{parser.prog} {args.command}" if getattr(args, "command", None) else parser.prog
    default_format, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        message = user_error_message(error)
        if message is None:
            raise
        print(f"{prefix}: error: {message}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    finally:
        warnings.formatwarning = default_format
