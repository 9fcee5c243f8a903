# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The OpenAI chat-completions protocol, as far as Qwen-Audio-Chat can honour it: a request body becomes a validated
`ChatRequest` (the pipeline's conversation, with every clip decoded to 16 kHz, and its generation settings), and
results become OpenAI's response and chunk objects.

Every problem with a request raises `RequestError`, which the app turns into OpenAI's error body
`{"error": {"message", "type", "param", "code"}}`; `param` names the offending field the way OpenAI does
(`messages[0].content[1].input_audio.data`).
"""

import base64
import binascii
import math
import numbers
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..audio_io import QWEN_AUDIO_SAMPLING_RATE, AudioTooLongError, load_audio
from ..conversation import MIN_AUDIO_SAMPLES, check_control_tokens
from ..feature_extraction_qwen_audio import MAX_AUDIO_SECONDS
from ..tokenization_qwen_audio import AUDIO_END_TOKEN, AUDIO_START_TOKEN


# What `input_audio.format` may say: OpenAI's two plus what libsndfile decodes as well.
AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg")
# OpenAI's "developer" role is the system message of newer models.
ROLE_ALIASES = {"developer": "system"}
CHAT_ROLES = ("system", "user", "assistant")
MAX_STOP_SEQUENCES = 4

# Fields that change nothing here: accepted and ignored, as OpenAI-compatible servers do.
IGNORED_FIELDS = frozenset({"user", "metadata", "store", "service_tier", "parallel_tool_calls", "safety_identifier",
                            "prompt_cache_key"})
# Fields of the OpenAI API this server cannot honour, with the value(s) that mean "not used" (accepted).
UNSUPPORTED_FIELDS = {
    "n": (1,),
    "frequency_penalty": (0, 0.0),
    "presence_penalty": (0, 0.0),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "logit_bias": ({},),
    "tools": ([],),
    "tool_choice": ("none",),
    "functions": ([],),
    "function_call": ("none",),
    "response_format": ({"type": "text"},),
    "modalities": (["text"],),
    "audio": (),
    "prediction": (),
    "reasoning_effort": (),
    "web_search_options": (),
    "verbosity": (),
}
SUPPORTED_FIELDS = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stop", "stream",
    "stream_options",
    # Extensions that vLLM and transformers accept too.
    "top_k", "repetition_penalty",
})
_WHY_UNSUPPORTED = {
    "n": "only one choice per request is generated; send the request several times (with different seeds)",
    "tools": "tool calling is not supported by Qwen-Audio-Chat",
    "tool_choice": "tool calling is not supported by Qwen-Audio-Chat",
    "functions": "function calling is not supported by Qwen-Audio-Chat",
    "function_call": "function calling is not supported by Qwen-Audio-Chat",
    "modalities": "this model answers in text only",
    "audio": "this model answers in text only (no audio output)",
    "response_format": "structured output is not supported",
    "logprobs": "log probabilities are not returned",
    "top_logprobs": "log probabilities are not returned",
}


class RequestError(Exception):
    """A request the server refuses, rendered as OpenAI's JSON error body with `status`."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400,
                 error_type: str = "invalid_request_error"):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status
        self.error_type = error_type

    def to_dict(self) -> dict:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ServerLimits:
    """What one request may ask of the server."""

    max_audio_seconds: float = float(MAX_AUDIO_SECONDS)
    max_tokens: int = 4096
    default_max_tokens: int = 256
    transcription_max_tokens: int = 512
    allow_urls: bool = False

    @property
    def long_audio(self) -> str:
        # Clips up to the limit are heard whole: past the model's 30 s window only as consecutive windows.
        return "chunk" if self.max_audio_seconds > MAX_AUDIO_SECONDS else "truncate"


@dataclass
class ChatRequest:
    """One validated chat-completion request."""

    model: str
    messages: list[dict]  # the pipeline's conversation; audio parts hold 16 kHz float32 arrays
    generate_kwargs: dict  # max_new_tokens and the sampling settings, as `generate()` names them
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False
    prompt_tokens: int = 0  # filled in by the app once the processor has tokenized the conversation
    request_id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def max_new_tokens(self) -> int:
        return self.generate_kwargs["max_new_tokens"]

    @property
    def batch_key(self):
        """Requests with equal keys may share one `generate()` call; `None`: this one runs alone (a seed fixes the
        random stream of one request only, and a streamed reply follows one sequence)."""
        if self.stream or self.seed is not None:
            return None
        return (tuple(sorted(self.generate_kwargs.items())), tuple(self.stop))


