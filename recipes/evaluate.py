# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Evaluation of a checkpoint on benchmark YAMLs from a source checkout: `python recipes/evaluate.py --config ...`.

The recipe is `transformers_qwen_audio.recipes.evaluate` (its docstring has the usage), installed with the package:
`python -m transformers_qwen_audio.recipes.evaluate`, `accelerate launch -m transformers_qwen_audio.recipes.evaluate`,
`qwen-audio evaluate`.
"""

from transformers_qwen_audio.recipes.evaluate import main


if __name__ == "__main__":
    main()
