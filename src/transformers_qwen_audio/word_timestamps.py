# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Word-level timestamps the way Qwen-Audio writes them (SRWT): `<|0.00|><|sil|><|0.54|> word<|0.86|> word<|1.17|>`.

Every boundary is one timestamp token on the 10 ms grid `<|0.00|>` ... `<|30.00|>` of a 30 s window, shared by the
word that ends and the one that starts there; gaps are `<|sil|>`. `format_word_timestamps` writes words with their
times (the pre-training targets), `parse_word_timestamps` / `parse_segment_timestamps` read a decoded output back
(the processor's `decode(return_timestamps=...)`, the evaluation's boundary errors, subtitles).
"""

import re
from collections.abc import Mapping


MAX_TIMESTAMP_SECONDS = 30.0
TIMESTAMP_STEP_SECONDS = 0.01  # `<|0.00|>` ... `<|30.00|>`: one token per 10 ms
SILENCE_TOKEN = "<|sil|>"
# Languages written without spaces between words: their SRWT words are written back to back, the others' words
# each with a leading space, as their BPE tokens carry it (so that the text without timestamps reads normally).
LANGUAGES_WITHOUT_WORD_SPACES = ("zh", "zh_tr", "yue", "ja", "th", "lo", "my", "km", "bo")


def timestamp_token(seconds: float) -> str:
    """The vocabulary token for a time in [0, 30] s, rounded to the 10 ms grid: `timestamp_token(0.5)` -> `<|0.50|>`."""
    if not 0.0 <= seconds <= MAX_TIMESTAMP_SECONDS:
        raise ValueError(f"Timestamp tokens cover 0.00 to 30.00 s within one window, got {seconds}.")
    return f"<|{round(seconds * 100) / 100:.2f}|>"


# One timestamp token, its seconds captured: `<|2.33|>`.
TIMESTAMP_TOKEN_PATTERN = re.compile(r"<\|(\d{1,2}\.\d{2})\|>")
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


def words_as_list(words) -> list[dict]:
    """A word-timestamp cell as a list of dicts: `datasets` stores a list of structs either as a list of dicts or,
    for a `Sequence` feature, as a dict of lists."""
    if isinstance(words, Mapping):
        keys = list(words)
        return [dict(zip(keys, values)) for values in zip(*(words[key] for key in keys))]
    return list(words or [])


__all__ = [
    "LANGUAGES_WITHOUT_WORD_SPACES",
    "MAX_TIMESTAMP_SECONDS",
    "SILENCE_TOKEN",
    "format_word_timestamps",
    "parse_segment_timestamps",
    "parse_word_timestamps",
    "timestamp_token",
    "word_separator",
    "words_as_list",
]