# ----------------------------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------------------------
def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _type_name(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "integer" if _is_int(value) else "number" if isinstance(value, float) else type(value).__name__
    )


def _check_fields(body: Mapping) -> None:
    for name, value in body.items():
        if name in SUPPORTED_FIELDS or name in IGNORED_FIELDS:
            continue
        if name in UNSUPPORTED_FIELDS:
            if value is None or value in UNSUPPORTED_FIELDS[name]:
                continue
            why = _WHY_UNSUPPORTED.get(name, "this server does not support it")
            raise RequestError(f"'{name}' = {value!r} is not supported: {why}.", param=name, code="unsupported_parameter")
        raise RequestError(f"Unrecognized request argument supplied: {name}", param=name, code="unknown_parameter")


def _optional_number(body, name, low, high, low_inclusive=True):
    value = body.get(name)
    if value is None:
        return None
    if not _is_number(value):
        raise RequestError(f"'{name}' must be a number, got {_type_name(value)}.", param=name, code="invalid_type")
    if not math.isfinite(value):  # JSON's NaN / Infinity, or a form's "nan"
        raise RequestError(f"'{name}' must be a finite number, got {value}.", param=name, code="invalid_value")
    if value > high or value < low or (value == low and not low_inclusive):
        bracket = "[" if low_inclusive else "("
        raise RequestError(f"'{name}' must be in {bracket}{low}, {high}], got {value}.", param=name,
                           code="invalid_value")
    return float(value)


def _generation_settings(body: Mapping, limits: ServerLimits) -> dict:
    kwargs = {}
    if body.get("max_tokens") is not None and body.get("max_completion_tokens") is not None \
            and body["max_tokens"] != body["max_completion_tokens"]:
        raise RequestError("Give 'max_completion_tokens' or 'max_tokens', not both with different values.",
                           param="max_tokens", code="invalid_value")
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = body.get(name)
    if max_tokens is None:
        max_tokens = limits.default_max_tokens
    elif not _is_int(max_tokens):
        raise RequestError(f"'{name}' must be an integer, got {_type_name(max_tokens)}.", param=name,
                           code="invalid_type")
    elif not 1 <= max_tokens <= limits.max_tokens:
        raise RequestError(f"'{name}' must be between 1 and {limits.max_tokens} (this server's limit), got "
                           f"{max_tokens}.", param=name, code="invalid_value")
    kwargs["max_new_tokens"] = int(max_tokens)

    temperature = _optional_number(body, "temperature", 0.0, 2.0)
    top_p = _optional_number(body, "top_p", 0.0, 1.0, low_inclusive=False)
    repetition_penalty = _optional_number(body, "repetition_penalty", 0.0, 10.0, low_inclusive=False)
    top_k = body.get("top_k")
    if top_k is not None and (not _is_int(top_k) or top_k < -1):
        raise RequestError(f"'top_k' must be an integer >= 0 (0 or -1: no limit), got {top_k!r}.", param="top_k",
                           code="invalid_value")
    # Unset settings keep the checkpoint's generation config (Qwen-Audio-Chat samples with top_p=0.5 by default).
    if temperature == 0.0:
        kwargs["do_sample"] = False  # greedy: OpenAI's temperature 0
    else:
        if temperature is not None:
            kwargs.update(do_sample=True, temperature=temperature)
        if top_p is not None:
            kwargs.update(do_sample=True, top_p=top_p)
        if top_k is not None:
            kwargs.update(do_sample=True, top_k=max(int(top_k), 0))
    if repetition_penalty is not None:
        kwargs["repetition_penalty"] = repetition_penalty
    return kwargs


def _stop_sequences(body: Mapping) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(item, str) for item in stops):
        raise RequestError("'stop' must be a string or an array of strings.", param="stop", code="invalid_type")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise RequestError(f"'stop' takes at most {MAX_STOP_SEQUENCES} sequences, got {len(stops)}.", param="stop",
                           code="invalid_value")
    if any(item == "" for item in stops):
        raise RequestError("'stop' sequences must not be empty.", param="stop", code="invalid_value")
    return list(dict.fromkeys(stops))


