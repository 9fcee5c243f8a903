# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""`qwen-audio web MODEL | --tiny`: the Gradio demo of `transformers_qwen_audio.web_demo` (needs the `[web]` extra)."""

import argparse
import sys
from pathlib import Path

from .. import web_demo
from ..demo import DEFAULT_CHAT_MODEL
from .common import (
    EXIT_OK,
    CliError,
    add_model_loading_arguments,
    add_served_model_arguments,
    check_model_or_tiny,
    load_pipeline,
    model_or_tiny,
    terminate_like_interrupt,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("web", help="Gradio web demo: audio chat, transcription, sound questions",
                                   description=web_demo.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_served_model_arguments(parser, "show")
    parser.add_argument("--port", type=int, default=web_demo.DEFAULT_PORT,
                        help=f"port (default: {web_demo.DEFAULT_PORT})")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs internet)")
    add_model_loading_arguments(parser)
    defaults = web_demo.WebDemoLimits()
    parser.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens,
                        help=f"default reply length in tokens (default: {defaults.max_new_tokens})")
    parser.add_argument("--min-new-tokens", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--max-chat-seconds", type=float, default=defaults.chat_audio_seconds,
                        help=f"longest clip in chat and sound questions (default: {defaults.chat_audio_seconds:g} s)")
    parser.add_argument("--max-transcribe-seconds", type=float, default=defaults.transcribe_audio_seconds,
                        help=f"longest recording to transcribe (default: {defaults.transcribe_audio_seconds:g} s)")
    parser.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size,
                        help=f"transcriptions / sound questions run as one batch (default: {defaults.max_batch_size})")
    parser.add_argument("--batch-wait-ms", type=float, default=defaults.batch_wait_s * 1000,
                        help="how long a request waits for others to batch with (default: %(default)g ms)")
    parser.add_argument("--chat-concurrency", type=int, default=defaults.chat_concurrency,
                        help=f"chat replies streamed at the same time (default: {defaults.chat_concurrency})")
    parser.set_defaults(run=run_web)
    return parser


def _limits(args) -> web_demo.WebDemoLimits:
    try:
        return web_demo.WebDemoLimits(
            chat_audio_seconds=args.max_chat_seconds, transcribe_audio_seconds=args.max_transcribe_seconds,
            max_new_tokens=args.max_new_tokens,
            max_new_tokens_limit=max(args.max_new_tokens, web_demo.WebDemoLimits.max_new_tokens_limit),
            max_batch_size=args.max_batch_size, batch_wait_s=args.batch_wait_ms / 1000,
            chat_concurrency=args.chat_concurrency,
        )
    except ValueError as error:
        raise CliError(str(error).replace("`", "")) from None


def run_web(args, out=None) -> int:
    """Runs the demo until interrupted."""
    out = out or sys.stdout
    check_model_or_tiny(args)
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be between 0 and 65535, got {args.port}")
    limits = _limits(args)
    try:
        import gradio  # noqa: F401
    except ImportError as error:
        raise CliError(f"qwen-audio web needs the [web] extra ({error.name} is missing): "
                       "pip install 'transformers-qwen-audio[web]'") from None

    with terminate_like_interrupt(), model_or_tiny(args) as model:
        random_weights = args.tiny and Path(model) != DEFAULT_CHAT_MODEL
        title = "Qwen-Audio: embedded tiny model (random weights)" if random_weights else f"Qwen-Audio: {model}"
        pipe = load_pipeline(model, device=args.device, dtype=args.dtype)
        generate_kwargs = {} if args.min_new_tokens is None else {"min_new_tokens": args.min_new_tokens}
        demo = web_demo.build_demo(pipe, limits, generate_kwargs, title=title)
        try:
            print(f"Starting the web demo of {model} (Ctrl+C stops)", file=out, flush=True)
            web_demo.launch(demo, host=args.host, port=args.port or None, share=args.share)
        except OSError as error:
            raise CliError(f"cannot start the web demo on {args.host}:{args.port}: {error}") from None
        except KeyboardInterrupt:
            pass
        finally:
            demo.close()
            demo.web_demo.close()
    return EXIT_OK
