# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Pre-training targets in the released format.

A pre-training example of the base Qwen-Audio model is

    <audio>...</audio> <hierarchical task tags> TARGET <|endoftext|>

with the tags from `task_prompts.build_task_prompt` (the one definition of the tag chains) and, for word-level
timestamps (SRWT), a target from `word_timestamps.format_word_timestamps`:
`<|0.00|><|sil|><|0.54|> word<|0.86|> word<|1.17|>...` (each word after a space, except in languages written
without spaces: `<|0.54|>面<|0.86|>条<|1.17|>`). The released timestamp prompt already ends with the first
timestamp (`...<|timestamps|><|0.00|>`), as at inference, so the target starts with what the model has to predict
after it.

`build_pretraining_example` returns `{"prompt", "completion"}`; the collator (`QwenAudioCollator`, base-model
format) puts the audio span in front, appends `<|endoftext|>` and learns only the completion and `<|endoftext|>`.
A source's text is first brought to the released model's writing (`normalize_text`: LibriSpeech is upper case, the
model writes lower case; AISHELL's transcripts are word-segmented with spaces, which are not in the speech), and
forced alignments lose their empty and `<unk>` words (`aligned_words`).
"""

import re
from dataclasses import dataclass

from ..task_prompts import QUESTION_TASKS, build_task_prompt
from ..word_timestamps import format_word_timestamps, timestamp_token, word_separator, words_as_list


@dataclass
class TaskTags:
    """The hierarchical tags of one data source (the arguments of `build_task_prompt`).

    `caption_style` is the task-specific output tag (`clotho` -> `<|caption_clotho|>`, `audiocaps`, `plain`,
    `audioset_ontology`); the task tag itself covers the others (`scene`, `event`, `keyword`, ...)."""

    task: str = "transcribe"
    # None: the task's released default (`TASK_LAYOUTS`: <|en|> for vocal sounds, emotion and questions, else unknown).
    audio_language: str | None = None
    output_language: str | None = None
    timestamps: bool = False
    itn: bool | None = None
    caption_style: str | None = None

    def prompt(self, question: str | None = None) -> str:
        return build_task_prompt(
            self.task,
            audio_language=self.audio_language,
            output_language=self.output_language,
            timestamps=self.timestamps,
            itn=self.itn,
            caption_style=self.caption_style,
            question=question,
            first_timestamp=0.0,
        )

    def validate(self) -> None:
        """Raises the `build_task_prompt` error for an impossible tag combination, before any data is read."""
        if self.timestamps and (self.itn is not None or self.caption_style is not None):
            # The released timestamp prompts end with the first timestamp (`...<|timestamps|><|0.00|>`), which the
            # SRWT target continues; an output tag after it would split the two.
            raise ValueError("With `timestamps: true` leave `itn` and `caption_style` unset: the released timestamp "
                             "prompts end with `<|timestamps|><|0.00|>`.")
        self.prompt(question="?" if self.task in QUESTION_TASKS else None)


# `text_normalization` steps of a source, applied in the order given.
TEXT_NORMALIZATIONS = {
    "none": lambda text: text,
    "lower": str.lower,
    "remove_spaces": lambda text: re.sub(r"\s+", "", text),
}
# What forced aligners (the Montreal Forced Aligner) write for a word outside their lexicon: no word to learn.
UNKNOWN_WORD = "<unk>"


def normalization_steps(text_normalization) -> tuple[str, ...]:
    """The `text_normalization` option (one step, a list of steps or null) as a tuple, each step checked."""
    steps = (text_normalization,) if isinstance(text_normalization, str) else tuple(text_normalization or ())
    unknown = [step for step in steps if step not in TEXT_NORMALIZATIONS]
    if unknown:
        raise ValueError(f"Unknown `text_normalization` {unknown}; known: {sorted(TEXT_NORMALIZATIONS)}.")
    return steps


def normalize_text(text: str, steps: tuple[str, ...] = ()) -> str:
    for step in steps:
        text = TEXT_NORMALIZATIONS[step](text)
    return text.strip()


def first_reference(text) -> str:
    """A target text, stripped; of several references (Clotho has five captions a clip), the first non-empty one."""
    if isinstance(text, (list, tuple)):
        text = next((item for item in text if isinstance(item, str) and item.strip()), "")
    if text is not None and not isinstance(text, str):
        raise TypeError(f"a target text must be a string (or a list of strings), got {type(text).__name__} {text!r}; "
                        "a column of class ids needs its ClassLabel names")
    return (text or "").strip()


def aligned_words(words, steps: tuple[str, ...] = ()) -> list[dict]:
    """The words of a forced alignment with their text normalised, without the empty words (silences) and the
    `<unk>` words an aligner writes: neither is a word the model could learn to write."""
    kept = []
    for word in words_as_list(words):
        text = word.get("text", word.get("word")) if isinstance(word, dict) else None
        if isinstance(text, str):
            text = normalize_text(text, steps)
            if not text or text == UNKNOWN_WORD:
                continue
            word = {**word, "text": text}
        kept.append(word)
    return kept


def build_pretraining_example(
    tags: TaskTags,
    text: str | None = None,
    words=None,
    question: str | None = None,
    duration: float | None = None,
    text_normalization: tuple[str, ...] = (),
) -> dict:
    """
    The prompt (task tags) and completion (target) of one pre-training example, in the released format.

    Args:
        tags ([`TaskTags`]): the source's tags.
        text (`str` or `list[str]`, *optional*): the target text (transcript, translation, caption, answer, ...);
            of a list of references, the first non-empty one.
        words (`list[dict]`, *optional*): with `tags.timestamps`, the words with their times
            (`{"text"|"word", "start", "end"}`); they become the SRWT target.
        question (`str`, *optional*): the question of an AQA source.
        duration (`float`, *optional*): the clip's length; with timestamps, trailing silence up to it is
            `<|sil|><|end|>` as in the released outputs.
        text_normalization (`tuple[str]`, *optional*): `normalization_steps` applied to the target (the text, or
            each word with timestamps).

    Returns:
        `dict` with `prompt` and `completion` (an empty completion means "nothing to learn": filter it out).
    """
    prompt = tags.prompt(question=question)
    if tags.timestamps:
        words = aligned_words(words, text_normalization)
        if not words:
            return {"prompt": prompt, "completion": ""}
        end_time = None if duration is None else min(duration, 30.0)
        target = format_word_timestamps(words, end_time=end_time, word_prefix=word_separator(tags.audio_language))
        first = timestamp_token(0.0)  # already the last token of the prompt
        return {"prompt": prompt, "completion": target[len(first) :]}
    return {"prompt": prompt, "completion": normalize_text(first_reference(text), text_normalization)}


__all__ = [
    "TEXT_NORMALIZATIONS",
    "TaskTags",
    "aligned_words",
    "build_pretraining_example",
    "first_reference",
    "normalization_steps",
    "normalize_text",
]
