# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The recipes a user runs without a source checkout: pre-training (`pretrain`), supervised fine-tuning (`sft`) and
evaluation (`evaluate`), each a thin `main(argv)` over `transformers_qwen_audio.training` / `.evaluation`, and the
packaged YAMLs they read: the tiny recipes (`tiny/*.yaml`) and the benchmarks (`benchmarks/*.yaml`), one copy
in the repository, shipped in the wheel. They run the same from a checkout or an installed package:

    python -m transformers_qwen_audio.recipes.pretrain --config "$(python -c 'from transformers_qwen_audio.recipes
    import recipe_path; print(recipe_path("tiny/pretrain.yaml"))')"
    accelerate launch -m transformers_qwen_audio.recipes.sft --config my_sft.yaml
"""

from importlib.resources import files
from pathlib import Path


def recipe_path(relative: str) -> Path:
    """The packaged recipe file or folder `relative` (e.g. `"tiny/pretrain.yaml"`, `"benchmarks/tiny_asr.yaml"`,
    `"benchmarks"`), wherever the package is installed."""
    if not isinstance(relative, str) or not relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise ValueError(f"A packaged recipe is named by a path inside the package such as 'tiny/pretrain.yaml', "
                         f"got {relative!r}.")
    root = Path(str(files(__name__)))
    path = root / relative
    if not path.exists():
        available = sorted(str(item.relative_to(root)) for item in root.rglob("*.yaml"))
        raise FileNotFoundError(f"No packaged recipe {relative!r}; the package has: {', '.join(available)}.")
    return path


__all__ = ["recipe_path"]
