# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Noisy copies of the target timestamps in the decoder's input, for word-timestamp (SRWT) training.

With teacher forcing the decoder always reads the true previous boundary, so the cheapest way to predict the next
one is "previous + a typical word length": measured on the tiny recipe, a model trained so places the first word of
an utterance within 0.02-0.04 s, and every later one worse (0.17 s by the fourth), because at inference its own
errors are carried forward. Shifting the timestamps it *reads* by a random amount, while the labels keep the
true times, makes the previous boundary an unreliable cue and the audio the reliable one, the usual remedy for this
exposure bias short of scheduled sampling (which would need a generation step per training step).
"""

import torch

from ..word_timestamps import TIMESTAMP_STEP_SECONDS, timestamp_token
from .collators import IGNORE_INDEX




def timestamp_token_ids(tokenizer) -> range | None:
    """The ids of `<|0.00|>` ... `<|30.00|>` when the vocabulary has them as one contiguous block (the released one
    and the byte-level one do), else None."""
    ids = tokenizer.convert_tokens_to_ids([timestamp_token(0.0), timestamp_token(30.0)])
    if any(token_id is None or token_id == tokenizer.unk_token_id for token_id in ids):
        return None
    block = range(ids[0], ids[1] + 1)
    if len(block) != 3001 or tokenizer.convert_ids_to_tokens(block.start + 1500) != timestamp_token(15.0):
        return None
    return block


def perturb_timestamp_inputs(
    input_ids: torch.Tensor, labels: torch.Tensor, timestamp_ids: range, std_seconds: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """
    `input_ids` with each learned timestamp (a position whose label is a timestamp token) moved by Gaussian noise of
    `std_seconds`, rounded to the 10 ms grid and kept within 0-30 s. Labels are not touched: the loss still asks for
    the true time, while what later positions read of it is off. Prompt timestamps (`<|0.00|>` after
    `<|timestamps|>`, label -100) stay exact, as they are at inference.
    """
    is_timestamp = (labels >= timestamp_ids.start) & (labels < timestamp_ids.stop) & (labels != IGNORE_INDEX)
    if std_seconds <= 0 or not bool(is_timestamp.any()):
        return input_ids
    # Drawn where the ids are (no host-to-device copy each step); a given generator decides the device.
    device = generator.device if generator is not None else input_ids.device
    noise = torch.randn(input_ids.shape, generator=generator, device=device).to(input_ids.device)
    shift = torch.round(noise * (std_seconds / TIMESTAMP_STEP_SECONDS)).long()
    moved = (input_ids + shift).clamp(timestamp_ids.start, timestamp_ids.stop - 1)
    return torch.where(is_timestamp, moved, input_ids)


__all__ = ["perturb_timestamp_inputs", "timestamp_token_ids"]
