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
"""

from dataclasses import dataclass

from ..task_prompts import QUESTION_TASKS, build_task_prompt
from ..word_timestamps import format_word_timestamps, timestamp_token, word_separator, words_as_list


@dataclass
class TaskTags:
    """The hierarchical tags of one data source (the arguments of `build_task_prompt`).

    `caption_style` is the task-specific output tag (`clotho` -> `<|caption_clotho|>`, `audiocaps`, `plain`,
    `audioset_ontology`); the task tag itself covers the others (`scene`, `event`, `keyword`, ...)."""

    task: str = "transcribe"
    audio_language: str = "unknown"
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


def first_reference(text) -> str:
    """A target text, stripped; of several references (Clotho has five captions a clip), the first non-empty one."""
    if isinstance(text, (list, tuple)):
        text = next((item for item in text if isinstance(item, str) and item.strip()), "")
    return (text or "").strip()


def build_pretraining_example(
    tags: TaskTags,
    text: str | None = None,
    words=None,
    question: str | None = None,
    duration: float | None = None,
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

    Returns:
        `dict` with `prompt` and `completion` (an empty completion means "nothing to learn": filter it out).
    """
    prompt = tags.prompt(question=question)
    if tags.timestamps:
        words = words_as_list(words)
        if not words:
            return {"prompt": prompt, "completion": ""}
        end_time = None if duration is None else min(duration, 30.0)
        target = format_word_timestamps(words, end_time=end_time, word_prefix=word_separator(tags.audio_language))
        first = timestamp_token(0.0)  # already the last token of the prompt
        return {"prompt": prompt, "completion": target[len(first) :]}
    return {"prompt": prompt, "completion": first_reference(text)}


__all__ = ["TaskTags", "build_pretraining_example", "first_reference"]
