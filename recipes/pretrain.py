# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Multitask pre-training of Qwen-Audio from a source checkout: `python recipes/pretrain.py --config ...`.

The recipe is `transformers_qwen_audio.recipes.pretrain` (its docstring has the usage), installed with the package:
`python -m transformers_qwen_audio.recipes.pretrain`, `accelerate launch -m transformers_qwen_audio.recipes.pretrain`,
`qwen-audio pretrain`.
"""

from transformers_qwen_audio.recipes.pretrain import main


if __name__ == "__main__":
    main()
