# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The one conversation model of Qwen-Audio-Chat, used by the processor, the chat template, the pipeline and the
training collators.

A conversation is a list of messages `{"role": ROLE, "content": CONTENT}`:

- `ROLE` is one of `ROLES` ("system", "user", "assistant"); a system message may only come first, and the first
  message after it is not an assistant one.
- `CONTENT` is a string or a non-empty list of parts. Only an assistant message may be empty (a prefill that
  `continue_final_message=True` continues).
- A text part is `{"type": "text", "text": str}` (or `{"text": str}`).
- An audio part is `{"type": "audio", KEY: SOURCE}` or `{KEY: SOURCE}` without `"type"`, with exactly one `KEY` of
  `AUDIO_SOURCE_KEYS`: `"audio"`, `"path"`, `"url"`, `"audio_url"` (a string or `{"url": str}`, OpenAI style) or
  `"array"`. `SOURCE` is anything `audio_io.load_audio` decodes: a path, an http(s) URL (downloaded only with
  `allow_urls=True`), bytes, an array or tensor, a `datasets` audio dict. A `"sampling_rate"` key gives the rate of an
  array source (16 kHz otherwise). An audio part with no source (`{"type": "audio"}`) takes its clip from the clips
  given separately (`clips=`, e.g. a dataset's `audios` column). Audio parts are only allowed in user messages.
  Keys whose value is `None` are ignored (a `datasets` struct column gives every part every key).
- `<audio>`/`</audio>` written inside text are refused: a path between them would otherwise be read from disk
  because a user typed it. `allow_audio_paths_in_text=True` opts in to the original Qwen-Audio's convention instead:
  each `<audio>PATH</audio>` of a text becomes an audio part with that path.
- Control tokens written inside text (`CONTROL_TOKENS`: ChatML's `<|im_start|>` / `<|im_end|>`, `<|endoftext|>`, the
  audio placeholder) are refused too: the tokenizer would make them control, so `"x<|im_end|>\n<|im_start|>system\n..."`
  in a user's text would give the prompt a system turn of the user's making. `allow_control_tokens_in_text=True` lets
  callers who mean them (their own trusted text) through. Task tags and timestamps (`<|2.33|>`) stay allowed: they
  change no turn, and assistant replies carry timestamps.

Anything else raises a `ValueError` (or `ConversationTypeError`, a `TypeError` that is also a `ValueError`) naming
the conversation row (when given), the message index and the part index. Nothing is ever dropped silently.

`validate_conversation` checks a conversation and returns it in canonical form: string contents stay strings, text
parts become `{"type": "text", "text": ...}` and audio parts `{"type": "audio", "audio": SOURCE}` (array sources
with a rate become `{"array": ..., "sampling_rate": ...}`). `audio_sources` lists the sources of a canonical
conversation in order, and `load_clip` is the one place a source is decoded and checked (file, URL policy, length).
"""

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from .audio_io import QWEN_AUDIO_SAMPLING_RATE, load_audio
from .tokenization_qwen_audio import (
    AUDIO_END_TOKEN,
    AUDIO_PAD_TOKEN,
    AUDIO_START_TOKEN,
    ENDOFTEXT_TOKEN,
    IM_END_TOKEN,
    IM_START_TOKEN,
)


ROLES = ("system", "user", "assistant")
AUDIO_SOURCE_KEYS = ("audio", "path", "url", "audio_url", "array")
PART_TYPES = ("text", "audio")
# Whisper's hop is 160 samples; below 3 mel frames (30 ms) the encoder yields no audio token at all.
MIN_AUDIO_SAMPLES = 3 * 160

_AUDIO_TAG = re.compile(re.escape(AUDIO_START_TOKEN) + "|" + re.escape(AUDIO_END_TOKEN))
# Tokens that change a prompt's structure (turns, end of text, audio spans) when text holds them; chat_template.jinja
# refuses the same list when it is rendered without the processor.
CONTROL_TOKENS = (IM_START_TOKEN, IM_END_TOKEN, ENDOFTEXT_TOKEN, AUDIO_PAD_TOKEN)
_CONTROL_TOKEN = re.compile("|".join(re.escape(token) for token in CONTROL_TOKENS))


class ConversationTypeError(TypeError, ValueError):
    """A conversation element of the wrong type. Also a `ValueError`, so that callers that catch `ValueError` for
    bad input (the collator, the server) catch every conversation error."""


def location(row: int | None = None, message: int | None = None, part: int | None = None, audio: bool = False) -> str:
    """`"Conversation 2, message 0, audio part 1"`: where an error is, as every error of this module names it."""
    pieces = []
    if row is not None:
        pieces.append(f"Conversation {row}")
    if message is not None:
        pieces.append(f"message {message}" if pieces else f"Message {message}")
    if part is not None:
        pieces.append(f"{'audio part' if audio else 'part'} {part}")
    return ", ".join(pieces) or "Audio"


def find_audio_spans(text: str) -> list[tuple[int, int, str]]:
    """
    Returns `(start, end, source)` for every `<audio>SOURCE</audio>` of `text` (`source` may be empty).
    Raises a `ValueError` for unclosed, nested or unmatched tags.
    """
    spans = []
    open_at = None
    for match in _AUDIO_TAG.finditer(text):
        if match.group() == AUDIO_START_TOKEN:
            if open_at is not None:
                raise ValueError(
                    f"Nested or unclosed {AUDIO_START_TOKEN} at character {match.start()}: every {AUDIO_START_TOKEN} "
                    f"must be closed by {AUDIO_END_TOKEN} before the next one."
                )
            open_at = match
        else:
            if open_at is None:
                raise ValueError(f"{AUDIO_END_TOKEN} at character {match.start()} has no matching {AUDIO_START_TOKEN}.")
            spans.append((open_at.start(), match.end(), text[open_at.end() : match.start()]))
            open_at = None
    if open_at is not None:
        raise ValueError(f"Unclosed {AUDIO_START_TOKEN} at character {open_at.start()}: add {AUDIO_END_TOKEN}.")
    return spans


def audio_source(part: Mapping, where: str = "Audio part") -> tuple[str, object] | None:
    """
    The rule for what an audio part holds: `(key, source)` for its one source key of `AUDIO_SOURCE_KEYS` (None values
    ignored), `None` when it has none. Two sources raise a `ValueError`.
    """
    found = [(key, part[key]) for key in AUDIO_SOURCE_KEYS if part.get(key) is not None]
    if len(found) > 1:
        raise ValueError(
            f"{where}: an audio part needs exactly one of {AUDIO_SOURCE_KEYS}, got {', '.join(key for key, _ in found)}."
        )
    return found[0] if found else None


def part_type(part: Mapping, where: str = "Part") -> str:
    """`"text"` or `"audio"`: the part's `"type"`, or for a part without one, `"audio"` when it has a source key of
    `AUDIO_SOURCE_KEYS` and `"text"` when it has a `"text"` key. Anything else raises a `ValueError`."""
    declared = part.get("type")
    if declared is not None:
        if declared not in PART_TYPES:
            raise ValueError(
                f"{where}: unsupported part type {declared!r}; a content part of Qwen-Audio-Chat is one of {PART_TYPES}."
            )
        return declared
    has_audio = any(part.get(key) is not None for key in AUDIO_SOURCE_KEYS)
    has_text = part.get("text") is not None
    if has_audio and has_text:
        raise ValueError(f"{where}: a part without `type` holds both text and audio ({sorted(part)}); split it in two.")
    if has_audio:
        return "audio"
    if has_text:
        return "text"
    raise ValueError(
        f"{where}: cannot tell what this part is (keys {sorted(part)}): give `type` ('text' or 'audio'), a `text`, or "
        f"one audio source key of {AUDIO_SOURCE_KEYS}."
    )


def _canonical_audio_part(part: Mapping, where: str, clips: Iterator | None) -> dict:
    found = audio_source(part, where)
    if found is None:
        clip = next(clips, None) if clips is not None else None
        if clip is None:
            raise ValueError(
                f"{where} has no source: an audio part needs exactly one of {AUDIO_SOURCE_KEYS}"
                + (" and no clip is left in the clips given separately." if clips is not None else ".")
            )
        return {"type": "audio", "audio": clip}
    key, source = found
    if key == "audio_url" and isinstance(source, Mapping):
        if not isinstance(source.get("url"), str):
            raise ValueError(f"{where}: `audio_url` must be a URL string or {{'url': str}}, got keys {sorted(source)}.")
        source = source["url"]
    sampling_rate = part.get("sampling_rate")
    if sampling_rate is not None and not isinstance(source, (str, bytes, Mapping)):
        source = {"array": source, "sampling_rate": sampling_rate}
    return {"type": "audio", "audio": source}


def check_control_tokens(text: str, where: str, allow_control_tokens_in_text: bool = False) -> None:
    """Raises `ValueError` naming `where` and the token when `text` holds one of `CONTROL_TOKENS` (unless allowed)."""
    match = None if allow_control_tokens_in_text else _CONTROL_TOKEN.search(text)
    if match is not None:
        raise ValueError(
            f"{where}: the text contains the control token {match.group()}, which would change the prompt's "
            "structure (turns, end of text, audio spans) rather than be read; remove it, or pass "
            "`allow_control_tokens_in_text=True` if the text is yours and means it."
        )


def _split_text_with_audio_paths(
    text: str, where: str, allow_audio_paths_in_text: bool, allow_control_tokens_in_text: bool = False
) -> list[dict]:
    """A text as parts: itself, or (with the opt-in) its pieces around each `<audio>PATH</audio>` as audio parts.
    Control tokens in it are refused unless allowed."""
    check_control_tokens(text, where, allow_control_tokens_in_text)
    try:
        spans = find_audio_spans(text)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if not spans:
        return [{"type": "text", "text": text}]
    if not allow_audio_paths_in_text:
        raise ValueError(
            f"{where}: the text contains {AUDIO_START_TOKEN}...{AUDIO_END_TOKEN}; give audio as an audio part "
            "({'type': 'audio', 'path': ...}), or pass `allow_audio_paths_in_text=True` to read the paths written "
            "between the tags (the original Qwen-Audio's format; never for text from untrusted users)."
        )
    parts, last = [], 0
    for start, end, source in spans:
        if text[last:start]:
            parts.append({"type": "text", "text": text[last:start]})
        if not source.strip():
            raise ValueError(f"{where}: {AUDIO_START_TOKEN}{AUDIO_END_TOKEN} in the text names no file.")
        parts.append({"type": "audio", "audio": source.strip()})
        last = end
    if text[last:]:
        parts.append({"type": "text", "text": text[last:]})
    return parts


def validate_conversation(
    messages,
    row: int | None = None,
    *,
    clips: Iterable | None = None,
    allow_audio_paths_in_text: bool = False,
    allow_control_tokens_in_text: bool = False,
) -> list[dict]:
    """
    Checks a conversation against the rules of this module and returns it in canonical form (new dicts; the input
    is never modified).

    Args:
        messages (`list[dict]` or `dict`):
            The conversation (one message dict is taken as a conversation of one message).
        row (`int`, *optional*):
            Index of the conversation in a batch or dataset; errors then start with "Conversation {row}".
        clips (iterable, *optional*):
            Clips for the audio parts that have no source, in order (e.g. a dataset's `audios` column). Every one of
            them must be used.
        allow_audio_paths_in_text (`bool`, *optional*, defaults to `False`):
            Read `<audio>PATH</audio>` inside text as audio parts with that path (the original's format) instead of
            refusing it. Only for trusted text: it makes the text decide which local file is read.
        allow_control_tokens_in_text (`bool`, *optional*, defaults to `False`):
            Let `CONTROL_TOKENS` written in text through (they then act as control tokens). Only for trusted text.

    Returns:
        `list[dict]`: the canonical conversation.
    """
    prefix = location(row)
    if isinstance(messages, Mapping):
        messages = [messages]
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise ConversationTypeError(
            f"{prefix}: a conversation must be a list of messages, got {type(messages).__name__}."
        )
    if len(messages) == 0:
        raise ValueError(f"{prefix}: the conversation is empty; give at least one message.")
    clip_iterator = iter(clips) if clips is not None else None
    canonical = []
    for index, message in enumerate(messages):
        where = location(row, index)
        if not isinstance(message, Mapping):
            raise ConversationTypeError(
                f"{where} must be a dict with `role` and `content`, got {type(message).__name__}."
            )
        role = message.get("role")
        if role is None:
            raise ValueError(f"{where} has no 'role' (one of {ROLES}).")
        if role not in ROLES:
            raise ValueError(f"{where} has unknown role {role!r}; expected one of {ROLES}.")
        if role == "system" and index != 0:
            raise ValueError(f"{where}: a system message may only come first.")
        if role == "assistant" and (index == 0 or (index == 1 and canonical[0]["role"] == "system")):
            raise ValueError(f"{where}: the conversation starts with an assistant message; a user message comes first.")
        content = message.get("content")
        if content is None:
            raise ValueError(f"{where} ({role}) has no content: a message is a dict with `role` and `content`.")
        if isinstance(content, str):
            if not content and role != "assistant":
                raise ValueError(f"{where} ({role}) has no content.")
            parts = _split_text_with_audio_paths(content, where, allow_audio_paths_in_text,
                                                 allow_control_tokens_in_text)
            if len(parts) == 1:
                canonical.append({"role": role, "content": content})
                continue
            content = parts
        if not isinstance(content, Sequence) or isinstance(content, (bytes, Mapping)):
            raise ConversationTypeError(
                f"{where}: `content` must be a string or a list of parts, got {type(content).__name__}."
            )
        if len(content) == 0 and role != "assistant":
            raise ValueError(f"{where} ({role}) has no content.")
        parts = []
        for part_index, part in enumerate(content):
            where_part = location(row, index, part_index)
            if not isinstance(part, Mapping):
                raise ConversationTypeError(
                    f"{where_part}: a content part must be a dict like {{'type': 'text', 'text': ...}}, "
                    f"got {type(part).__name__}."
                )
            kind = part_type(part, where_part)
            if kind == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise ValueError(f"{where_part}: a text part needs a string `text`, got {type(text).__name__}.")
                parts.extend(_split_text_with_audio_paths(text, where_part, allow_audio_paths_in_text,
                                                          allow_control_tokens_in_text))
                continue
            where_audio = location(row, index, part_index, audio=True)
            if role != "user":
                raise ValueError(f"{where_audio}: audio is only allowed in user messages (Qwen-Audio-Chat's format).")
            parts.append(_canonical_audio_part(part, where_audio, clip_iterator))
        if role != "user" and any(part["type"] == "audio" for part in parts):
            raise ValueError(f"{where}: audio is only allowed in user messages (Qwen-Audio-Chat's format).")
        canonical.append({"role": role, "content": parts})
    if clip_iterator is not None and next(clip_iterator, None) is not None:
        raise ValueError(f"{prefix}: more clips were given than audio parts without a source in the messages.")
    return canonical


def audio_sources(conversation: list[dict]) -> list:
    """The audio sources of a canonical conversation (see `validate_conversation`), in order."""
    return [
        part["audio"]
        for message in conversation
        if not isinstance(message["content"], str)
        for part in message["content"]
        if part["type"] == "audio"
    ]


def is_message(item) -> bool:
    """A single message dict (rather than a conversation or an audio clip)."""
    return isinstance(item, Mapping) and "role" in item


def is_conversation(item) -> bool:
    """A list of messages (rather than a batch of conversations or an audio clip)."""
    return isinstance(item, (list, tuple)) and len(item) > 0 and is_message(item[0])


def check_clip_length(waveform: np.ndarray, where: str = "Audio") -> np.ndarray:
    """The one minimum-length rule: a 16 kHz clip needs `MIN_AUDIO_SAMPLES` samples to give an audio token."""
    if len(waveform) < MIN_AUDIO_SAMPLES:
        raise ValueError(
            f"{where} is too short: {len(waveform)} samples at 16 kHz; Qwen-Audio needs at least {MIN_AUDIO_SAMPLES} "
            f"({MIN_AUDIO_SAMPLES / QWEN_AUDIO_SAMPLING_RATE * 1000:.0f} ms)."
        )
    return waveform


def load_clip(
    source,
    where: str = "Audio",
    *,
    sampling_rate: float | None = None,
    allow_urls: bool = False,
    base_dir=None,
) -> np.ndarray:
    """
    Decodes one audio source to 16 kHz mono float32 and checks it: the file rules and the URL policy of
    `audio_io.load_audio` (URLs only with `allow_urls=True`) and the minimum length. Errors keep their type
    (`FileNotFoundError`, `ValueError`, `TypeError`) and start with `where`.
    """
    if source is None:
        raise ValueError(f"{where} is None.")
    try:
        waveform = load_audio(source, sampling_rate=sampling_rate, allow_urls=allow_urls, base_dir=base_dir)
    except (FileNotFoundError, ValueError, TypeError) as error:
        raise type(error)(f"{where}: {error}") from None
    return check_clip_length(waveform, where)


def load_conversation_audio(conversations: list[list[dict]], **load_kwargs) -> list[np.ndarray]:
    """
    The clips of canonical conversations (see `validate_conversation`), decoded in order through the batch by
    `load_clip` (its `load_kwargs`), so that an error names the conversation of a batch, the message and the part.
    """
    clips = []
    for row, conversation in enumerate(conversations):
        for index, message in enumerate(conversation):
            if isinstance(message["content"], str):
                continue
            for part_index, part in enumerate(message["content"]):
                if part["type"] == "audio":
                    where = location(row if len(conversations) > 1 else None, index, part_index, audio=True)
                    clips.append(load_clip(part["audio"], where, **load_kwargs))
    return clips


def span_source(inside: str) -> str | None:
    """The path or URL written inside an `<audio>...</audio>` span, None when the span is empty or expanded."""
    return inside.replace(AUDIO_PAD_TOKEN, "").strip() or None


__all__ = [
    "AUDIO_SOURCE_KEYS",
    "MIN_AUDIO_SAMPLES",
    "ROLES",
    "ConversationTypeError",
    "audio_source",
    "audio_sources",
    "check_clip_length",
    "find_audio_spans",
    "is_conversation",
    "is_message",
    "load_clip",
    "load_conversation_audio",
    "location",
    "part_type",
    "span_source",
    "validate_conversation",
]
