# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
`qwen-audio`: chat with, transcribe with, and convert Qwen-Audio checkpoints.

    qwen-audio chat MODEL AUDIO... --prompt "What does the person say?"   # one question
    qwen-audio chat MODEL [AUDIO...]                                      # interactive, multi-turn
    qwen-audio transcribe MODEL AUDIO... --language en [--timestamps] [--output srt|vtt|json|txt] [--output-dir DIR]
    qwen-audio convert SRC DST [--dtype bfloat16]
    qwen-audio serve MODEL [--host 127.0.0.1] [--port 8000]                # OpenAI-compatible server ([serve] extra)

MODEL is a local folder (native or released layout) or a Hub repo id. AUDIO is a file; http(s) URLs are downloaded
only with `--allow-urls` (with a size cap and a timeout, see `audio_io`). In the interactive chat, `/audio PATH`
attaches a clip to the next message, `/reset` starts over, `/quit` (or end of input) leaves.

Errors (missing file, bad model path, bad option, corrupted checkpoint, ...) print one line and exit with status 2.
`transcribe` goes on past files that fail (one line each) and exits with status 1 when some failed, 2 when all did.
"""

import argparse
import os
import re
import sys
import tempfile
import warnings

from . import __version__
from . import convert as convert_module
from . import demo
from . import serving
from . import web_demo
from .checkpoint_files import explain_load_error, verify_weight_files
from .training import lora_merge


EXIT_OK = 0
EXIT_SOME_INPUTS_FAILED = 1
EXIT_USAGE_ERROR = 2
EXIT_INTERRUPTED = 130
INTERACTIVE_HELP = "Type a message. /audio PATH attaches a clip to your next message, /reset starts over, /quit leaves."
DEVICE_PATTERN = re.compile(r"^(cpu|mps|(cuda|xpu|npu|hpu)(:\d+)?|\d+)$")


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line (`prog: error: ... (see prog --help)`) and exit status 2, like every other error."""

    def error(self, message):
        self.exit(EXIT_USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 400 else text[:397] + "..."


# ----------------------------------------------------------------------------------------------------------------
# Arguments shared by the subcommands that load a model
# ----------------------------------------------------------------------------------------------------------------
def device_argument(value: str) -> str:
    """`--device` value: cpu, cuda, cuda:N, mps, xpu[:N] or a GPU index; argparse reports anything else."""
    if not DEVICE_PATTERN.match(value):
        raise argparse.ArgumentTypeError(f"invalid choice {value!r} (choose from cpu, cuda, cuda:N, mps, xpu, xpu:N)")
    return value


def add_model_loading_arguments(parser: argparse.ArgumentParser) -> None:
    """`--device` and `--dtype`, checked by argparse (`--dtype int8` and `--device tpu` are usage errors)."""
    parser.add_argument("--device", default=None, type=device_argument, metavar="{cpu,cuda,cuda:N,mps,xpu}",
                        help="where the model runs (default: first GPU, else CPU)")
    parser.add_argument("--dtype", default="auto", type=convert_module.dtype_argument,
                        metavar="{" + ",".join(convert_module.DTYPES) + "}", help="weights dtype (default: as stored)")


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


def check_audio_files(paths) -> None:
    for path in paths:
        if path.startswith(("http://", "https://")):
            continue
        if not os.path.exists(path):
            raise CliError(f"audio file not found: {path}")
        if os.path.isdir(path):
            raise CliError(f"audio path is a directory: {path}")


def load_pipeline(model: str, device: str | None = None, dtype: str = "auto", **kwargs):
    """The `audio-chat` pipeline for MODEL (tests replace this to share one loaded model)."""
    from transformers import pipeline

    from . import register_pipeline

    check_device(device)
    register_pipeline()
    try:
        return pipeline("audio-chat", model=model, device=device, dtype=dtype, **kwargs)
    except Exception as error:
        explained = explain_load_error(error, model)
        if explained is not None:
            raise explained from None
        if isinstance(error, (OSError, ValueError)):
            raise CliError(f"could not load model {model}: {_one_line(error)}") from None
        raise


def decode_clip(path: str, allow_urls: bool):
    """The clip as a 16 kHz `{"array", "sampling_rate"}` dict, decoded once (errors name the file)."""
    from .audio_io import QWEN_AUDIO_SAMPLING_RATE, load_audio

    try:
        waveform = load_audio(path, allow_urls=allow_urls)
    except (OSError, ValueError, TypeError) as error:
        message = _one_line(error)
        raise CliError(message if path in message else f"{path}: {message}") from None
    return {"array": waveform, "sampling_rate": QWEN_AUDIO_SAMPLING_RATE}


def _generation_kwargs(args) -> dict:
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


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint folder (native or released layout) or Hub repo id")
    add_model_loading_arguments(parser)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="longest reply, in tokens")
    parser.add_argument("--min-new-tokens", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of the checkpoint's sampling")
    parser.add_argument("--long-audio", choices=("truncate", "chunk"), default=None,
                        help="clips over 30 s: keep the first 30 s (truncate) or use every 30 s window (chunk)")
    parser.add_argument("--allow-urls", action="store_true",
                        help="download audio given as http(s) URLs (size-capped, with a timeout)")


def build_parser() -> argparse.ArgumentParser:
    """The `qwen-audio` parser. Each subcommand registers itself with `add_parser(subcommands)`, which sets
    `run=<function(args) -> exit status>` as a default; add a subcommand with one line here."""
    parser = OneLineErrorParser(prog="qwen-audio", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version_text())
    subcommands = parser.add_subparsers(dest="command", required=True)
    add_chat_parser(subcommands)
    add_transcribe_parser(subcommands)
    convert_module.add_parser(subcommands)
    lora_merge.add_parser(subcommands)
    serving.add_parser(subcommands)
    web_demo.add_parser(subcommands)
    demo.add_parser(subcommands)
    return parser


def version_text() -> str:
    import torch
    import transformers

    return f"qwen-audio (transformers-qwen-audio) {__version__}, transformers {transformers.__version__}, torch {torch.__version__}"


def add_chat_parser(subcommands) -> argparse.ArgumentParser:
    chat = subcommands.add_parser("chat", help="ask about audio clips (one question, or an interactive session)")
    _add_common_arguments(chat)
    chat.add_argument("audio", nargs="*", help="audio files attached to the first message")
    chat.add_argument("--prompt", "-p", help="the question; without it, an interactive session starts")
    chat.add_argument("--system", help="system message (default: the original's 'You are a helpful assistant.')")
    chat.set_defaults(run=run_chat)
    return chat


def add_transcribe_parser(subcommands) -> argparse.ArgumentParser:
    transcribe = subcommands.add_parser("transcribe", help="speech to text, optionally with word timestamps")
    _add_common_arguments(transcribe)
    transcribe.add_argument("audio", nargs="+", help="audio files")
    transcribe.add_argument("--language", "-l", default="en", help="spoken language: en, zh, de, es, ko, fr, ja, it")
    transcribe.add_argument("--task", default="transcribe", choices=("transcribe", "translate"))
    transcribe.add_argument("--output-language", help="language of a translation")
    transcribe.add_argument("--timestamps", action="store_true", help="word-level timestamps")
    transcribe.add_argument("--output", "-o", choices=("txt", "srt", "vtt", "json"), default="txt",
                            help="output format (srt/vtt imply --timestamps)")
    transcribe.add_argument("--output-dir", help="write one file per input here (NAME.FORMAT; NAME.EXT.FORMAT when "
                                                 "inputs share a name) instead of printing")
    transcribe.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    transcribe.add_argument("--batch-size", type=int, default=1, help="files transcribed together")
    transcribe.add_argument("--chat-format", choices=("chatml", "raw"),
                            help="force a chat (chatml) or base (raw) prompt; default: from the checkpoint")
    transcribe.add_argument("--no-progress", action="store_true", help="no progress bar")
    transcribe.set_defaults(run=run_transcribe)
    return transcribe


# ----------------------------------------------------------------------------------------------------------------
# chat
# ----------------------------------------------------------------------------------------------------------------
def _user_message(text: str, clips: list[dict]) -> dict:
    parts = [{"type": "audio", "audio": clip} for clip in clips]
    return {"role": "user", "content": parts + [{"type": "text", "text": text}]}


def run_chat(args, out=None) -> int:
    out = out or sys.stdout
    check_model(args.model)
    check_audio_files(args.audio)
    interactive = args.prompt is None
    clips = []
    for path in args.audio:
        try:
            clips.append(decode_clip(path, args.allow_urls))
        except CliError as error:
            if not interactive:
                raise
            print(f"error: {error} (not attached)", file=sys.stderr)
    pipe = load_pipeline(args.model, device=args.device, dtype=args.dtype)
    generation = _generation_kwargs(args)
    system = [{"role": "system", "content": args.system}] if args.system else []

    if not interactive:
        messages = system + [_user_message(args.prompt, clips)]
        reply = pipe(messages, return_full_text=False, **generation)[0]["generated_text"]
        print(reply, file=out)
        return EXIT_OK

    # Interactive session: the conversation grows turn by turn; clips are decoded when attached (a clip that fails
    # is dropped there and then) and go with the next user message.
    messages, pending = list(system), clips
    print(INTERACTIVE_HELP, file=sys.stderr)
    while True:
        print("user> ", end="", file=out, flush=True)
        line = sys.stdin.readline()
        if not line:  # end of input
            print(file=out)
            break
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line == "/reset":
            messages, pending = list(system), []
            print("(conversation cleared)", file=out)
            continue
        if line.split()[0] == "/audio":
            path = line[len("/audio"):].strip()
            try:
                if not path:
                    raise CliError("usage: /audio PATH")
                check_audio_files([path])
                pending.append(decode_clip(path, args.allow_urls))
            except CliError as error:
                print(f"error: {error} (not attached)", file=sys.stderr)
                continue
            print(f"(attached {path})", file=out)
            continue
        if line.startswith("/"):
            print(f"error: unknown command {line.split()[0]}. {INTERACTIVE_HELP}", file=sys.stderr)
            continue
        candidate = messages + [_user_message(line, pending)]
        print("assistant> ", end="", file=out, flush=True)
        try:
            reply = "".join(_echo(pipe.stream(candidate, **generation), out))
        except (OSError, ValueError, TypeError) as error:
            # The failed message (and its clips) is not kept; only earlier turns can still be the cause.
            hint = " If the conversation so far is the problem (too long?), /reset starts over." if len(messages) > len(system) else ""
            print(f"\nerror: {_one_line(error)} (message not sent; its clips were dropped).{hint}", file=sys.stderr)
            pending = []
            continue
        print(file=out)
        messages = candidate + [{"role": "assistant", "content": reply}]
        pending = []
    return EXIT_OK


def _echo(pieces, out):
    for piece in pieces:
        print(piece, end="", file=out, flush=True)
        yield piece


# ----------------------------------------------------------------------------------------------------------------
# transcribe
# ----------------------------------------------------------------------------------------------------------------
def output_paths(inputs: list[str], output_dir: str, output_format: str, overwrite: bool) -> list[str]:
    """One output file per input: NAME.FORMAT, or NAME.EXT.FORMAT for inputs whose NAME.FORMAT would be shared (names
    compared case-insensitively, as many file systems do). Refuses inputs that would still share a file, and
    existing files unless `overwrite`."""
    def short(path):
        return os.path.splitext(os.path.basename(path.rstrip("/")))[0] + f".{output_format}"

    def long(path):
        return os.path.basename(path.rstrip("/")) + f".{output_format}"

    shared = _collisions([short(path) for path in inputs])
    names = [long(path) if short(path).casefold() in shared else short(path) for path in inputs]
    still_shared = _collisions(names)
    if still_shared:
        clashing = [path for path, name in zip(inputs, names) if name.casefold() in still_shared]
        raise CliError(f"inputs {', '.join(clashing[:4])} would write the same file in {output_dir}: "
                       "transcribe them into different --output-dir folders")
    targets = [os.path.join(output_dir, name) for name in names]
    existing = [target for target in targets if os.path.exists(target)]
    if existing and not overwrite:
        raise CliError(f"{existing[0]} exists{f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''}: "
                       "pass --overwrite to replace")
    return targets


def _collisions(names: list[str]) -> set[str]:
    seen, shared = set(), set()
    for name in names:
        key = name.casefold()
        (shared if key in seen else seen).add(key)
    return shared


def write_atomically(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def run_transcribe(args, out=None) -> int:
    from tqdm.auto import tqdm

    from . import subtitles

    out = out or sys.stdout
    if args.batch_size < 1:
        raise CliError("--batch-size must be at least 1")
    check_model(args.model)
    timestamps = args.timestamps or args.output in ("srt", "vtt")
    _check_task_options(args.task, args.language, args.output_language, timestamps)
    failures = {}

    def fail(path, message):
        failures[path] = message
        # tqdm.write keeps the line apart from the progress bar.
        tqdm.write(f"qwen-audio transcribe: error: {message if path in message else f'{path}: {message}'}",
                   file=sys.stderr)

    pending = []
    for path in args.audio:
        try:
            check_audio_files([path])
            pending.append(path)
        except CliError as error:
            fail(path, str(error))
    targets = {}
    if args.output_dir:
        try:
            os.makedirs(args.output_dir, exist_ok=True)
        except OSError as error:
            raise CliError(f"cannot create --output-dir {args.output_dir}: {error.strerror}") from None
        targets = dict(zip(args.audio, output_paths(args.audio, args.output_dir, args.output, args.overwrite)))
    if not pending:
        return EXIT_USAGE_ERROR

    pipe = load_pipeline(args.model, device=args.device, dtype=args.dtype)
    call_kwargs = {"task": args.task, "language": args.language, **_generation_kwargs(args)}
    if args.output_language:
        call_kwargs["output_language"] = args.output_language
    if timestamps:
        call_kwargs["return_timestamps"] = "word"
    if args.chat_format:
        call_kwargs["chat_format"] = args.chat_format

    show_progress = not args.no_progress and len(args.audio) > 1
    progress = tqdm(total=len(pending), desc="transcribing", unit="file", disable=not show_progress, file=sys.stderr)
    for start in range(0, len(pending), args.batch_size):
        batch = {}
        for path in pending[start : start + args.batch_size]:
            try:
                batch[path] = decode_clip(path, args.allow_urls)
            except CliError as error:
                fail(path, str(error))
        for path, result in _transcribe_batch(pipe, batch, args.batch_size, call_kwargs, fail):
            rendered = subtitles.render(result, args.output)
            if args.output_dir:
                try:
                    write_atomically(targets[path], rendered)
                except OSError as error:
                    fail(path, f"cannot write {targets[path]}: {error.strerror or error}")
                    continue
                progress.write(targets[path], file=out)
            else:
                if len(args.audio) > 1:
                    print(f"==> {path} <==", file=out)
                print(rendered.rstrip("\n"), file=out)
        progress.update(len(pending[start : start + args.batch_size]))
    progress.close()
    if failures:
        print(f"qwen-audio transcribe: {len(failures)} of {len(args.audio)} files failed", file=sys.stderr)
        return EXIT_USAGE_ERROR if len(failures) == len(args.audio) else EXIT_SOME_INPUTS_FAILED
    return EXIT_OK


def _check_task_options(task, language, output_language, timestamps) -> None:
    """Options wrong for every file (an unknown language, ...) stop the run before the model loads."""
    from .task_prompts import build_task_prompt

    try:
        build_task_prompt(task, audio_language=language, output_language=output_language, timestamps=timestamps)
    except (ValueError, TypeError) as error:
        raise CliError(_one_line(error)) from None


def _transcribe_batch(pipe, clips: dict, batch_size: int, call_kwargs: dict, fail):
    """(path, result) for each clip that transcribes; a batch that fails is retried file by file, so that one bad
    input fails alone and is named."""
    if not clips:
        return
    try:
        results = pipe(list(clips.values()), batch_size=batch_size, **call_kwargs)
        yield from zip(clips, results)
        return
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        if len(clips) == 1:
            fail(next(iter(clips)), _one_line(error))
            return
    for path, clip in clips.items():
        try:
            result = pipe(clip, **call_kwargs)
        except (OSError, ValueError, TypeError, RuntimeError) as error:
            fail(path, _one_line(error))
            continue
        yield path, result


# ----------------------------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------------------------
def user_error_message(error: BaseException) -> str | None:
    """The one-line message for an error a user can fix (None for a bug, which keeps its traceback)."""
    explained = explain_load_error(error, "the checkpoint")
    if explained is not None:
        return _one_line(explained)
    if isinstance(error, (CliError, OSError, ValueError, TypeError)):
        return _one_line(error)
    try:
        import httpx

        if isinstance(error, httpx.HTTPError):
            return f"network error: {_one_line(error)}"
    except ImportError:
        pass
    return None


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"warning: {' '.join(str(message).split())}\n"


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parses `argv` and runs the chosen subcommand: user errors become one line on stderr and exit status 2."""
    args = parser.parse_args(argv)
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


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    # The package's module, not this `__main__` copy: subcommand modules raise `transformers_qwen_audio.cli.CliError`.
    from transformers_qwen_audio.cli import main as package_main

    sys.exit(package_main())
