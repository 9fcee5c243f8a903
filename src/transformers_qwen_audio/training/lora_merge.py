# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Folds a LoRA adapter (from `recipes/sft.py`) into its base model and writes a native checkpoint that needs no PEFT to
load, with the processor files (on the command line: `qwen-audio merge-lora BASE ADAPTER DST`).

BASE is the checkpoint the adapter was trained on (released or native layout, local folder or Hub id); ADAPTER is the
adapter folder (`adapter_config.json` + `adapter_model.safetensors`); DST is written atomically (a staging folder
moved into place once complete), so a crash never leaves a half-written checkpoint.
"""

from pathlib import Path

from transformers import AutoModelForCausalLM, AutoProcessor

# Atomic publishing: locked staging folder next to DST, synced files, DST replaced last.
from ..checkpoint_files import DTYPES, clean_stale_staging, dtype_name, staged_output


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
    dtype = dtype_name(dtype)
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise FileExistsError(f"{dst} exists and is not empty: pass overwrite=True (--overwrite) to replace it")

    model = AutoModelForCausalLM.from_pretrained(base, dtype=DTYPES[dtype], trust_remote_code=False)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    merged.config.name_or_path = ""
    # The adapter folder has the processor files the recipe saved (its chat template included); else the base's.
    processor_source = adapter_dir if (adapter_dir / "processor_config.json").is_file() else base
    processor = AutoProcessor.from_pretrained(processor_source, trust_remote_code=False)

    clean_stale_staging(dst, job="merge")
    with staged_output(dst) as staging:
        merged.save_pretrained(staging, max_shard_size=max_shard_size)
        processor.save_pretrained(staging)
    return dst


__all__ = ["merge_lora"]