def _decode_base64(data: str, param: str) -> bytes:
    if data.startswith("data:"):  # some clients send a data URI in place of bare base64
        header, _, data = data.partition(",")
        if not header.endswith(";base64"):
            raise RequestError("A data URI must be base64-encoded (data:audio/wav;base64,...).", param=param,
                               code="invalid_base64")
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("The audio data is not valid base64.", param=param, code="invalid_base64") from None
    if not raw:
        raise RequestError("The audio data is empty.", param=param, code="invalid_audio")
    return raw


def _decode_clip(source, param: str, limits: ServerLimits) -> np.ndarray:
    # The limit goes to the decoder: the header's duration and rate are checked before a sample is decoded.
    try:
        waveform = load_audio(source, allow_urls=limits.allow_urls, max_seconds=limits.max_audio_seconds)
    except AudioTooLongError as error:
        raise RequestError(
            f"The audio lasts {error.seconds:.1f} s; this server accepts clips of at most "
            f"{limits.max_audio_seconds:g} s (start it with a larger --max-audio-seconds to hear longer clips as "
            "consecutive 30 s windows).", param=param, code="audio_too_long") from None
    except (ValueError, TypeError, OSError) as error:
        raise RequestError(f"Could not decode the audio: {' '.join(str(error).split())}", param=param,
                           code="invalid_audio") from None
    seconds = len(waveform) / QWEN_AUDIO_SAMPLING_RATE
    if len(waveform) < MIN_AUDIO_SAMPLES:
        raise RequestError(
            f"The audio lasts {seconds * 1000:.0f} ms; Qwen-Audio needs at least "
            f"{MIN_AUDIO_SAMPLES / QWEN_AUDIO_SAMPLING_RATE * 1000:.0f} ms.", param=param, code="audio_too_short")
    return waveform


def _audio_part(part: Mapping, param: str, limits: ServerLimits) -> dict:
    if part["type"] == "input_audio":
        payload = part.get("input_audio")
        if not isinstance(payload, Mapping):
            raise RequestError("An input_audio part needs an 'input_audio' object with 'data' and 'format'.",
                               param=f"{param}.input_audio", code="invalid_type")
        data, audio_format = payload.get("data"), payload.get("format")
        if not isinstance(data, str):
            raise RequestError(f"'input_audio.data' must be a base64 string, got {_type_name(data)}.",
                               param=f"{param}.input_audio.data", code="invalid_type")
        if audio_format is not None and (not isinstance(audio_format, str) or audio_format.lower() not in AUDIO_FORMATS):
            raise RequestError(f"Unsupported audio format {audio_format!r}; use one of {', '.join(AUDIO_FORMATS)}.",
                               param=f"{param}.input_audio.format", code="invalid_audio_format")
        raw = _decode_base64(data, f"{param}.input_audio.data")
        return {"type": "audio", "audio": _decode_clip(raw, f"{param}.input_audio.data", limits)}

    # "audio_url": {"url": ...} (vLLM's and transformers serve's part for audio by reference)
    payload = part.get("audio_url")
    url = payload.get("url") if isinstance(payload, Mapping) else payload
    if not isinstance(url, str) or not url:
        raise RequestError("An audio_url part needs 'audio_url': {'url': ...}.", param=f"{param}.audio_url",
                           code="invalid_type")
    if url.startswith("data:"):  # inline data needs no download
        raw = _decode_base64(url, f"{param}.audio_url.url")
        return {"type": "audio", "audio": _decode_clip(raw, f"{param}.audio_url.url", limits)}
    if not url.startswith(("http://", "https://")):
        raise RequestError("An audio URL must be http(s):// or a data: URI.", param=f"{param}.audio_url.url",
                           code="invalid_url")
    if not limits.allow_urls:
        raise RequestError("This server does not download audio URLs (start it with --allow-urls to allow them); "
                           "send the audio inline as an input_audio part.", param=f"{param}.audio_url.url",
                           code="urls_not_allowed")
    return {"type": "audio", "audio": _decode_clip(url, f"{param}.audio_url.url", limits)}


