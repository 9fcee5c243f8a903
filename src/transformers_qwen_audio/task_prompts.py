# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Hierarchical task prompts of the Qwen-Audio base model, and parsing of its timestamped output.

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

import re

from .tokenization_qwen_audio import AUDIO_LANGUAGES


TRANSCRIPT_HEADER = "<|startoftranscript|>"
ANALYSIS_HEADER = "<|startofanalysis|>"

# Output languages additionally include traditional Chinese.
OUTPUT_LANGUAGES = AUDIO_LANGUAGES + ("zh_tr",)
SPEECH_TASKS = ("transcribe", "translate")
# Languages written without spaces between words: their SRWT words are written back to back, the others' words
# each with a leading space, as their BPE tokens carry it (so that the text without timestamps reads normally).
LANGUAGES_WITHOUT_WORD_SPACES = ("zh", "zh_tr", "yue", "ja", "th", "lo", "my", "km", "bo")
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
MAX_TIMESTAMP_SECONDS = 30.0
SILENCE_TOKEN = "<|sil|>"


def supported_tasks() -> list[str]:
    """Names accepted by `build_task_prompt`."""
    return list(SPEECH_TASKS) + list(ANALYSIS_TASKS) + list(QUESTION_TASKS)


def timestamp_token(seconds: float) -> str:
    """The vocabulary token for a time in [0, 30] s, rounded to the 10 ms grid: `timestamp_token(0.5)` -> `<|0.50|>`."""
    if not 0.0 <= seconds <= MAX_TIMESTAMP_SECONDS:
        raise ValueError(f"Timestamp tokens cover 0.00 to 30.00 s within one window, got {seconds}.")
    return f"<|{round(seconds * 100) / 100:.2f}|>"


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


_TIMESTAMP_OR_SILENCE = re.compile(r"<\|(\d{1,2}\.\d{2})\|>|<\|sil\|>")
# Special tokens other than timestamps and silence (end tokens, language and task tags), which are not words.
_NON_TIME_SPECIAL_TOKEN = re.compile(r"<\|(?!\d{1,2}\.\d{2}\|>)(?!sil\|>)[a-z_0-9]+\|>")


def _timed_pieces(text: str, time_offset: float):
    """
    Yields `(piece, start, end, after_silence)` for each piece of text between timestamp tokens, with the time span
    it is aligned to (seconds, shifted by `time_offset`; `None` at an open end). Pieces inside a silence
    (`<|sil|>` up to the next timestamp) and whitespace-only pieces are left out; `after_silence` says that a
    silence (or the start of the text) precedes the piece.
    """
    text = _NON_TIME_SPECIAL_TOKEN.sub("", text)
    current_start = None
    previous_end = 0
    in_silence = False
    after_silence = True

    def shifted(seconds):
        return None if seconds is None else round(seconds + time_offset, 2)

    for match in _TIMESTAMP_OR_SILENCE.finditer(text):
        piece = text[previous_end : match.start()]
        previous_end = match.end()
        if match.group(1) is None:  # <|sil|>: the span up to the next timestamp is silence
            if piece.strip() and not in_silence:
                yield piece, shifted(current_start), None, after_silence
            in_silence = after_silence = True
            continue
        seconds = float(match.group(1))
        # Text right after <|sil|> without a timestamp in between still belongs to the next span.
        if piece.strip():
            yield piece, shifted(current_start), shifted(seconds), after_silence
            after_silence = False
        in_silence = False
        current_start = seconds
    piece = text[previous_end:]
    if piece.strip() and not in_silence:
        yield piece, shifted(current_start), None, after_silence


def parse_word_timestamps(
    text: str | list[str], time_offset: float = 0.0, chunk_length: float = MAX_TIMESTAMP_SECONDS
) -> list[dict]:
    """
    Parses timestamped output such as `<|0.00|><|sil|><|0.54|>面<|0.86|>条<|1.17|>` into words with their time span.

    Each piece of text between two timestamp tokens is one entry `{"text": str, "timestamp": (start, end)}`, in
    seconds. Silence (`<|sil|>`) and whitespace-only pieces are skipped, and so are special tokens other than
    timestamps (`<|endoftext|>`, `<|im_end|>`, tags). Text before the first timestamp gets `start=None`, text after
    the last one `end=None`.

    Args:
        text (`str` or `list[str]`):
            The decoded output (special tokens kept). For long audio processed in 30 s windows
            (`long_audio="chunk"`), pass one string per window: window `i` is shifted by `i * chunk_length`.
        time_offset (`float`, *optional*, defaults to 0.0):
            Seconds added to every timestamp (where the first window starts in the recording).
        chunk_length (`float`, *optional*, defaults to 30.0):
            Window length for a list of texts.
    """
    return [
        {"text": piece.strip(), "timestamp": (start, end)}
        for piece, start, end, _ in _pieces_of(text, time_offset, chunk_length)
    ]


