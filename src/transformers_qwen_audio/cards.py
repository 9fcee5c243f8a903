# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""Model cards rendered from the Jinja templates of `model_cards/`, as TRL renders its trainers' cards.

The templates are package data (so an installed wheel has them) filled by `huggingface_hub.ModelCard.from_template`:
the card's metadata comes from a `ModelCardData` (`{{ card_data }}` in the template, and every metadata field is also a
template variable), the text from the keyword fields.

- `converted.md`: the card `convert` writes into a native checkpoint;
- `evaluated.md`: the card the evaluation writes into a checkpoint that has none (the results in its `model-index`).
"""

from importlib import resources

import jinja2
import jinja2.meta
from huggingface_hub import ModelCard, ModelCardData


TEMPLATES = resources.files("transformers_qwen_audio").joinpath("model_cards")


def template_names() -> list[str]:
    """The names `render_card` accepts: the templates shipped in `model_cards/`, without `.md`."""
    return sorted(entry.name.removesuffix(".md") for entry in TEMPLATES.iterdir() if entry.name.endswith(".md"))


def render_card(template_name: str, card_data: ModelCardData, **fields) -> ModelCard:
    """A `huggingface_hub.ModelCard` from the template `model_cards/<template_name>.md`, its metadata from
    `card_data` (a `ModelCardData`) and its text from `fields`."""
    if not isinstance(card_data, ModelCardData):
        raise TypeError(f"card_data must be a huggingface_hub.ModelCardData, got {type(card_data).__name__}")
    names = template_names()
    if template_name not in names:
        raise ValueError(f"No model card template {template_name!r}; the templates are: {', '.join(names)}")
    text = TEMPLATES.joinpath(f"{template_name}.md").read_text(encoding="utf-8")
    # Jinja renders a missing variable as nothing: a card with holes in it. Metadata left out of `card_data` (None, or
    # `model_name`, which only names the model-index) is a template variable only when given as a field.
    needed = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(text))
    missing = sorted(needed - {"card_data"} - set(card_data.to_dict()) - set(fields))
    if missing:
        raise ValueError(f"The model card template {template_name!r} needs the fields: {', '.join(missing)}")
    return ModelCard.from_template(card_data, template_str=text, **fields)


__all__ = ["render_card", "template_names"]
