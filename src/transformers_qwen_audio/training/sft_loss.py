# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The SFT loss on devices without Triton.

TRL's `SFTTrainer` computes the loss through a fused LM head (`trl.kernels.chunked_logprob`) that never builds the
logits: a memory saving on a GPU. Without Triton (on CPU) it folds the tiles in torch, over every position rather
than the trained ones, and recomputes them in the backward: on the tiny recipe that was 60 % of a CPU step (32 of
52 s over 60 steps, the model's own forward and backward the rest). There the model's own loss (`Trainer`'s
`compute_loss`: the logits, then the causal-LM cross-entropy over the labels) is the same number for less, and with
the logits of the labelled positions only (`label_positions.keep_logits_at_labels`, as pre-training does: the
assistant replies are a small share of a dialogue's tokens) a step of the tiny SFT recipe takes 0.77x the time
(150 steps: 29.6 s against 38.7 s, the same losses and token accuracies).
"""

import torch
from transformers import Trainer

from .label_positions import keep_logits_at_labels


def fused_lm_head_pays(model) -> bool:
    """Whether TRL's fused LM head runs its Triton kernels here (CUDA); elsewhere the plain loss is faster."""
    return next(model.parameters()).device.type == "cuda"


class PlainLossWithoutTriton:
    """`SFTTrainer` mixin: the model's own causal-LM loss where TRL's fused LM head has no Triton kernels, with the
    token accuracy TRL logs (`mean_token_accuracy`) and its token count; on CUDA, TRL's own loss."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if fused_lm_head_pays(model):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        inputs = {**inputs, "use_cache": False}
        if self.model.training:  # evaluation keeps whole logits: `prediction_step` hands them to `compute_metrics`
            inputs = keep_logits_at_labels(inputs)
        loss, outputs = Trainer.compute_loss(self, model, inputs, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch)
        with torch.no_grad():
            if "shift_labels" in inputs:  # the labelled positions' logits only, beside their shifted labels
                labels, logits = inputs["shift_labels"], outputs.logits.reshape(-1, outputs.logits.shape[-1])
            else:
                labels, logits = inputs["labels"][:, 1:], outputs.logits[:, :-1]
            trained = labels != -100
            correct = (logits.argmax(-1) == labels) & trained
            counts = self.accelerator.gather_for_metrics(torch.stack([trained.sum(), correct.sum()]).reshape(1, 2))
            num_trained, num_correct = counts.sum(0).tolist()
        self._metrics[mode]["mean_token_accuracy"].append(num_correct / num_trained if num_trained else 0.0)
        if mode == "train" and "attention_mask" in inputs:
            self._total_train_tokens += self.accelerator.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return (loss, outputs) if return_outputs else loss


__all__ = ["PlainLossWithoutTriton", "fused_lm_head_pays"]