def _check_text(text: str, param: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError("Text is not valid Unicode (it holds a lone surrogate escape such as \\ud800).",
                           param=param, code="invalid_value") from None
    # `<audio>PATH</audio>` in a prompt would make the processor read PATH from the server's disk.
    if AUDIO_START_TOKEN in text or AUDIO_END_TOKEN in text:
        raise RequestError(f"Text must not contain {AUDIO_START_TOKEN} or {AUDIO_END_TOKEN}; send audio as "
                           "input_audio parts.", param=param, code="invalid_value")
    try:  # the processor's own check, here to name the field: `<|im_end|>` in a text would forge a turn
        check_control_tokens(text, param)
    except ValueError as error:
        raise RequestError(str(error), param=param, code="invalid_value") from None
    return text


def _message(message, index: int, limits: ServerLimits) -> dict:
    param = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise RequestError(f"{param} must be an object, got {_type_name(message)}.", param=param, code="invalid_type")
    role = message.get("role")
    if not isinstance(role, str):
        raise RequestError(f"{param} needs a 'role' string.", param=f"{param}.role", code="invalid_type")
    role = ROLE_ALIASES.get(role, role)
    if role not in CHAT_ROLES:
        raise RequestError(f"Unknown role {role!r} in {param}; use one of system, developer, user, assistant "
                           "(tool messages are not supported).", param=f"{param}.role", code="invalid_role")
    if message.get("tool_calls") or message.get("function_call"):
        raise RequestError("Tool calls are not supported by Qwen-Audio-Chat.", param=f"{param}.tool_calls",
                           code="unsupported_parameter")
    content = message.get("content")
    if isinstance(content, str):
        if not content.strip() and role != "assistant":
            raise RequestError(f"{param} has empty content.", param=f"{param}.content", code="invalid_value")
        return {"role": role, "content": _check_text(content, f"{param}.content")}
    if not isinstance(content, list):
        raise RequestError(f"{param}.content must be a string or an array of content parts, got "
                           f"{_type_name(content)}.", param=f"{param}.content", code="invalid_type")
    if not content:
        raise RequestError(f"{param} has empty content.", param=f"{param}.content", code="invalid_value")
    parts = []
    for part_index, part in enumerate(content):
        part_param = f"{param}.content[{part_index}]"
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise RequestError(f"{part_param} must be an object with a 'type'.", param=part_param,
                               code="invalid_type")
        kind = part["type"]
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise RequestError(f"A {kind} part needs a '{kind}' string.", param=f"{part_param}.{kind}",
                                   code="invalid_type")
            parts.append({"type": "text", "text": _check_text(text, f"{part_param}.{kind}")})
        elif kind in ("input_audio", "audio_url"):
            if role != "user":
                raise RequestError(f"Audio is only allowed in user messages, not in a {role} message.",
                                   param=part_param, code="invalid_value")
            parts.append(_audio_part(part, part_param, limits))
        else:
            raise RequestError(f"Unsupported content part type {kind!r}: this model takes text and audio "
                               "('text', 'input_audio', 'audio_url').", param=f"{part_param}.type",
                               code="unsupported_content_type")
    return {"role": role, "content": parts}


def parse_chat_request(body: Any, model_name: str, limits: ServerLimits) -> ChatRequest:
    """Validates an OpenAI chat-completions body and decodes its audio; raises `RequestError` on any problem."""
    if not isinstance(body, Mapping):
        raise RequestError(f"The request body must be a JSON object, got {_type_name(body)}.", code="invalid_type")
    _check_fields(body)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise RequestError("'messages' must be an array of messages.", param="messages",
                           code="missing_required_parameter" if messages is None else "invalid_type")
    if not messages:
        raise RequestError("'messages' is empty: give at least one message.", param="messages", code="invalid_value")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise RequestError("'stream' must be a boolean.", param="stream", code="invalid_type")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, Mapping):
        raise RequestError("'stream_options' must be an object.", param="stream_options", code="invalid_type")
    if stream_options and not stream:
        raise RequestError("'stream_options' is only allowed with 'stream': true.", param="stream_options",
                           code="invalid_value")
    seed = body.get("seed")
    if seed is not None and (not _is_int(seed) or not 0 <= seed < 2**63):
        raise RequestError("'seed' must be a non-negative integer.", param="seed", code="invalid_value")
    request = ChatRequest(
        model=model_name,
        messages=[],
        generate_kwargs=_generation_settings(body, limits),
        stop=_stop_sequences(body),
        seed=None if seed is None else int(seed),
        stream=stream,
        include_usage=bool(stream_options.get("include_usage", False)),
    )
    request.messages = [_message(message, index, limits) for index, message in enumerate(messages)]
    if request.messages[-1]["role"] == "assistant" and len(request.messages) == 1:
        raise RequestError("The conversation has only an assistant message; start with a user message.",
                           param="messages", code="invalid_value")
    return request


# ----------------------------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Completion:
    """What generation made of one request."""

    text: str
    completion_tokens: int
    finish_reason: str  # "stop" or "length"


