# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
`qwen-audio merge-lora BASE ADAPTER DST`: folds a LoRA adapter (from `recipes/sft.py`) into its base model and writes
a native checkpoint that needs no PEFT to load, with the processor files.

BASE is the checkpoint the adapter was trained on (released or native layout, local folder or Hub id); ADAPTER is the
adapter folder (`adapter_config.json` + `adapter_model.safetensors`); DST is written atomically (a staging folder
moved into place once complete), so a crash never leaves a half-written checkpoint.
"""

import argparse
import json
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoProcessor

# The converter's atomic publishing: locked staging folder next to DST, synced files, DST replaced last.
from ..convert import DTYPES, clean_stale_staging, staged_output


def merge_lora(
    base: str,
    adapter: str,
    dst: str,
    dtype: str = "auto",
    overwrite: bool = False,
    max_shard_size: str = "5GB",
) -> Path:
    """Merges `adapter` into `base` and saves the result to `dst`; returns `dst`."""
    from peft import PeftModel

    adapter_dir, dst = Path(adapter), Path(dst)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir} has no adapter_config.json: give the folder of a PEFT adapter.")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise FileExistsError(f"{dst} exists and is not empty: pass overwrite=True (--overwrite) to replace it")

    model = AutoModelForCausalLM.from_pretrained(base, dtype=DTYPES[dtype], trust_remote_code=False)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    merged.config.name_or_path = ""
    # The adapter folder has the processor files the recipe saved (its chat template included); else the base's.
    processor_source = adapter_dir if (adapter_dir / "processor_config.json").is_file() else base
    processor = AutoProcessor.from_pretrained(processor_source, trust_remote_code=False)

    clean_stale_staging(dst)
    with staged_output(dst) as staging:
        merged.save_pretrained(staging, max_shard_size=max_shard_size)
        processor.save_pretrained(staging)
    return dst


def add_parser(subcommands) -> argparse.ArgumentParser:
    parser = subcommands.add_parser(
        "merge-lora", help="fold a LoRA adapter into its base model (native checkpoint)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("base", help="the checkpoint the adapter was trained on (folder or Hub id)")
    parser.add_argument("adapter", help="the adapter folder (adapter_config.json + adapter_model.safetensors)")
    parser.add_argument("dst", help="output folder for the merged native checkpoint")
    parser.add_argument("--dtype", default="auto", choices=sorted(DTYPES), help="weights dtype (default: as stored)")
    parser.add_argument("--max-shard-size", default="5GB", help="largest safetensors shard (default 5GB)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    parser.set_defaults(run=run_from_args)
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    dst = merge_lora(args.base, args.adapter, args.dst, dtype=args.dtype, overwrite=args.overwrite,
                     max_shard_size=args.max_shard_size)
    print(json.dumps({"merged": str(dst), "files": sorted(path.name for path in dst.iterdir())}, indent=1))
    return 0


__all__ = ["add_parser", "merge_lora"]
