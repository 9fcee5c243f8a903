# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Training logits at the labelled positions only.

In pre-training only the target and `<|endoftext|>` are learned: on the tiny recipe about 12 % of the positions of
a batch (the audio span and the task tags are most of each row). transformers' causal-LM loss still projects every
position onto the vocabulary and runs the log-softmax over all of them, which was half of a training step there
(profiled: `lm_head` and the cross-entropy over a [batch x sequence, 3,778] tensor). transformers 5 lets a model
keep the logits of a boolean mask (`logits_to_keep`, 2D bool: flattened to the kept positions, as packed training
does) and lets its loss take labels already shifted (`shift_labels`); together they give the same loss and
gradients while computing about an eighth of the logits.
"""

import torch

from .collators import IGNORE_INDEX


def keep_logits_at_labels(inputs: dict) -> dict:
    """`inputs` with `logits_to_keep` (a boolean mask of the positions whose next token is a label) and the matching
    `shift_labels`; unchanged when they carry no `labels` or already choose their logits."""
    labels = inputs.get("labels")
    if labels is None or "logits_to_keep" in inputs or "shift_labels" in inputs:
        return inputs
    # Position t predicts token t + 1: the causal-LM shift, as ForCausalLMLoss does it.
    shifted = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    keep = shifted != IGNORE_INDEX
    return {**inputs, "logits_to_keep": keep, "shift_labels": shifted[keep]}


__all__ = ["keep_logits_at_labels"]
