# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Supervised fine-tuning of Qwen-Audio / Qwen-Audio-Chat from a source checkout: `python recipes/sft.py --config ...`.

The recipe is `transformers_qwen_audio.recipes.sft` (its docstring has the usage), installed with the package:
`python -m transformers_qwen_audio.recipes.sft`, `accelerate launch -m transformers_qwen_audio.recipes.sft`,
`qwen-audio sft`.
"""

from transformers_qwen_audio.recipes.sft import main


if __name__ == "__main__":
    main()
