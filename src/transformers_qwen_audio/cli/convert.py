# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""`qwen-audio convert SRC DST` (also `python -m transformers_qwen_audio.convert`): a released checkpoint to the
native layout, written crash-safely (see `transformers_qwen_audio.convert`)."""

import argparse
import json

from .. import convert as converter
from .common import EXIT_OK, OneLineErrorParser, add_dtype_argument, run_command


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """`convert`'s arguments on `parser`, or on a parser of its own (`python -m transformers_qwen_audio.convert`)."""
    if parser is None:
        parser = OneLineErrorParser(prog="python -m transformers_qwen_audio.convert", description=converter.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="released (or native) Qwen-Audio checkpoint folder, or a Hub repo id")
    parser.add_argument("dst", help="output folder for the native checkpoint")
    add_dtype_argument(parser)
    parser.add_argument("--max-shard-size", default="5GB", help="largest safetensors shard (default 5GB)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if convert wrote it")
    parser.add_argument("--overwrite-any-folder", action="store_true",
                        help="replace DST even if it is not a checkpoint convert wrote (its files are deleted)")
    parser.add_argument("--base-model", metavar="REPO_ID",
                        help="Hub id of the source model for the model card (default: from SRC when known)")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload DST to this Hub repository")
    parser.add_argument("--private", action="store_true", default=None, help="create the Hub repository as private")
    parser.set_defaults(run=run_convert)
    return parser


def add_parser(subcommands) -> argparse.ArgumentParser:
    parser = subcommands.add_parser("convert", help="convert a released checkpoint to the native layout",
                                    description=converter.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    return build_parser(parser)


def run_convert(args: argparse.Namespace) -> int:
    dst = converter.convert(args.src, args.dst, dtype=args.dtype, max_shard_size=args.max_shard_size,
                            overwrite=args.overwrite, push_to_hub=args.push_to_hub, private=args.private,
                            base_model=args.base_model, overwrite_any_folder=args.overwrite_any_folder)
    files = sorted(p.name for p in dst.iterdir())
    print(json.dumps({"converted": str(dst), "files": files}, indent=1))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """`python -m transformers_qwen_audio.convert`."""
    return run_command(build_parser(), argv)
