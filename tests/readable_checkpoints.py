"""Tiny released checkpoints whose random replies are readable: the serving and web-demo tests read their output."""

import shutil
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM



def limit_output_head(folder: Path, keep_token_ids) -> Path:
    """
    Zeroes every row of the output head of the released-layout checkpoint in `folder` outside `keep_token_ids`, so
    that those tokens (end of text included) are practically never chosen: random weights otherwise mostly pick
    special tokens (decoded to nothing) or lone UTF-8 bytes. The weights are written back in the released layout.
    """
    model = AutoModelForCausalLM.from_pretrained(folder)
    keep = torch.zeros(model.lm_head.weight.shape[0], dtype=torch.bool)
    keep[list(keep_token_ids)] = True
    with torch.no_grad():
        model.lm_head.weight[~keep] = 0
    staging = folder.parent / f"{folder.name}-weights"
    model.save_pretrained(staging, save_original_format=True)
    for weights in staging.glob("*.safetensors"):
        shutil.copy(weights, folder / weights.name)
    shutil.rmtree(staging)
    return folder
