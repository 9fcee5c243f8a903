# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
`qwen-audio chat [MODEL] AUDIO... --prompt "..."` answers one question; without `--prompt`, an interactive multi-turn
session starts: `/audio PATH` attaches a clip to the next message, `/reset` starts over, `/quit` (or end of input)
leaves. Without MODEL, the main job's tiny Qwen-Audio-Chat (`qwen-audio-demo/chat`) answers when it is trained, else
one with random weights (`common.demo_chat_model_or_random` says which).
"""

import argparse
import os
import sys

from .common import (
    EXIT_OK,
    CliError,
    add_generation_arguments,
    check_audio_files,
    check_model,
    decode_clip,
    demo_chat_model_or_random,
    generation_kwargs,
    load_pipeline,
    one_line,
)


INTERACTIVE_HELP = "Type a message. /audio PATH attaches a clip to your next message, /reset starts over, /quit leaves."


def add_parser(subcommands) -> argparse.ArgumentParser:
    chat = subcommands.add_parser("chat", help="ask about audio clips (one question, or an interactive session)")
    add_generation_arguments(chat, model_optional=True,
                             model_help=" (default: the main job's chat model, qwen-audio-demo/chat)")
    chat.add_argument("audio", nargs="*", help="audio files attached to the first message")
    chat.add_argument("--prompt", "-p", help="the question; without it, an interactive session starts")
    chat.add_argument("--system", help="system message (default: the original's 'You are a helpful assistant.')")
    chat.set_defaults(run=run_chat)
    return chat


def _user_message(text: str, clips: list[dict]) -> dict:
    parts = [{"type": "audio", "audio": clip} for clip in clips]
    return {"role": "user", "content": parts + [{"type": "text", "text": text}]}


def run_chat(args, out=None) -> int:
    if args.model is not None and os.path.isfile(args.model):  # a checkpoint is a folder: this is the first clip
        args.audio, args.model = [args.model, *args.audio], None
    if args.model is not None:
        return chat_with(args.model, args, out)
    check_audio_files(args.audio)
    with demo_chat_model_or_random() as model:
        return chat_with(model, args, out)


def chat_with(model: str, args, out=None) -> int:
    out = out or sys.stdout
    check_model(model)
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
    pipe = load_pipeline(model, device=args.device, dtype=args.dtype)
    generation = generation_kwargs(args)
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
            print(f"\nerror: {one_line(error)} (message not sent; its clips were dropped).{hint}", file=sys.stderr)
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
