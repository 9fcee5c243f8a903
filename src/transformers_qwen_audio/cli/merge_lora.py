# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""`qwen-audio merge-lora BASE ADAPTER DST`: a LoRA adapter folded into its base model (see
`transformers_qwen_audio.training.lora_merge`)."""

import argparse
import json

from ..training import lora_merge
from .common import EXIT_OK, add_dtype_argument


def add_parser(subcommands) -> argparse.ArgumentParser:
    parser = subcommands.add_parser(
        "merge-lora", help="fold a LoRA adapter into its base model (native checkpoint)",
        description=lora_merge.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("base", help="the checkpoint the adapter was trained on (folder or Hub id)")
    parser.add_argument("adapter", help="the adapter folder (adapter_config.json + adapter_model.safetensors)")
    parser.add_argument("dst", help="output folder for the merged native checkpoint")
    add_dtype_argument(parser)
    parser.add_argument("--max-shard-size", default="5GB", help="largest safetensors shard (default 5GB)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    parser.set_defaults(run=run_merge_lora)
    return parser


def run_merge_lora(args: argparse.Namespace) -> int:
    dst = lora_merge.merge_lora(args.base, args.adapter, args.dst, dtype=args.dtype, overwrite=args.overwrite,
                                max_shard_size=args.max_shard_size)
    print(json.dumps({"merged": str(dst), "files": sorted(path.name for path in dst.iterdir())}, indent=1))
    return EXIT_OK
