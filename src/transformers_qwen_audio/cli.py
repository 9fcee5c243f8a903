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

MODEL is a local folder (native or released layout) or a Hub repo id. In the interactive chat, `/audio PATH`
attaches a clip to the next message, `/reset` starts over, `/quit` (or end of input) leaves.
Errors (missing file, bad model path, bad option) print one line and exit with status 2.
"""

import argparse
import os
import sys

from . import convert as convert_module
from . import serving
from . import web_demo


EXIT_USAGE_ERROR = 2
INTERACTIVE_HELP = "Type a message. /audio PATH attaches a clip to your next message, /reset starts over, /quit leaves."


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 400 else text[:397] + "..."


def check_model(model: str) -> None:
    """Fails fast, before loading anything, on a local model path that cannot be a checkpoint."""
    looks_local = os.path.isabs(model) or model.startswith((".", "~")) or os.path.exists(model) or model.count("/") > 1
    if not looks_local:
        return  # a Hub repo id: from_pretrained says whether it can be reached
    path = os.path.expanduser(model)
    if not os.path.isdir(path):
        raise CliError(f"model folder not found: {model}")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise CliError(f"{model} is not a checkpoint folder (no config.json)")


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

    register_pipeline()
    try:
        return pipeline("audio-chat", model=model, device=device, dtype=dtype, **kwargs)
    except (OSError, ValueError) as error:
        raise CliError(f"could not load model {model}: {_one_line(error)}") from None


def _generation_kwargs(args) -> dict:
    kwargs = {}
    if args.max_new_tokens is not None:
        kwargs["max_new_tokens"] = args.max_new_tokens
    if args.min_new_tokens is not None:
        kwargs["min_new_tokens"] = args.min_new_tokens
    if args.greedy:
        kwargs["do_sample"] = False
    return kwargs


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint folder (native or released layout) or Hub repo id")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: first GPU, else CPU)")
    parser.add_argument("--dtype", default="auto", help="float32, bfloat16, float16 or auto (default: as stored)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="longest reply, in tokens")
    parser.add_argument("--min-new-tokens", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of the checkpoint's sampling")
    parser.add_argument("--long-audio", choices=("truncate", "chunk"), default=None,
                        help="clips over 30 s: keep the first 30 s (truncate) or use every 30 s window (chunk)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwen-audio", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="{chat,transcribe,convert,serve,web}")

    chat = subcommands.add_parser("chat", help="ask about audio clips (one question, or an interactive session)")
    _add_common_arguments(chat)
    chat.add_argument("audio", nargs="*", help="audio files attached to the first message")
    chat.add_argument("--prompt", "-p", help="the question; without it, an interactive session starts")
    chat.add_argument("--system", help="system message (default: the original's 'You are a helpful assistant.')")

    transcribe = subcommands.add_parser("transcribe", help="speech to text, optionally with word timestamps")
    _add_common_arguments(transcribe)
    transcribe.add_argument("audio", nargs="+", help="audio files")
    transcribe.add_argument("--language", "-l", default="en", help="spoken language: en, zh, de, es, ko, fr, ja, it")
    transcribe.add_argument("--task", default="transcribe", choices=("transcribe", "translate"))
    transcribe.add_argument("--output-language", help="language of a translation")
    transcribe.add_argument("--timestamps", action="store_true", help="word-level timestamps")
    transcribe.add_argument("--output", "-o", choices=("txt", "srt", "vtt", "json"), default="txt",
                            help="output format (srt/vtt imply --timestamps)")
    transcribe.add_argument("--output-dir", help="write one file per input here instead of printing")
    transcribe.add_argument("--batch-size", type=int, default=1, help="files transcribed together")
    transcribe.add_argument("--chat-format", choices=("chatml", "raw"),
                            help="force a chat (chatml) or base (raw) prompt; default: from the checkpoint")
    transcribe.add_argument("--no-progress", action="store_true", help="no progress bar")

    convert = subcommands.add_parser("convert", help="convert a released checkpoint to the native layout",
                                     description=convert_module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    convert_module.build_parser(convert)
    serving.add_parser(subcommands)
    web_demo.add_parser(subcommands)
    return parser


# ----------------------------------------------------------------------------------------------------------------
# chat
# ----------------------------------------------------------------------------------------------------------------
def _user_message(text: str, audio_paths: list[str]) -> dict:
    parts = [{"type": "audio", "path": path} for path in audio_paths]
    return {"role": "user", "content": parts + [{"type": "text", "text": text}]}


def run_chat(args, out=None) -> int:
    out = out or sys.stdout
    check_model(args.model)
    check_audio_files(args.audio)
    pipe = load_pipeline(args.model, device=args.device, dtype=args.dtype)
    generation = _generation_kwargs(args)
    if args.long_audio:
        generation["long_audio"] = args.long_audio
    system = [{"role": "system", "content": args.system}] if args.system else []

    if args.prompt is not None:
        messages = system + [_user_message(args.prompt, args.audio)]
        reply = pipe(messages, return_full_text=False, **generation)[0]["generated_text"]
        print(reply, file=out)
        return 0

    # Interactive session: the conversation grows turn by turn; clips attach to the next user message.
    messages = list(system)
    pending_audio = list(args.audio)
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
            messages, pending_audio = list(system), []
            print("(conversation cleared)", file=out)
            continue
        if line.startswith("/audio"):
            path = line[len("/audio"):].strip()
            try:
                if not path:
                    raise CliError("usage: /audio PATH")
                check_audio_files([path])
            except CliError as error:
                print(f"error: {error}", file=sys.stderr)
                continue
            pending_audio.append(path)
            print(f"(attached {path})", file=out)
            continue
        if line.startswith("/"):
            print(f"error: unknown command {line.split()[0]}. {INTERACTIVE_HELP}", file=sys.stderr)
            continue
        candidate = messages + [_user_message(line, pending_audio)]
        print("assistant> ", end="", file=out, flush=True)
        try:
            reply = "".join(_echo(pipe.stream(candidate, **generation), out))
        except (FileNotFoundError, ValueError, TypeError) as error:
            print(f"\nerror: {_one_line(error)}", file=sys.stderr)
            continue
        print(file=out)
        messages = candidate + [{"role": "assistant", "content": reply}]
        pending_audio = []
    return 0


def _echo(pieces, out):
    for piece in pieces:
        print(piece, end="", file=out, flush=True)
        yield piece


# ----------------------------------------------------------------------------------------------------------------
# transcribe
# ----------------------------------------------------------------------------------------------------------------
def run_transcribe(args, out=None) -> int:
    from . import subtitles

    out = out or sys.stdout
    if args.batch_size < 1:
        raise CliError("--batch-size must be at least 1")
    check_model(args.model)
    check_audio_files(args.audio)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    timestamps = args.timestamps or args.output in ("srt", "vtt")
    pipe = load_pipeline(args.model, device=args.device, dtype=args.dtype)
    call_kwargs = {"task": args.task, "language": args.language, **_generation_kwargs(args)}
    if args.output_language:
        call_kwargs["output_language"] = args.output_language
    if timestamps:
        call_kwargs["return_timestamps"] = "word"
    if args.long_audio:
        call_kwargs["long_audio"] = args.long_audio
    if args.chat_format:
        call_kwargs["chat_format"] = args.chat_format

    from tqdm.auto import tqdm

    show_progress = not args.no_progress and len(args.audio) > 1
    progress = tqdm(total=len(args.audio), desc="transcribing", unit="file", disable=not show_progress, file=sys.stderr)
    for start in range(0, len(args.audio), args.batch_size):
        paths = args.audio[start : start + args.batch_size]
        results = pipe(paths, batch_size=args.batch_size, **call_kwargs)
        for path, result in zip(paths, results):
            rendered = subtitles.render(result, args.output)
            if args.output_dir:
                stem = os.path.splitext(os.path.basename(path))[0]
                target = os.path.join(args.output_dir, f"{stem}.{args.output}")
                with open(target, "w", encoding="utf-8") as file:
                    file.write(rendered)
                progress.write(target, file=out)
            else:
                if len(args.audio) > 1:
                    print(f"==> {path} <==", file=out)
                print(rendered.rstrip("\n"), file=out)
        progress.update(len(paths))
    progress.close()
    return 0


def run_convert(args, out=None) -> int:
    return convert_module.run_from_args(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    runner = {"chat": run_chat, "transcribe": run_transcribe, "convert": run_convert, "serve": serving.run_serve,
              "web": web_demo.run_web}[args.command]
    try:
        return runner(args)
    except (CliError, FileNotFoundError, FileExistsError, ValueError, TypeError, OSError) as error:
        print(f"qwen-audio {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
