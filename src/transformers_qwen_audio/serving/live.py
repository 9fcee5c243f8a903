# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Live transcription over a WebSocket (`/v1/audio/live`; the protocol is in docs/serving.md).

The client streams 16-bit little-endian mono PCM at 16 kHz in binary messages (the first may begin with a WAV
header), optionally after a `{"type": "config", "language": "en", "sample_rate": 16000}` message, and ends with
`{"type": "end"}`. The server keeps a rolling buffer (`long_form.LiveTranscript`), transcribes it with word timestamps
through the app's batcher (so live sessions share batches with each other and with uploads), and answers
`{"type": "partial", "words": [...]}` (words that may still change) and `{"type": "final", "words": [...]}` (words
that will not), each word `{"word", "start", "end"}` on the stream's time line, then `{"type": "done"}`. A bad
message gets `{"type": "error", "message", "code"}` and is dropped; a message over the size limit or a stream over
the server's `max_audio_seconds` also closes the session. A closed or vanished client frees its buffer at once.
"""

import asyncio
import hmac
import json
import struct
from dataclasses import dataclass

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..audio_io import QWEN_AUDIO_SAMPLING_RATE
from ..batching import QueueFullError
from ..long_form import LiveTranscript
from .protocol import ServerLimits, TranscriptionRequest


LIVE_ROUTE = "/v1/audio/live"
# RFC 6455 close codes: policy violation (authentication, stream too long) and message too big.
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
SAMPLE_BYTES = 2  # PCM16


class LiveError(Exception):
    """A message the session refuses: sent as `{"type": "error"}`; with `close`, the session ends after it."""

    def __init__(self, message: str, code: str, close: int | None = None):
        super().__init__(message)
        self.message, self.code, self.close = message, code, close


@dataclass
class LiveSessions:
    """How many live sessions are open now (`active`) and were ever opened (`opened`): `app.state.live_sessions`."""

    active: int = 0
    opened: int = 0


def pcm16_samples(data: bytes) -> np.ndarray:
    """Float32 samples of little-endian 16-bit PCM bytes."""
    if len(data) % SAMPLE_BYTES:
        raise LiveError(f"A binary message carries 16-bit samples; {len(data)} bytes is not a whole number of them.",
                        code="invalid_audio")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def wav_payload(data: bytes) -> bytes:
    """The sample bytes after a WAV header (16-bit PCM mono 16 kHz only; a streamed WAV's sizes are not trusted)."""
    position, fmt = 12, None
    if len(data) < 12 or data[8:12] != b"WAVE":
        raise LiveError("The stream starts with 'RIFF' but is not a WAV header.", code="invalid_audio")
    while position + 8 <= len(data):
        chunk_id, size = data[position: position + 4], struct.unpack("<I", data[position + 4: position + 8])[0]
        body = position + 8
        if chunk_id == b"fmt ":
            if body + 16 > len(data):
                break
            fmt = struct.unpack("<HHIIHH", data[body: body + 16])
        elif chunk_id == b"data":
            if fmt is None:
                break
            encoding, channels, rate, _, _, bits = fmt
            if (encoding, channels, bits) != (1, 1, 16):
                raise LiveError(f"The WAV header says {channels} channel(s) of {bits}-bit audio (format {encoding}); "
                                "send 16-bit PCM mono.", code="invalid_audio")
            check_sample_rate(rate)
            return data[body:]
        position = body + size + size % 2
    raise LiveError("The WAV header is incomplete: send it whole (up to its 'data' chunk) in the first message.",
                    code="invalid_audio")


def check_sample_rate(rate) -> None:
    if rate != QWEN_AUDIO_SAMPLING_RATE:
        raise LiveError(f"The stream's sample rate is {rate!r}; this server takes {QWEN_AUDIO_SAMPLING_RATE} Hz "
                        "(resample on the client).", code="invalid_sample_rate")


def parse_control(text: str) -> dict:
    try:
        message = json.loads(text)
    except ValueError as error:
        raise LiveError(f"A text message must be JSON: {' '.join(str(error).split())}", code="invalid_json") from None
    if not isinstance(message, dict) or message.get("type") not in ("config", "end"):
        raise LiveError("A text message must be {'type': 'config', ...} or {'type': 'end'}.", code="invalid_value")
    return message


def words_message(kind: str, words) -> dict:
    return {"type": kind, "words": [{"word": word["text"], "start": word["timestamp"][0], "end": word["timestamp"][1]}
                                    for word in words]}


def authorized(websocket: WebSocket, api_key: str | None) -> bool:
    """The routes' rule: `Authorization: Bearer <api_key>` when the server has a key."""
    if not api_key:
        return True
    scheme, _, given = websocket.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), api_key.encode())