def truncate_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """`text` up to the first stop sequence (excluded, as OpenAI does) and whether one was found."""
    cut = min((index for index in (text.find(stop) for stop in stops) if index >= 0), default=-1)
    return (text, False) if cut < 0 else (text[:cut], True)


class StopSequenceFilter:
    """
    Streaming counterpart of `truncate_at_stop`: holds back the tail of the text that could begin a stop sequence,
    so that no part of a stop sequence is ever sent.
    """

    def __init__(self, stops: list[str]):
        self.stops = stops
        self.pending = ""
        self.stopped = False

    def push(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.pending += piece
        text, found = truncate_at_stop(self.pending, self.stops)
        if found:
            self.stopped, self.pending = True, ""
            return text
        keep = max((size for stop in self.stops for size in range(1, len(stop)) if self.pending.endswith(stop[:size])),
                   default=0)
        ready, self.pending = self.pending[: len(self.pending) - keep], self.pending[len(self.pending) - keep :]
        return ready

    def flush(self) -> str:
        ready, self.pending = self.pending, ""
        return "" if self.stopped else ready


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_body(request: ChatRequest, completion: Completion) -> dict:
    return {
        "id": request.request_id,
        "object": "chat.completion",
        "created": request.created,
        "model": request.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": completion.text},
            "logprobs": None,
            "finish_reason": completion.finish_reason,
        }],
        "usage": usage(request.prompt_tokens, completion.completion_tokens),
    }


def chunk_body(request: ChatRequest, delta: dict | None, finish_reason: str | None = None,
               usage_counts: dict | None = None) -> dict:
    """One `chat.completion.chunk`; `delta=None` makes the usage-only chunk that ends an `include_usage` stream."""
    chunk = {
        "id": request.request_id,
        "object": "chat.completion.chunk",
        "created": request.created,
        "model": request.model,
        "choices": [] if delta is None else [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ],
    }
    if request.include_usage:
        chunk["usage"] = usage_counts  # null on every chunk but the last, as OpenAI sends it
    return chunk


# ----------------------------------------------------------------------------------------------------------------
# Audio transcriptions and translations (OpenAI's /v1/audio/* endpoints, multipart form fields)
# ----------------------------------------------------------------------------------------------------------------
TRANSCRIPTION_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
TIMESTAMP_GRANULARITIES = ("word", "segment")
TRANSCRIPTION_FIELDS = frozenset({"file", "model", "language", "prompt", "response_format", "temperature",
                                  "timestamp_granularities[]", "timestamp_granularities", "long_audio"})
# The `long_audio` form field (an extension): how clips over 30 s are cut into windows (the pipeline's modes).
TRANSCRIPTION_LONG_AUDIO = ("chunk", "sequential", "vad")


@dataclass
class TranscriptionRequest:
    """One validated transcription (`task="transcribe"`) or translation into English (`task="translate"`)."""

    model: str
    task: str
    waveform: np.ndarray
    language: str | None
    response_format: str
    granularities: tuple[str, ...]
    generate_kwargs: dict
    long_audio: str | None = None  # None: the server's `ServerLimits.long_audio`

    @property
    def output_language(self) -> str | None:
        return "en" if self.task == "translate" else None

    @property
    def timestamps(self) -> bool:
        return self.response_format in ("srt", "vtt") or (
            self.response_format == "verbose_json" and bool(self.granularities))

    @property
    def seconds(self) -> float:
        return len(self.waveform) / QWEN_AUDIO_SAMPLING_RATE

    @property
    def batch_key(self):
        return ("audio", self.task, self.language, self.timestamps, tuple(sorted(self.generate_kwargs.items())),
                self.long_audio)


def _single_field(fields: Mapping, name: str) -> str | None:
    values = fields.get(name) or []
    if len(values) > 1:
        raise RequestError(f"'{name}' is given {len(values)} times.", param=name, code="invalid_value")
    if values and not isinstance(values[0], str):
        raise RequestError(f"'{name}' must be a form field, not a file.", param=name, code="invalid_type")
    return values[0] if values else None


