# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
`qwen-audio`: chat with, transcribe with, convert, train, evaluate and serve Qwen-Audio checkpoints.

    qwen-audio chat MODEL AUDIO... --prompt "What does the person say?"   # one question
    qwen-audio chat MODEL [AUDIO...]                                      # interactive, multi-turn
    qwen-audio transcribe MODEL AUDIO... --language en [--timestamps] [--output srt|vtt|json|txt] [--output-dir DIR]
    qwen-audio convert SRC DST [--dtype bfloat16]
    qwen-audio merge-lora BASE ADAPTER DST
    qwen-audio pretrain | sft | evaluate --config RECIPE.yaml [...]         # the recipes (--help: their options)
    qwen-audio serve MODEL [--host 127.0.0.1] [--port 8000]                # OpenAI-compatible server ([serve] extra)
    qwen-audio web MODEL                                                  # Gradio demo ([web] extra)
    qwen-audio demo                                                       # the main job on a tiny model

MODEL is a local folder (native or released layout) or a Hub repo id. AUDIO is a file; http(s) URLs are downloaded
only with `--allow-urls` (with a size cap and a timeout, see `audio_io`). In the interactive chat, `/audio PATH`
attaches a clip to the next message, `/reset` starts over, `/quit` (or end of input) leaves.

Errors (missing file, bad model path, bad option, corrupted checkpoint, ...) print one line and exit with status 2.
`transcribe` goes on past files that fail (one line each) and exits with status 1 when some failed, 2 when all did.
"""

import argparse

from .. import __version__
from . import chat, convert, demo, evaluate, merge_lora, pretrain, serve, sft, transcribe, web
from .common import OneLineErrorParser, run_command


# One module per command, in the order `qwen-audio --help` lists them.
COMMANDS = (chat, transcribe, convert, merge_lora, pretrain, sft, evaluate, serve, web, demo)


def build_parser() -> argparse.ArgumentParser:
    """The `qwen-audio` parser. Each command module registers itself with `add_parser(subcommands)`, which sets
    `run=<function(args) -> exit status>` as a default; add a command with its module in `COMMANDS`."""
    parser = OneLineErrorParser(prog="qwen-audio", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version_text())
    subcommands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subcommands)
    return parser


def version_text() -> str:
    import torch
    import transformers

    return f"qwen-audio (transformers-qwen-audio) {__version__}, transformers {transformers.__version__}, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)
