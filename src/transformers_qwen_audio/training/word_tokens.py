# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Words given a token of their own before fine-tuning a trained model.

A model pre-trained with a byte-level tokenizer (the main job's stage 1) reads and writes every character of a
dialogue as a token: on the tiny chat dialogues the system prompt, the questions and the replies' fixed wording
("You are a helpful assistant.", "Find the start time and end time of the word", "seconds") were 70 % of a
dialogue's 263 tokens, and the decoder's cost grows with them. `add_word_tokens` appends one token per word to the
tokenizer (transformers' added tokens: ids after every existing one, so no id the model knows moves) and to the
embeddings, each new row initialised as the mean of the rows of the tokens the word was split into, input and
output alike; fine-tuning then learns them. On the tiny recipe, 59 words made a dialogue 30 % shorter
(docs/main_job.md).

An added token is matched wherever its text occurs, inside longer words too: leave out a word that occurs inside
what the base model was trained to write (the tiny recipe keeps out anything inside the 40 spoken words and the
sound labels, so transcripts and labels are still written letter by letter, as stage 1 taught).
"""

import torch
from tokenizers import AddedToken


def check_words(words) -> list[str]:
    if isinstance(words, str) or not isinstance(words, (list, tuple)):
        raise TypeError(f"`add_word_tokens` must be a list of words, got {type(words).__name__}.")
    for word in words:
        if not isinstance(word, str) or not word or word != word.strip() or any(ch.isspace() for ch in word):
            raise ValueError(f"`add_word_tokens` holds {word!r}: each entry must be one word, without spaces.")
    duplicated = sorted({word for word in words if words.count(word) > 1})
    if duplicated:
        raise ValueError(f"`add_word_tokens` names these words more than once: {duplicated}.")
    return list(words)


def add_word_tokens(model, processor, words) -> list[str]:
    """Gives each of `words` one token in `processor`'s tokenizer and a row in `model`'s input and output
    embeddings (the mean of the rows of the tokens it was split into). Words that already are one token are left
    as they are. Returns the words added, in the order of their new ids."""
    tokenizer = getattr(processor, "tokenizer", processor)
    added, pieces = [], {}
    for word in check_words(words):
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(ids) > 1:
            added.append(word)
            pieces[word] = ids
    if not added:
        return []
    tokenizer.add_tokens([AddedToken(word, normalized=False, special=False) for word in added])
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    embeddings = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight is not embeddings[0]:
        embeddings.append(output.weight)
    with torch.no_grad():
        for word in added:
            token_id = tokenizer.convert_tokens_to_ids(word)
            for weight in embeddings:
                weight[token_id] = weight[pieces[word]].mean(0)
    return added


__all__ = ["add_word_tokens"]