def parse_transcription_request(fields: Mapping, audio: bytes | None, task: str, model_name: str,
                                limits: ServerLimits) -> TranscriptionRequest:
    """
    Validates the form fields of an audio transcription/translation request (`fields`: name -> list of values) and
    decodes its `file` (`audio`); raises `RequestError` on any problem.
    """
    from ..task_prompts import build_task_prompt

    for name in fields:
        if name not in TRANSCRIPTION_FIELDS:
            raise RequestError(f"Unrecognized request argument supplied: {name}", param=name, code="unknown_parameter")
    if audio is None:
        raise RequestError("Send the audio as the multipart file field 'file'.", param="file",
                           code="missing_required_parameter")
    if _single_field(fields, "prompt"):
        raise RequestError("'prompt' is not supported: Qwen-Audio's transcription cannot be conditioned on text.",
                           param="prompt", code="unsupported_parameter")
    response_format = _single_field(fields, "response_format") or "json"
    if response_format not in TRANSCRIPTION_FORMATS:
        raise RequestError(f"'response_format' must be one of {', '.join(TRANSCRIPTION_FORMATS)}, got "
                           f"{response_format!r}.", param="response_format", code="invalid_value")
    granularities = tuple(dict.fromkeys(
        (fields.get("timestamp_granularities[]") or []) + (fields.get("timestamp_granularities") or [])))
    for granularity in granularities:
        if granularity not in TIMESTAMP_GRANULARITIES:
            raise RequestError(f"Unknown timestamp granularity {granularity!r}; use 'word' or 'segment'.",
                               param="timestamp_granularities[]", code="invalid_value")
    if granularities and response_format != "verbose_json":
        raise RequestError("'timestamp_granularities' needs response_format 'verbose_json'.",
                           param="timestamp_granularities[]", code="invalid_value")
    language = _single_field(fields, "language")
    if task == "transcribe" and not language:
        raise RequestError("'language' is required: Qwen-Audio's transcription prompt names the spoken language "
                           "(en, zh, de, es, ko, fr, ja, it).", param="language", code="missing_required_parameter")
    temperature = _single_field(fields, "temperature")
    generate_kwargs = {"max_new_tokens": limits.transcription_max_tokens}
    if temperature is not None:
        try:
            value = float(temperature)
        except ValueError:
            raise RequestError("'temperature' must be a number.", param="temperature", code="invalid_type") from None
        generate_kwargs.update(_generation_settings({"temperature": value}, limits))
        generate_kwargs["max_new_tokens"] = limits.transcription_max_tokens
    long_audio = _single_field(fields, "long_audio")
    if long_audio is not None and long_audio not in TRANSCRIPTION_LONG_AUDIO:
        raise RequestError(f"'long_audio' must be one of {', '.join(TRANSCRIPTION_LONG_AUDIO)}, got {long_audio!r}.",
                           param="long_audio", code="invalid_value")
    request = TranscriptionRequest(model=model_name, task=task, waveform=np.zeros(0, np.float32), language=language,
                                   response_format=response_format, granularities=granularities,
                                   generate_kwargs=generate_kwargs, long_audio=long_audio)
    try:  # the pipeline's own rules for languages and timestamps
        build_task_prompt(task, audio_language=language or "unknown", output_language=request.output_language,
                          timestamps=request.timestamps)
    except (ValueError, TypeError) as error:
        raise RequestError(" ".join(str(error).split()), param="language", code="invalid_value") from None
    request.waveform = _decode_clip(audio, "file", limits)
    return request


def transcription_body(request: TranscriptionRequest, result: dict):
    """The response to a transcription: a dict (JSON formats) or a string (text, srt, vtt)."""
    from ..subtitles import group_into_cues, to_srt, to_vtt

    text = result["text"]
    if request.response_format == "text":
        return text + "\n"
    if request.response_format in ("srt", "vtt"):
        render = to_srt if request.response_format == "srt" else to_vtt
        return render(result.get("chunks", []), duration=request.seconds)
    body = {"text": text, "usage": {"type": "duration", "seconds": math.ceil(request.seconds)}}
    if request.response_format == "verbose_json":
        body = {"task": "transcribe" if request.task == "transcribe" else "translate",
                "language": request.language or "unknown", "duration": round(request.seconds, 3), **body}
        chunks = result.get("chunks", [])
        if "word" in request.granularities:
            # One cue per word: the words with their missing ends filled in the subtitles' way.
            body["words"] = [{"word": cue["text"], "start": cue["start"], "end": cue["end"]}
                             for cue in group_into_cues(chunks, max_chars=0, duration=request.seconds)]
        if "segment" in request.granularities:
            body["segments"] = [{"id": index, "seek": 0, "start": cue["start"], "end": cue["end"], "text": cue["text"]}
                                for index, cue in enumerate(group_into_cues(chunks, duration=request.seconds))]
    return body
