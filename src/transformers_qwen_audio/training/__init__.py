# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""Training utilities for Qwen-Audio: data collators for TRL's `SFTTrainer` and the recipes in `recipes/`."""

from .collators import IGNORE_INDEX, QwenAudioChatCollator


__all__ = ["IGNORE_INDEX", "QwenAudioChatCollator"]
