# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The OpenAI-compatible app: FastAPI routes over the `audio-chat` pipeline.

Why not `transformers serve` (transformers 5.24, `transformers/cli/serving/`): it loads models by
`getattr(transformers, config.architectures[0])` or the in-tree multimodal Auto mapping, and routes `input_audio`
only to models whose class is in that in-tree mapping, so an out-of-tree model (or the released `qwen` layout) is
refused as "Unknown modality" or gets its audio dropped; it hands audio to the processor as `data:` URLs, bypassing the
pipeline (chat format, stop tokens, long audio); its errors are `{"detail"}` with 422 and unknown fields are only
logged; it has no body size limit and batches only through continuous batching (paged attention over token ids,
no audio features). A thin app over the pipeline keeps one code path for inference.
"""

import asyncio
import copy
import hmac
import json
import threading
import time

import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from transformers import AsyncTextIteratorStreamer, StoppingCriteriaList

from ..batching import DynamicBatcher, QueueFullError, StopWhenCancelled
from ..long_form import default_long_audio
from .protocol import (
    ChatRequest,
    Completion,
    RequestError,
    ServerLimits,
    StopSequenceFilter,
    TranscriptionRequest,
    chunk_body,
    completion_body,
    parse_chat_request,
    parse_transcription_request,
    transcription_body,
    truncate_at_stop,
    usage,
)
from .live import add_live_route
from .timeouts import BodyReadTimeout, head_deadline_protocol


DEFAULT_MAX_BODY_BYTES = 32 * 2**20
OWNED_BY = "transformers-qwen-audio"
# OpenAI's bodies nest about 6 levels deep; far deeper JSON is an attack on the parser (or on code that walks it).
MAX_JSON_DEPTH = 64
# How long a request's head (request line and headers) and each piece of its body may take to arrive: slow clients
# would otherwise hold connections open forever (uvicorn times out only idle keep-alive connections).
DEFAULT_READ_TIMEOUT_S = 30.0
# uvicorn's own default: an idle keep-alive connection is closed after this long.
DEFAULT_KEEP_ALIVE_S = 5.0


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 500 else text[:497] + "..."


class _StreamWork:
    """A streamed request as the batcher carries it: the request, the streamer its text goes to, its cancel flag."""

    def __init__(self, request: ChatRequest, streamer, cancelled: threading.Event):
        self.request = request
        self.streamer = streamer
        self.cancelled = cancelled


class InferenceEngine:
    """Turns validated requests (chats, streamed chats, transcriptions) into pipeline calls, and their results into
    what the protocol returns."""

    def __init__(self, pipe, limits: ServerLimits):
        self.pipe = pipe
        # Uploads to /v1/audio/transcriptions without a `long_audio` field: a model that declares a short long-form
        # window is cut at pauses (`long_form.default_long_audio`); any other as the limits say.
        self.transcription_long_audio = default_long_audio(pipe.model.generation_config, limits.long_audio)
        self.limits = limits
        self.context_length = getattr(pipe.model.config.get_text_config(), "max_position_embeddings", None)
        # Prompts are counted on request threads while the worker tokenizes with the pipeline's processor: a fast
        # tokenizer must not be used by two threads at once ("Already borrowed"), hence a copy behind a lock.
        self._counting_processor = copy.deepcopy(pipe.processor)
        self._counting_lock = threading.Lock()

    def prepare(self, body, model_name: str) -> ChatRequest:
        """Validates and decodes a request, and counts its prompt tokens (the audio spans included)."""
        request = parse_chat_request(body, model_name, self.limits)
        try:
            # The processor's own count: the same template and audio arithmetic the pipeline tokenizes with.
            with self._counting_lock:
                encoded = self._counting_processor.apply_chat_template(
                    request.messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                    processor_kwargs={"long_audio": self.limits.long_audio},
                )
        except (ValueError, TypeError) as error:
            raise RequestError(_one_line(error), param="messages", code="invalid_value") from None
        request.prompt_tokens = len(encoded["input_ids"][0])
        if self.context_length and request.prompt_tokens + request.max_new_tokens > self.context_length:
            raise RequestError(
                f"This model's context is {self.context_length} tokens; the prompt takes {request.prompt_tokens} "
                f"and max_tokens asks for {request.max_new_tokens} more. Shorten the conversation or lower max_tokens.",
                param="messages", code="context_length_exceeded")
        return request

    def run_batch(self, work: list) -> list:
        """The batcher's callback: one pipeline call for requests of equal settings (or one streamed request)."""
        if isinstance(work[0], TranscriptionRequest):
            return self._transcribe(work)
        streamed = work[0] if isinstance(work[0], _StreamWork) else None
        requests = [streamed.request] if streamed else work
        first = requests[0]
        kwargs = dict(first.generate_kwargs)
        if first.stop:
            kwargs["stop_sequence"] = first.stop
        if streamed:
            kwargs["streamer"] = streamed.streamer
            kwargs["stopping_criteria"] = StoppingCriteriaList([StopWhenCancelled(streamed.cancelled)])
        if first.seed is not None:
            torch.manual_seed(first.seed)  # runs alone (batch_key None): the seed fixes this request's sampling
        try:
            outputs = self.pipe(
                [request.messages for request in requests], batch_size=len(requests), return_tensors=True,
                long_audio=self.limits.long_audio, **kwargs,
            )
        except BaseException:
            if streamed:
                streamed.streamer.end()  # wakes the reader, which then gets the error from the future
            raise
        return [self._completion(request, output) for request, output in zip(requests, outputs)]

    def _transcribe(self, requests: list[TranscriptionRequest]) -> list[dict]:
        first = requests[0]
        return self.pipe(
            [request.waveform for request in requests], batch_size=len(requests), task=first.task,
            language=first.language, output_language=first.output_language,
            return_timestamps="word" if first.timestamps else False,
            long_audio=first.long_audio or self.transcription_long_audio, **first.generate_kwargs,
        )

    def _completion(self, request: ChatRequest, output) -> Completion:
        token_ids = output[0]["generated_token_ids"]
        token_ids = token_ids.tolist() if hasattr(token_ids, "tolist") else list(token_ids)
        text = self.pipe.tokenizer.decode(token_ids, skip_special_tokens=True)
        text, hit_stop_sequence = truncate_at_stop(text, request.stop)
        if hit_stop_sequence:
            return Completion(text, len(token_ids), "stop")
        if len(token_ids) >= request.max_new_tokens:
            return Completion(text, len(token_ids), "length")
        # The pipeline returns the reply without the stop token the model generated last; usage counts it.
        return Completion(text, len(token_ids) + 1, "stop")