def parse_segment_timestamps(
    text: str | list[str], time_offset: float = 0.0, chunk_length: float = MAX_TIMESTAMP_SECONDS
) -> list[dict]:
    """
    Like `parse_word_timestamps`, but groups the words into segments, as the ASR pipeline's `return_timestamps=True`
    means them: a segment is a run of words cut at each silence (`<|sil|>`), at each gap between one word's end
    and the next one's start, and at window boundaries (each string of a list is a window). Each entry is
    `{"text": str, "timestamp": (start of its first word, end of its last word)}`; the text keeps the spacing of
    the output.
    """
    segments = []
    for piece, start, end, after_silence in _pieces_of(text, time_offset, chunk_length, mark_windows=True):
        previous = segments[-1] if segments else None
        if previous is None or after_silence or previous["timestamp"][1] is None or previous["timestamp"][1] != start:
            segments.append({"text": piece, "timestamp": (start, end)})
        else:
            previous["text"] += piece
            previous["timestamp"] = (previous["timestamp"][0], end)
    for segment in segments:
        segment["text"] = segment["text"].strip()
    return segments


def _pieces_of(text, time_offset: float, chunk_length: float, mark_windows: bool = False):
    if isinstance(text, (list, tuple)):
        for chunk_index, chunk_text in enumerate(text):
            for index, (piece, start, end, after_silence) in enumerate(
                _pieces_of(chunk_text, time_offset + chunk_index * chunk_length, chunk_length)
            ):
                # A new window starts a new segment.
                yield piece, start, end, after_silence or (mark_windows and index == 0)
        return
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a string or a list of strings, got {type(text).__name__}.")
    yield from _timed_pieces(text, time_offset)


def word_separator(language: str | None) -> str:
    """What separates two words of `language` in running text: nothing for Chinese, Japanese, Thai, ..., else a space."""
    return "" if language in LANGUAGES_WITHOUT_WORD_SPACES else " "


def format_word_timestamps(
    words, end_time: float | None = None, start_time: float = 0.0, word_prefix: str = ""
) -> str:
    """
    Writes words with their time spans the way Qwen-Audio's SRWT outputs them (the inverse of `parse_word_timestamps`),
    e.g. `<|0.00|><|sil|><|0.54|>面<|0.86|>条<|1.17|>机<|1.46|><|sil|><|2.01|>`.

    Every boundary is one timestamp token on the 10 ms grid, shared by the word that ends and the one that starts
    there; a gap between two words (and before the first, after the last when `end_time` is given) is `<|sil|>`
    between its two boundaries. This is the target the base model learns after `build_task_prompt(...,
    timestamps=True)`.

    Args:
        words (`list[dict]`):
            In time order, each `{"text" (or "word"): str, "start": float, "end": float}` in seconds (or
            `{"text", "timestamp": (start, end)}` as `parse_word_timestamps` returns them). Text is written stripped,
            after `word_prefix`.
        end_time (`float`, *optional*):
            End of the clip: trailing silence up to it is written as `<|sil|><|end_time|>`.
        start_time (`float`, *optional*, defaults to 0.0):
            Start of the window: the output always opens with this timestamp.
        word_prefix (`str`, *optional*, defaults to `""`):
            Written before every word: `word_separator(language)`, i.e. a space for languages that separate words
            with spaces (`<|0.54|> stop<|0.86|> go<|1.20|>` decodes to "stop go" once the timestamps are skipped) and
            nothing for Chinese (`<|0.54|>面<|0.86|>条<|1.17|>`, as released).

    Returns:
        `str`: the timestamped text, without `<|endoftext|>`.
    """
    pieces, previous = [timestamp_token(start_time)], _grid(start_time)
    for index, word in enumerate(words):
        if not isinstance(word, dict):
            raise ValueError(f"Word {index}: expected a dict with `text`, `start` and `end`, got {word!r}.")
        text = word.get("text", word.get("word"))
        start, end = word["timestamp"] if "timestamp" in word else (word.get("start"), word.get("end"))
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"Word {index}: empty or missing `text` in {word!r}.")
        if start is None or end is None:
            raise ValueError(f"Word {index} ({text!r}) needs both a start and an end time.")
        start, end = _grid(start), _grid(end)
        if start < previous or end < start:
            raise ValueError(
                f"Word {index} ({text!r}) spans {start:.2f}-{end:.2f} s: words must be in time order, not overlapping, "
                f"and after {previous:.2f} s."
            )
        if start > previous:
            pieces.append(SILENCE_TOKEN + timestamp_token(start))
        pieces.append(word_prefix + text.strip() + timestamp_token(end))
        previous = end
    if end_time is not None and _grid(end_time) > previous:
        pieces.append(SILENCE_TOKEN + timestamp_token(end_time))
    return "".join(pieces)


def _grid(seconds: float) -> float:
    """Rounds to the 10 ms grid of the timestamp tokens (and checks the 0-30 s range)."""
    return float(timestamp_token(float(seconds))[2:-2])


__all__ = [
    "build_task_prompt",
    "chat_task_instruction",
    "format_word_timestamps",
    "parse_segment_timestamps",
    "parse_word_timestamps",
    "supported_tasks",
    "timestamp_token",
    "word_separator",
]