class LiveSession:
    """One client's stream: its settings, its `LiveTranscript`, and the model calls through the batcher."""

    def __init__(self, websocket: WebSocket, batcher, limits: ServerLimits, model_name: str, max_message_bytes: int,
                 generation_config=None):
        self.websocket, self.batcher, self.limits = websocket, batcher, limits
        self.model_name, self.max_message_bytes = model_name, max_message_bytes
        self.language = "en"
        self.transcript = LiveTranscript.for_model(generation_config)
        self.started = False  # audio has come (a config or a WAV header is only taken before that)

    async def run(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                if await self.handle(message):
                    await self.transcribe_due()
                    await self.send({"type": "done"})
                    await self.websocket.close()
                    return
                await self.transcribe_due()
            except LiveError as error:
                await self.send({"type": "error", "message": error.message, "code": error.code})
                if error.close:
                    await self.websocket.close(code=error.close)
                    return

    async def handle(self, message: dict) -> bool:
        """Takes one client message; returns True at the end of the stream."""
        data, text = message.get("bytes"), message.get("text")
        size = len(data) if data is not None else len((text or "").encode())
        if size > self.max_message_bytes:
            raise LiveError(f"A message has {size} bytes; this server accepts at most {self.max_message_bytes}.",
                            code="message_too_large", close=CLOSE_MESSAGE_TOO_BIG)
        if data is None:
            control = parse_control(text or "")
            if control["type"] == "end":
                self.transcript.finish()
                return True
            self.configure(control)
            return False
        if not self.started and data[:4] == b"RIFF":
            data = wav_payload(data)
        samples = pcm16_samples(data)
        if self.transcript.seconds + len(samples) / QWEN_AUDIO_SAMPLING_RATE > self.limits.max_audio_seconds:
            raise LiveError(f"The stream passes {self.limits.max_audio_seconds:g} s, this server's limit (start it "
                            "with a larger --max-audio-seconds for longer streams).", code="audio_too_long",
                            close=CLOSE_POLICY_VIOLATION)
        self.started = True
        # Off the event loop: with the VAD, a push runs silero-vad over the new frames (4.5 ms for 0.5 s of audio),
        # which would hold up every other client's messages and requests meanwhile.
        await asyncio.to_thread(self.transcript.push, samples)
        return False

    def configure(self, control: dict) -> None:
        from ..task_prompts import build_task_prompt

        if self.started:
            raise LiveError("Send the config before the audio.", code="invalid_value")
        unknown = set(control) - {"type", "language", "sample_rate"}
        if unknown:
            raise LiveError(f"Unknown config field(s): {', '.join(sorted(unknown))}.", code="unknown_parameter")
        check_sample_rate(control.get("sample_rate", QWEN_AUDIO_SAMPLING_RATE))
        language = control.get("language", self.language)
        try:  # the pipeline's own rule for languages
            build_task_prompt("transcribe", audio_language=language, timestamps=True)
        except (ValueError, TypeError) as error:
            raise LiveError(" ".join(str(error).split()), code="invalid_value") from None
        self.language = language

    async def transcribe_due(self) -> None:
        while self.transcript.due():
            finals = self.transcript.settle(await self.transcribe(self.transcript.window_audio()))
            if finals:
                await self.send(words_message("final", finals))
            await self.send(words_message("partial", self.transcript.partial))

    async def transcribe(self, window: np.ndarray) -> list[dict]:
        request = TranscriptionRequest(
            model=self.model_name, task="transcribe", waveform=window, language=self.language,
            response_format="verbose_json", granularities=("word",),
            generate_kwargs={"max_new_tokens": self.limits.transcription_max_tokens}, long_audio="truncate")
        try:
            result = await asyncio.wrap_future(self.batcher.submit(request, key=request.batch_key))
        except QueueFullError as error:
            raise LiveError(f"The server is busy ({error}); retry later.", code="server_busy",
                            close=CLOSE_POLICY_VIOLATION) from None
        except (ValueError, TypeError) as error:  # the pipeline refused the window
            raise LiveError(" ".join(str(error).split()), code="invalid_value") from None
        return result.get("chunks", [])

    async def send(self, payload: dict) -> None:
        await self.websocket.send_text(json.dumps(payload, ensure_ascii=False))


def add_live_route(app, batcher, limits: ServerLimits, model_name: str, api_key: str | None,
                   max_message_bytes: int, generation_config=None) -> None:
    """Registers `LIVE_ROUTE` on `app`; `app.state.live_sessions` counts its sessions. `generation_config` is the
    model's (its declared long-form window sets the live windows: `LiveTranscript.for_model`)."""
    sessions = app.state.live_sessions = LiveSessions()

    @app.websocket(LIVE_ROUTE)
    async def live_transcription(websocket: WebSocket):
        if not authorized(websocket, api_key):
            await websocket.close(code=CLOSE_POLICY_VIOLATION, reason="Missing or incorrect API key")
            return
        await websocket.accept()
        sessions.active += 1
        sessions.opened += 1
        try:
            await LiveSession(websocket, batcher, limits, model_name, max_message_bytes, generation_config).run()
        except (WebSocketDisconnect, RuntimeError):  # the client left mid-answer: nothing to tell it
            pass
        finally:
            sessions.active -= 1


__all__ = ["LIVE_ROUTE", "LiveSessions", "add_live_route", "pcm16_samples", "wav_payload"]