def _error_response(error: RequestError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.status)


def _sse(payload) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def limited_body(request: Request, max_bytes: int):
    """The request's body, chunk by chunk, refused with 413 past `max_bytes` (a declared length before reading)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError("Invalid Content-Length header.", code="invalid_header")
        if int(declared) > max_bytes:
            raise RequestError(f"The request body has {int(declared)} bytes; this server accepts at most {max_bytes}.",
                               status=413, code="request_too_large")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(f"The request body exceeds {max_bytes} bytes.", status=413, code="request_too_large")
        yield chunk


def _json_depth(value) -> int:
    """How deeply `value` nests arrays and objects, walked without recursion (stops past `MAX_JSON_DEPTH`)."""
    deepest, pending = 0, [(value, 1)]
    while pending and deepest <= MAX_JSON_DEPTH:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest


def parse_json_body(body: bytes):
    """A JSON request body, refused as a 400 when it is empty, invalid or nested more than `MAX_JSON_DEPTH` deep."""
    if not body:
        raise RequestError("The request body is empty; send a JSON object.", code="invalid_json")
    too_deep = RequestError(f"The request body nests JSON more than {MAX_JSON_DEPTH} levels deep (this server's "
                            "limit).", code="json_too_deep")
    try:
        value = json.loads(body)
    except RecursionError:  # the parser's own stack limit, far below 100,000 levels
        raise too_deep from None
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(f"The request body is not valid JSON: {_one_line(error)}", code="invalid_json") from None
    if _json_depth(value) > MAX_JSON_DEPTH:
        raise too_deep
    return value


async def read_json_body(request: Request, max_bytes: int):
    """The request's JSON body, at most `max_bytes` long."""
    return parse_json_body(b"".join([chunk async for chunk in limited_body(request, max_bytes)]))


