# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Hierarchical task prompts of the Qwen-Audio base model, and the plain instructions that ask a chat checkpoint
for the same tasks (word timestamps are `word_timestamps`).

The base (non-chat) model is conditioned by a chain of tags written right after the audio:

    <audio>...</audio> <header> <audio language> <task> <output language> <timestamps?> <output instructions...>

- header: `<|startoftranscript|>` for speech-to-text tasks (transcribe, translate), `<|startofanalysis|>` for
  every other task;
- audio language: `<|en|>`, `<|zh|>`, ... or `<|unknown|>`;
- task: `<|transcribe|>`, `<|translate|>`, `<|caption|>`, `<|keyword|>`, `<|emotion_recognition|>`, ...;
- output language: the language of the answer;
- `<|timestamps|>` or `<|notimestamps|>`; with timestamps the prompt also gives the first one (`<|0.00|>`);
- output instructions: `<|itn|>`/`<|wo_itn|>` (with or without inverse text normalisation) for speech tasks,
  a caption style (`<|caption_clotho|>`, `<|caption_audiocaps|>`, `<|caption_plain|>`, `<|audioset_ontology|>`).

Audio question answering uses `<|startofanalysis|><audio language><|question|>QUESTION<|answer|>`.

Example:

```python
>>> build_task_prompt("transcribe", audio_language="en", itn=False)
'<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>'
>>> build_task_prompt("caption", output_language="en", caption_style="clotho")
'<|startofanalysis|><|unknown|><|caption|><|en|><|notimestamps|><|caption_clotho|>'
```
"""

from .tokenization_qwen_audio import AUDIO_LANGUAGES
from .word_timestamps import timestamp_token


TRANSCRIPT_HEADER = "<|startoftranscript|>"
ANALYSIS_HEADER = "<|startofanalysis|>"

# Output languages additionally include traditional Chinese.
OUTPUT_LANGUAGES = AUDIO_LANGUAGES + ("zh_tr",)
SPEECH_TASKS = ("transcribe", "translate")
# Task name -> task tag of the vocabulary. All of these are answered after `<|startofanalysis|>`.
ANALYSIS_TASKS = {
    "caption": "<|caption|>",
    "keyword": "<|keyword|>",
    "emotion_recognition": "<|emotion_recognition|>",
    "music_description": "<|music_description|>",
    "note_analysis": "<|note_analysis|>",
    "audio_grounding": "<|audio_grounding|>",
    "named_entity_recognition": "<|named_entity_recognition|>",
    "scene": "<|scene|>",
    "event": "<|event|>",
    "vocal_classification": "<|vocal_classification|>",
    "speech_understanding": "<|speech_understanding|>",
    "speaker_meta": "<|speaker_meta|>",
    "song_meta": "<|song_meta|>",
    "speech_edit": "<|speech_edit|>",
}
QUESTION_TASKS = ("question", "aqa")
CAPTION_STYLES = {
    "clotho": "<|caption_clotho|>",
    "audiocaps": "<|caption_audiocaps|>",
    "plain": "<|caption_plain|>",
    "audioset_ontology": "<|audioset_ontology|>",
}
# Tasks whose answers can be aligned in time.
TIMESTAMP_TASKS = SPEECH_TASKS + ("audio_grounding", "event")


def supported_tasks() -> list[str]:
    """Names accepted by `build_task_prompt`."""
    return list(SPEECH_TASKS) + list(ANALYSIS_TASKS) + list(QUESTION_TASKS)


def _language_tag(language: str, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(language, str):
        raise ValueError(f"{what} must be a language code string, got {language!r}.")
    code = language.strip().strip("<|>").lower()
    if code not in allowed:
        raise ValueError(f"Unknown {what} {language!r}; expected one of {', '.join(allowed)}.")
    return f"<|{code}|>"


def build_task_prompt(
    task: str,
    audio_language: str = "unknown",
    output_language: str | None = None,
    timestamps: bool = False,
    itn: bool | None = None,
    caption_style: str | None = None,
    question: str | None = None,
    first_timestamp: float | None = 0.0,
) -> str:
    """
    Builds the tag chain that follows `<audio>...</audio>` in a base-model prompt.

    Args:
        task (`str`):
            One of `supported_tasks()`: `"transcribe"`, `"translate"`, `"caption"`, `"keyword"`, `"question"`
            (alias `"aqa"`), `"emotion_recognition"`, `"music_description"`, `"note_analysis"`,
            `"audio_grounding"`, `"scene"`, `"event"`, `"vocal_classification"`, ...
        audio_language (`str`, *optional*, defaults to `"unknown"`):
            Spoken language of the clip (`"en"`, `"zh"`, `"de"`, `"es"`, `"ko"`, `"fr"`, `"ja"`, `"it"`,
            `"zh_tr"`) or `"unknown"`.
        output_language (`str`, *optional*):
            Language of the answer. Defaults to the audio language for transcription, and to English otherwise.
            Translation needs it explicitly.
        timestamps (`bool`, *optional*, defaults to `False`):
            Ask for word-level timestamps (`<|timestamps|>`), only for tasks that support them.
        itn (`bool`, *optional*):
            Speech tasks only: `True` appends `<|itn|>` (inverse text normalisation: "twenty" -> "20"), `False`
            appends `<|wo_itn|>`, `None` appends neither.
        caption_style (`str`, *optional*):
            Caption task only: `"clotho"`, `"audiocaps"`, `"plain"` or `"audioset_ontology"`.
        question (`str`, *optional*):
            The question of an AQA prompt (required for `task="question"`, refused otherwise).
        first_timestamp (`float`, *optional*, defaults to 0.0):
            With `timestamps=True`, the prompt ends with this first timestamp (as in the original's evaluation);
            `None` leaves it to the model.

    Returns:
        `str`: the prompt tags, e.g. `'<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>'`.
    """
    if not isinstance(task, str):
        raise ValueError(f"`task` must be a string, got {task!r}.")
    task = task.strip().strip("<|>").lower()
    audio_tag = _language_tag(audio_language, ("unknown",) + OUTPUT_LANGUAGES, "audio language")

    if task not in SPEECH_TASKS and itn is not None:
        raise ValueError(f"`itn` (inverse text normalisation) only applies to {SPEECH_TASKS}, not to {task!r}.")
    if task != "caption" and caption_style is not None:
        raise ValueError(f"`caption_style` only applies to the caption task, not to {task!r}.")
    if task not in QUESTION_TASKS and question is not None:
        raise ValueError(f"`question` only applies to the question (AQA) task, not to {task!r}.")
    if timestamps and task not in TIMESTAMP_TASKS:
        raise ValueError(f"`timestamps=True` is only supported for {TIMESTAMP_TASKS}, not for {task!r}.")

    if task in QUESTION_TASKS:
        if not question or not isinstance(question, str):
            raise ValueError("The question (AQA) task needs a non-empty `question` string.")
        if output_language is not None:
            raise ValueError("The question (AQA) task takes no `output_language`: the answer follows `<|answer|>`.")
        return f"{ANALYSIS_HEADER}{audio_tag}<|question|>{question}<|answer|>"

    if task in SPEECH_TASKS:
        header, task_tag = TRANSCRIPT_HEADER, f"<|{task}|>"
        if output_language is None:
            if task == "translate":
                raise ValueError("Translation needs an `output_language`.")
            if audio_tag == "<|unknown|>":
                raise ValueError("Transcription with an unknown audio language needs an `output_language`.")
            output_language = audio_tag.strip("<|>")
    elif task in ANALYSIS_TASKS:
        header, task_tag = ANALYSIS_HEADER, ANALYSIS_TASKS[task]
        if output_language is None:
            output_language = "en"
    else:
        raise ValueError(f"Unknown task {task!r}; supported tasks: {', '.join(supported_tasks())}.")

    output_tag = _language_tag(output_language, OUTPUT_LANGUAGES, "output language")
    tags = [header, audio_tag, task_tag, output_tag, "<|timestamps|>" if timestamps else "<|notimestamps|>"]
    if timestamps and first_timestamp is not None:
        tags.append(timestamp_token(first_timestamp))
    if itn is not None:
        tags.append("<|itn|>" if itn else "<|wo_itn|>")
    if caption_style is not None:
        if caption_style not in CAPTION_STYLES:
            raise ValueError(f"Unknown caption style {caption_style!r}; expected one of {', '.join(CAPTION_STYLES)}.")
        tags.append(CAPTION_STYLES[caption_style])
    return "".join(tags)


LANGUAGE_NAMES = {
    "en": "English",
    "zh": "Chinese",
    "zh_tr": "Traditional Chinese",
    "de": "German",
    "es": "Spanish",
    "ko": "Korean",
    "fr": "French",
    "ja": "Japanese",
    "it": "Italian",
}
# What a chat checkpoint is asked for each task: the base model's task tags mean nothing to it.
CHAT_TASK_INSTRUCTIONS = {
    "transcribe": "Transcribe the speech{language}.",
    "translate": "Translate the speech into {output_language}.",
    "caption": "Describe the audio in one sentence.",
    "keyword": "Give the keywords of the audio.",
    "emotion_recognition": "What emotion does the speaker express?",
    "music_description": "Describe the music.",
    "note_analysis": "Analyse the notes of the music: pitch, velocity and instrument.",
    "audio_grounding": "When do the sounds happen? Give start and end times.",
    "named_entity_recognition": "List the named entities mentioned in the speech.",
    "scene": "What is the acoustic scene?",
    "event": "What sound events can you hear?",
    "vocal_classification": "What kind of vocal sound is this?",
    "speech_understanding": "What is the speech about?",
    "speaker_meta": "Describe the speaker: gender and age.",
    "song_meta": "What song is this? Give its genre and mood.",
    "speech_edit": "Which words of the speech are edited?",
}
TIMESTAMP_INSTRUCTION = " Give the start and end time of every word."


def chat_task_instruction(
    task: str,
    audio_language: str | None = None,
    output_language: str | None = None,
    timestamps: bool = False,
    question: str | None = None,
) -> str:
    """
    The plain instruction that asks a chat checkpoint (Qwen-Audio-Chat) for `task`, e.g. `"Transcribe the speech
    (English)."`; the question itself for `task="question"`. The arguments are those of `build_task_prompt`, and are
    checked by it (same tasks, languages and timestamp support for both kinds of checkpoints).
    """
    if not isinstance(task, str):
        raise ValueError(f"`task` must be a string, got {task!r}.")
    task = task.strip().strip("<|>").lower()
    # A chat checkpoint can transcribe without being told the language; the tags of a base one cannot.
    if not (task == "transcribe" and audio_language is None and output_language is None):
        build_task_prompt(task, audio_language or "unknown", output_language, timestamps, question=question)
    if task in QUESTION_TASKS:
        return question
    spoken = LANGUAGE_NAMES.get((audio_language or "").lower())
    target = LANGUAGE_NAMES.get((output_language or "en").lower(), output_language)
    instruction = CHAT_TASK_INSTRUCTIONS[task].format(language=f" ({spoken})" if spoken else "", output_language=target)
    return instruction + (TIMESTAMP_INSTRUCTION if timestamps else "")


__all__ = ["build_task_prompt", "chat_task_instruction", "supported_tasks"]
