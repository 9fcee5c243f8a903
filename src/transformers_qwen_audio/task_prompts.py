# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The released prompt layout of Qwen-Audio's tasks, as one table (`TASK_LAYOUTS`), and the plain instructions that
ask a chat checkpoint for the same tasks (word timestamps are `word_timestamps`).

The base (non-chat) model is conditioned by a chain of tags written right after the audio:

    <audio>...</audio> <header> <audio language> <task tag> <output language> <timestamps tag>
                       <output instruction> <itn | caption style> [<first timestamp>]

- header: `<|startoftranscript|>` for speech-to-text (transcribe, translate), `<|startofanalysis|>` otherwise;
- audio language: `<|en|>`, `<|zh|>`, ... or `<|unknown|>` (each task has the default the original evaluates with);
- task tag: only the four the released tokenizer groups as task tags, `<|transcribe|>`, `<|translate|>`,
  `<|caption|>`, `<|keyword|>` (audio question answering has its own form, below);
- output language: the language of the answer;
- `<|timestamps|>` or `<|notimestamps|>`;
- output instruction: what kind of answer, for the analysis tasks that are not plain captions or keywords:
  `<|scene|>`, `<|event|>`, `<|vocal_classification|>`, `<|emotion_recognition|>`, `<|note_analysis|>`, ...
  (the tokenizer's "output instruction" group);
- then `<|itn|>`/`<|wo_itn|>` (speech tasks) or a caption style (`<|caption_clotho|>`, `<|caption_audiocaps|>`,
  `<|caption_plain|>`, `<|audioset_ontology|>`);
- with timestamps, the prompt ends with the first timestamp (`<|0.00|>`), which the answer continues.

Audio question answering is `<|startofanalysis|><audio language><|question|>QUESTION<|answer|>`.

Which forms the original code confirms: every `TaskLayout` has a `source`. Those naming `eval_audio/evaluate_*.py`
of QwenLM/Qwen-Audio are equal byte for byte to the prompts of those scripts (transcribe, SRWT, translate, caption,
scene, vocal_classification, emotion_recognition, note_analysis, question; tests/test_task_prompts.py compares them).
The others have no evaluation script; their forms are inferred from the released tokenizer's grouping
(`tokenization_qwen.py`: the tag is an output instruction, so it follows the timestamps tag behind one of the four
task tags: `<|caption|>` for free descriptions, `<|keyword|>` for labels), and say so in their `source`.

```python
>>> build_task_prompt("transcribe", audio_language="en", itn=False)
'<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>'
>>> build_task_prompt("scene")
'<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|scene|>'
```
"""

from dataclasses import dataclass

from .tokenization_qwen_audio import AUDIO_LANGUAGES
from .word_timestamps import timestamp_token


TRANSCRIPT_HEADER = "<|startoftranscript|>"
ANALYSIS_HEADER = "<|startofanalysis|>"
# The four task tags of the released tokenizer; everything else that names a task is an output instruction.
RELEASED_TASK_TAGS = ("<|translate|>", "<|transcribe|>", "<|caption|>", "<|keyword|>")
# Output languages additionally include traditional Chinese.
OUTPUT_LANGUAGES = AUDIO_LANGUAGES + ("zh_tr",)
CAPTION_STYLES = {
    "clotho": "<|caption_clotho|>",
    "audiocaps": "<|caption_audiocaps|>",
    "plain": "<|caption_plain|>",
    "audioset_ontology": "<|audioset_ontology|>",
}
CONFIRMED = "QwenLM/Qwen-Audio eval_audio/"
INFERRED = "inferred from tokenization_qwen.py (an output instruction after a task tag); no evaluation script"


@dataclass(frozen=True)
class TaskLayout:
    """How the released model is asked for one task, and how a chat checkpoint is asked for it."""

    header: str
    # One of RELEASED_TASK_TAGS, or `<|question|>` (AQA).
    task_tag: str
    # The tag after the timestamps tag (`<|scene|>`, ...); None for transcribe, translate, caption and keyword.
    output_instruction: str | None
    # Default of the audio-language slot; None: the caller must name it (speech tasks).
    audio_language: str | None
    # What may follow: "timestamps", "itn" (speech tasks), "caption_style" (caption).
    options: tuple[str, ...]
    # The inverse-text-normalisation tag the original asks with (`<|wo_itn|>` to transcribe, `<|itn|>` to translate).
    itn_default: bool | None
    # What a chat checkpoint is asked: the base model's tags mean nothing to it.
    chat_instruction: str
    # Where the form comes from: an evaluation script of the original, or how it was inferred.
    source: str


TASK_LAYOUTS = {
    "transcribe": TaskLayout(TRANSCRIPT_HEADER, "<|transcribe|>", None, None, ("timestamps", "itn"), False,
                             "Transcribe the speech{language}.",
                             CONFIRMED + "evaluate_asr.py, evaluate_srwt.py"),
    "translate": TaskLayout(TRANSCRIPT_HEADER, "<|translate|>", None, None, ("timestamps", "itn"), True,
                            "Translate the speech into {output_language}.",
                            CONFIRMED + "evaluate_st.py (timestamps inferred)"),
    "caption": TaskLayout(ANALYSIS_HEADER, "<|caption|>", None, "unknown", ("caption_style",), None,
                          "Describe the audio in one sentence.", CONFIRMED + "evaluate_caption.py"),
    "keyword": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", None, "unknown", (), None,
                          "Give the keywords of the audio.", "the tokenizer's task tag; no evaluation script"),
    "scene": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", "<|scene|>", "unknown", (), None,
                        "What is the acoustic scene?", CONFIRMED + "evaluate_scene.py"),
    "vocal_classification": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", "<|vocal_classification|>", "en", (), None,
                                       "What kind of vocal sound is this?", CONFIRMED + "evaluate_vocal_sound.py"),
    "emotion_recognition": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", "<|emotion_recognition|>", "en", (), None,
                                      "What emotion does the speaker express?", CONFIRMED + "evaluate_emotion.py"),
    "note_analysis": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", "<|note_analysis|>", "unknown", (), None,
                                "Analyse the notes of the music: pitch, velocity and instrument.",
                                CONFIRMED + "evaluate_note_analysis.py"),
    "event": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", "<|event|>", "unknown", ("timestamps",), None,
                        "What sound events can you hear?", INFERRED),
    "audio_grounding": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", "<|audio_grounding|>", "unknown", ("timestamps",),
                                  None, "When do the sounds happen? Give start and end times.", INFERRED),
    "music_description": TaskLayout(ANALYSIS_HEADER, "<|caption|>", "<|music_description|>", "unknown", (), None,
                                    "Describe the music.", INFERRED),
    "named_entity_recognition": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", "<|named_entity_recognition|>", "unknown",
                                           (), None, "List the named entities mentioned in the speech.", INFERRED),
    "speech_understanding": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", "<|speech_understanding|>", "unknown", (),
                                       None, "What is the speech about?", INFERRED),
    "speaker_meta": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", "<|speaker_meta|>", "unknown", (), None,
                               "Describe the speaker: gender and age.", INFERRED),
    "song_meta": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", "<|song_meta|>", "unknown", (), None,
                            "What song is this? Give its genre and mood.", INFERRED),
    "speech_edit": TaskLayout(ANALYSIS_HEADER, "<|keyword|>", "<|speech_edit|>", "unknown", (), None,
                              "Which words of the speech are edited?", INFERRED),
    "question": TaskLayout(ANALYSIS_HEADER, "<|question|>", None, "en", (), None, "{question}",
                           CONFIRMED + "evaluate_aqa.py"),
}
TASK_ALIASES = {"aqa": "question"}
SPEECH_TASKS = tuple(name for name, layout in TASK_LAYOUTS.items() if layout.header == TRANSCRIPT_HEADER)
QUESTION_TASKS = ("question", *TASK_ALIASES)
# Tasks whose answers can be aligned in time.
TIMESTAMP_TASKS = tuple(name for name, layout in TASK_LAYOUTS.items() if "timestamps" in layout.options)


def supported_tasks() -> list[str]:
    """Names accepted by `build_task_prompt` (and the pipeline's `task=`)."""
    return list(TASK_LAYOUTS) + list(TASK_ALIASES)


def task_layout(task: str) -> tuple[str, TaskLayout]:
    """The canonical task name and its `TaskLayout`; `ValueError` naming the supported tasks otherwise."""
    if not isinstance(task, str):
        raise ValueError(f"`task` must be a string, got {task!r}.")
    name = task.strip().strip("<|>").lower()
    name = TASK_ALIASES.get(name, name)
    if name not in TASK_LAYOUTS:
        raise ValueError(f"Unknown task {task!r}; supported tasks: {', '.join(supported_tasks())}.")
    return name, TASK_LAYOUTS[name]


def _language_tag(language: str, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(language, str):
        raise ValueError(f"{what} must be a language code string, got {language!r}.")
    code = language.strip().strip("<|>").lower()
    if code not in allowed:
        raise ValueError(f"Unknown {what} {language!r}; expected one of {', '.join(allowed)}.")
    return f"<|{code}|>"


def build_task_prompt(
    task: str,
    audio_language: str | None = None,
    output_language: str | None = None,
    timestamps: bool = False,
    itn: bool | None = None,
    caption_style: str | None = None,
    question: str | None = None,
    first_timestamp: float | None = 0.0,
) -> str:
    """
    Builds the tag chain that follows `<audio>...</audio>` in a base-model prompt, from `TASK_LAYOUTS`.

    Args:
        task (`str`):
            One of `supported_tasks()`: `"transcribe"`, `"translate"`, `"caption"`, `"keyword"`, `"question"`
            (alias `"aqa"`), `"scene"`, `"event"`, `"vocal_classification"`, `"emotion_recognition"`,
            `"note_analysis"`, `"music_description"`, `"audio_grounding"`, ...
        audio_language (`str`, *optional*):
            Spoken language of the clip (`"en"`, `"zh"`, `"de"`, `"es"`, `"ko"`, `"fr"`, `"ja"`, `"it"`,
            `"zh_tr"`) or `"unknown"`. Defaults to the task's layout (`"unknown"` for most analysis tasks, `"en"` for
            emotion, vocal sounds and questions, as the original evaluates them); speech tasks need it or an
            `output_language`.
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
    name, layout = task_layout(task)
    given = {"timestamps": bool(timestamps), "itn": itn is not None, "caption_style": caption_style is not None}
    for option, is_given in given.items():
        if is_given and option not in layout.options:
            allowed = [task for task, other in TASK_LAYOUTS.items() if option in other.options]
            raise ValueError(f"`{option}` only applies to {', '.join(allowed)}, not to {name!r}.")
    if name not in QUESTION_TASKS and question is not None:
        raise ValueError(f"`question` only applies to the question (AQA) task, not to {name!r}.")
    audio_tag = _language_tag(audio_language or layout.audio_language or "unknown", ("unknown",) + OUTPUT_LANGUAGES,
                              "audio language")

    if name == "question":
        if not question or not isinstance(question, str):
            raise ValueError("The question (AQA) task needs a non-empty `question` string.")
        if output_language is not None:
            raise ValueError("The question (AQA) task takes no `output_language`: the answer follows `<|answer|>`.")
        return f"{layout.header}{audio_tag}<|question|>{question}<|answer|>"

    if output_language is None:
        if name == "translate":
            raise ValueError("Translation needs an `output_language`.")
        if name == "transcribe":
            if audio_tag == "<|unknown|>":
                raise ValueError("Transcription with an unknown audio language needs an `output_language`.")
            output_language = audio_tag.strip("<|>")
        else:
            output_language = "en"
    output_tag = _language_tag(output_language, OUTPUT_LANGUAGES, "output language")
    tags = [layout.header, audio_tag, layout.task_tag, output_tag,
            "<|timestamps|>" if timestamps else "<|notimestamps|>"]
    if layout.output_instruction is not None:
        tags.append(layout.output_instruction)
    if itn is not None:
        tags.append("<|itn|>" if itn else "<|wo_itn|>")
    if caption_style is not None:
        if caption_style not in CAPTION_STYLES:
            raise ValueError(f"Unknown caption style {caption_style!r}; expected one of {', '.join(CAPTION_STYLES)}.")
        tags.append(CAPTION_STYLES[caption_style])
    if timestamps and first_timestamp is not None:
        tags.append(timestamp_token(first_timestamp))  # last: the answer continues from it
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
TIMESTAMP_INSTRUCTION = " Give the start and end time of every word."


def chat_task_instruction(
    task: str,
    audio_language: str | None = None,
    output_language: str | None = None,
    timestamps: bool = False,
    question: str | None = None,
) -> str:
    """
    The plain instruction that asks a chat checkpoint (Qwen-Audio-Chat) for `task` (the `chat_instruction` of its
    `TaskLayout`), e.g. `"Transcribe the speech (English)."`; the question itself for `task="question"`. The
    arguments are those of `build_task_prompt`, and are checked by it (same tasks, languages and timestamp support
    for both kinds of checkpoints).
    """
    name, layout = task_layout(task)
    # A chat checkpoint can transcribe without being told the language; the tags of a base one cannot.
    if not (name == "transcribe" and audio_language is None and output_language is None):
        build_task_prompt(name, audio_language, output_language, timestamps, question=question)
    if name == "question":
        return question
    spoken = LANGUAGE_NAMES.get((audio_language or "").lower())
    target = LANGUAGE_NAMES.get((output_language or "en").lower(), output_language)
    instruction = layout.chat_instruction.format(language=f" ({spoken})" if spoken else "", output_language=target)
    return instruction + (TIMESTAMP_INSTRUCTION if timestamps else "")


__all__ = ["TASK_LAYOUTS", "TaskLayout", "build_task_prompt", "chat_task_instruction", "supported_tasks", "task_layout"]