async def read_form(request: Request, max_bytes: int) -> tuple[dict, bytes | None]:
    """A multipart form at most `max_bytes` long: its fields (name -> list of values) and its `file` bytes."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise RequestError("Send the audio as multipart/form-data with a 'file' field.", code="invalid_content_type")
    parser = MultiPartParser(request.headers, limited_body(request, max_bytes), max_files=1, max_fields=32)
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise RequestError(f"Malformed multipart body: {error.message}", code="invalid_form") from None
    try:
        fields, audio = {}, None
        for name, value in form.multi_items():
            if isinstance(value, StarletteUploadFile):
                if name != "file":
                    raise RequestError(f"Unexpected file field {name!r}; send the audio as 'file'.", param=name,
                                       code="unknown_parameter")
                audio = await value.read()
            else:
                fields.setdefault(name, []).append(value)
        return fields, audio
    finally:
        await form.close()


def build_app(pipe, model_name: str, limits: ServerLimits | None = None, max_batch_size: int = 8,
              batch_wait_s: float = 0.01, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
              max_pending: int = 256, api_key: str | None = None,
              read_timeout_s: float = DEFAULT_READ_TIMEOUT_S) -> FastAPI:
    """
    The FastAPI app serving `pipe` (an `audio-chat` pipeline) under the name `model_name`. With `api_key`, the `/v1`
    routes and `/health` require `Authorization: Bearer <api_key>`, as OpenAI's API does. A request body that stalls
    for `read_timeout_s` gets a 408 (`server_config` applies the same deadline to request heads).

    `app.state.batcher.stats` tells how requests were batched; `/health` reports the same.
    """
    if api_key is not None and not api_key.strip():
        raise ValueError("`api_key` is empty: an empty key would turn authentication off; give a key or None.")
    if not read_timeout_s > 0:
        raise ValueError(f"`read_timeout_s` must be positive, got {read_timeout_s!r}.")
    limits = limits or ServerLimits()
    engine = InferenceEngine(pipe, limits)
    batcher = DynamicBatcher(engine.run_batch, max_batch_size=max_batch_size, max_wait_s=batch_wait_s,
                             max_pending=max_pending)
    started = int(time.time())

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()

    app = FastAPI(title="Qwen-Audio (OpenAI-compatible)", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher = batcher
    app.state.engine = engine
    app.state.model_name = model_name
    app.state.read_timeout_s = read_timeout_s
    app.add_middleware(BodyReadTimeout, seconds=read_timeout_s)

    @app.middleware("http")
    async def require_api_key(http_request: Request, call_next):
        path = http_request.url.path
        if api_key and (path.startswith("/v1") or path == "/health"):
            scheme, _, given = http_request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
                return _error_response(RequestError("Missing or incorrect API key: send 'Authorization: Bearer <key>'.",
                                                    code="invalid_api_key", status=401))
        return await call_next(http_request)

    @app.exception_handler(RequestError)
    async def request_error(_request, error: RequestError):
        return _error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, error: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code)
        return _error_response(RequestError(str(error.detail), code=code, status=error.status_code))

    @app.exception_handler(Exception)
    async def unexpected_error(_request, error: Exception):
        # The client gets one line; Starlette re-raises after this response, so the server log has the traceback.
        return _error_response(RequestError(f"Internal server error: {_one_line(error)}", code="internal_error",
                                            status=500, error_type="server_error"))

    def model_card() -> dict:
        return {"id": model_name, "object": "model", "created": started, "owned_by": OWNED_BY}

    def check_model(name) -> None:
        if name is None:
            return  # OpenAI requires it; a single-model server can do without
        if not isinstance(name, str):
            raise RequestError("'model' must be a string.", param="model", code="invalid_type")
        if name != model_name:
            raise RequestError(f"The model '{name}' does not exist; this server serves '{model_name}'.",
                               param="model", code="model_not_found", status=404)

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str):
        check_model(name)
        return model_card()

    @app.get("/health")
    async def health():
        # No model name: served under its local path by default, it would tell anyone the server's folders.
        return {"status": "ok", "batcher": batcher.stats.to_dict()}

    def submit(payload, key):
        try:
            return asyncio.wrap_future(batcher.submit(payload, key=key))
        except QueueFullError as error:
            raise RequestError(f"The server is busy ({error}); retry later.", code="server_busy", status=503,
                               error_type="server_error") from None

    @app.post("/v1/chat/completions")
    async def chat_completions(http_request: Request):
        body = await read_json_body(http_request, max_body_bytes)
        check_model(body.get("model") if isinstance(body, dict) else None)
        request = await run_in_threadpool(engine.prepare, body, model_name)
        if request.stream:
            # Queued here, not in the generator: a full queue is then still a plain 503.
            streamer = AsyncTextIteratorStreamer(pipe.tokenizer, skip_prompt=True, skip_special_tokens=True)
            cancelled = threading.Event()
            result = submit(_StreamWork(request, streamer, cancelled), None)
            return StreamingResponse(stream_events(request, streamer, cancelled, result), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            completion = await submit(request, request.batch_key)
        except (ValueError, TypeError) as error:  # the pipeline refused this request
            raise RequestError(_one_line(error), code="invalid_value") from None
        return JSONResponse(completion_body(request, completion))

    async def audio_endpoint(http_request: Request, task: str):
        fields, audio = await read_form(http_request, max_body_bytes)
        model = fields.get("model") or [None]
        check_model(model[0])
        request = await run_in_threadpool(parse_transcription_request, fields, audio, task, model_name, limits)
        try:
            result = await submit(request, request.batch_key)
        except (ValueError, TypeError) as error:
            raise RequestError(_one_line(error), code="invalid_value") from None
        body = transcription_body(request, result)
        if isinstance(body, dict):
            return JSONResponse(body)
        media_type = {"srt": "application/x-subrip", "vtt": "text/vtt"}.get(request.response_format, "text/plain")
        return PlainTextResponse(body, media_type=media_type)

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(http_request: Request):
        return await audio_endpoint(http_request, "transcribe")

    @app.post("/v1/audio/translations")
    async def translations(http_request: Request):
        return await audio_endpoint(http_request, "translate")

    add_live_route(app, batcher, limits, model_name, api_key, max_message_bytes=max_body_bytes,
                   generation_config=pipe.model.generation_config)

    async def stream_events(request: ChatRequest, streamer, cancelled: threading.Event, result):
        stop_filter = StopSequenceFilter(request.stop)
        try:
            yield _sse(chunk_body(request, {"role": "assistant", "content": ""}))
            async for piece in streamer:
                text = stop_filter.push(piece)
                if text:
                    yield _sse(chunk_body(request, {"content": text}))
            try:
                completion = await result
            except Exception as error:  # noqa: BLE001 - the status line is sent: the error goes in the stream
                is_client_error = isinstance(error, (ValueError, TypeError))
                yield _sse(RequestError(
                    _one_line(error), code="invalid_value" if is_client_error else "internal_error",
                    status=400 if is_client_error else 500,
                    error_type="invalid_request_error" if is_client_error else "server_error").to_dict())
                yield "data: [DONE]\n\n"
                return
            tail = stop_filter.flush()
            if tail:
                yield _sse(chunk_body(request, {"content": tail}))
            yield _sse(chunk_body(request, {}, finish_reason=completion.finish_reason))
            if request.include_usage:
                yield _sse(chunk_body(request, None, usage_counts=usage(request.prompt_tokens,
                                                                         completion.completion_tokens)))
            yield "data: [DONE]\n\n"
        finally:
            # The client left (or the stream ended): stop generating for nobody.
            cancelled.set()
            result.cancel()

    return app


def server_config(app, log_level: str = "info", keep_alive_s: float = DEFAULT_KEEP_ALIVE_S):
    """uvicorn's configuration for an app of `build_app`: its read timeout on request heads too, idle keep-alive
    connections closed after `keep_alive_s`, five seconds for a graceful shutdown."""
    import uvicorn

    if not keep_alive_s > 0:
        raise ValueError(f"`keep_alive_s` must be positive, got {keep_alive_s!r}.")
    return uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5, timeout_keep_alive=keep_alive_s,
                          http=head_deadline_protocol(app.state.read_timeout_s))


class BackgroundServer:
    """
    `app` served by uvicorn in a background thread (a notebook, a test, a benchmark), on `host` at `port` (0: a free
    one). `url` is its address; `stop()` shuts it down gracefully.

    ```python
    >>> server = BackgroundServer(build_app(pipe, "qwen-audio-chat"))
    >>> client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    >>> server.stop()
    ```
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, start_timeout_s: float = 30.0,
                 log_level: str = "warning", keep_alive_s: float = DEFAULT_KEEP_ALIVE_S):
        import socket

        import uvicorn

        self.app = app
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.bind((host, port))
        self.server = uvicorn.Server(server_config(app, log_level, keep_alive_s))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True,
                                       name="qwen-audio-server")
        self.thread.start()
        deadline = time.monotonic() + start_timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.server.should_exit = True
                sock.close()
                raise RuntimeError(f"The server did not start on {host}:{port}.")
            time.sleep(0.01)
        shown_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown_host}:{sock.getsockname()[1]}"

    def stop(self, timeout_s: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
