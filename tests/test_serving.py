"""
`qwen-audio serve`: a live OpenAI-compatible server on 127.0.0.1 (uvicorn in a thread, or the CLI in a subprocess),
driven with the official `openai` client and with raw HTTP for the malformed requests a client library would not send.
All traffic goes to 127.0.0.1 only, with timeouts.
"""

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from transformers import LogitsProcessor, LogitsProcessorList, pipeline  # noqa: E402

from transformers_qwen_audio import register_pipeline, subtitles  # noqa: E402
from transformers_qwen_audio.cli import main as cli_main  # noqa: E402
from transformers_qwen_audio.convert import convert  # noqa: E402
from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint, chirp  # noqa: E402
from transformers_qwen_audio.feature_extraction_qwen_audio import audio_span_length  # noqa: E402
from transformers_qwen_audio.serving.app import BackgroundServer, build_app  # noqa: E402
from transformers_qwen_audio.serving.protocol import ServerLimits  # noqa: E402

from readable_checkpoints import limit_output_head  # noqa: E402

MODEL_NAME = "tiny-chat"
MAX_BODY_BYTES = 2 * 2**20
BATCH_WAIT_S = 0.25
TIMEOUT_S = 60
SR = 16000


# ----------------------------------------------------------------------------------------------------------------
# A tiny model whose replies are readable text, and a live server over it
# ----------------------------------------------------------------------------------------------------------------
def build_text_speaking_checkpoint(folder: Path) -> Path:
    """
    The demo's tiny released checkpoint with its output head limited to printable ASCII: random weights mostly pick
    special tokens (decoded to nothing) or lone UTF-8 bytes, which leaves nothing to compare or to stop on. The
    other rows are zeroed, so those tokens (end of text included) are chosen practically never.
    """
    build_released_checkpoint(folder)
    return limit_output_head(folder, range(32, 127))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    released = build_text_speaking_checkpoint(root / "released")
    native = convert(released, root / "native", overwrite=True)
    return {"released": released, "native": Path(native)}


@pytest.fixture(scope="module")
def pipe(checkpoints):
    register_pipeline()
    return pipeline("audio-chat", model=str(checkpoints["native"]))


@pytest.fixture(scope="module")
def server(pipe):
    limits = ServerLimits(max_audio_seconds=30.0, max_tokens=64, default_max_tokens=12, transcription_max_tokens=12)
    app = build_app(pipe, MODEL_NAME, limits, max_batch_size=4, batch_wait_s=BATCH_WAIT_S,
                    max_body_bytes=MAX_BODY_BYTES)
    live = BackgroundServer(app)
    yield live
    live.stop()
    assert not live.thread.is_alive()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as session:
        yield session


def encode(waveform, audio_format="wav") -> str:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, SR, format=audio_format.upper())
    return base64.b64encode(buffer.getvalue()).decode()


def audio_part(waveform, audio_format="wav") -> dict:
    return {"type": "input_audio", "input_audio": {"data": encode(waveform, audio_format), "format": audio_format}}


def tone(seconds, frequency=440.0):
    time_axis = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * frequency * time_axis)).astype(np.float32)


def decoded(waveform, audio_format):
    """What the server hears of `waveform` sent in `audio_format` (lossy formats change the samples)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, SR, format=audio_format.upper())
    buffer.seek(0)
    samples, _ = soundfile.read(buffer, dtype="float32")
    return samples


def greedy(client, messages, **kwargs):
    kwargs.setdefault("max_tokens", 12)
    return client.chat.completions.create(model=MODEL_NAME, messages=messages, temperature=0, **kwargs)


def multi_turn_conversation():
    """System message, two clips in one user turn (WAV and FLAC), an assistant turn, a follow-up."""
    return [
        {"role": "system", "content": "You are a careful listener."},
        {"role": "user", "content": [audio_part(chirp(), "wav"), audio_part(tone(1.2), "flac"),
                                     {"type": "text", "text": "Compare the two sounds."}]},
        {"role": "assistant", "content": "The first one rises."},
        {"role": "user", "content": [{"type": "text", "text": "And the second?"}]},
    ]


def as_pipeline_conversation(messages):
    """The same conversation as the pipeline takes it, with the clips as the server decodes them."""
    converted = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            parts = []
            for part in content:
                if part["type"] == "input_audio":
                    raw = base64.b64decode(part["input_audio"]["data"])
                    samples, _ = soundfile.read(io.BytesIO(raw), dtype="float32")
                    parts.append({"type": "audio", "audio": samples})
                else:
                    parts.append(part)
            content = parts
        converted.append({"role": message["role"], "content": content})
    return converted


# ----------------------------------------------------------------------------------------------------------------
# Endpoints with the official client
# ----------------------------------------------------------------------------------------------------------------
def test_models_endpoint(client):
    assert [model.id for model in client.models.list().data] == [MODEL_NAME]
    assert client.models.retrieve(MODEL_NAME).owned_by
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_multi_turn_audio_chat_equals_the_pipeline(client, pipe):
    messages = multi_turn_conversation()
    reply = greedy(client, messages, max_tokens=16)
    expected = pipe(as_pipeline_conversation(messages), return_full_text=False, max_new_tokens=16, do_sample=False)
    assert reply.choices[0].message.content == expected[0]["generated_text"]
    assert reply.choices[0].message.role == "assistant"
    assert len(reply.choices[0].message.content) > 0
    assert reply.model == MODEL_NAME and reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    # The tiny head never picks the end-of-text token: the reply stops at max_tokens.
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 16


def test_usage_counts_the_audio_spans(client, pipe):
    clips = [chirp(), tone(1.2)]
    messages = [{"role": "user", "content": [audio_part(clips[0], "wav"), audio_part(clips[1], "flac"),
                                             {"type": "text", "text": "What are these?"}]}]
    usage = greedy(client, messages, max_tokens=5).usage
    # Independent of the processor's expansion: the template's text with empty <audio></audio> spans, tokenized,
    # plus each clip's span length (audio tokens + <audio> + </audio>) in place of the two tag tokens.
    rendered = pipe.processor.apply_chat_template(as_pipeline_conversation(messages), add_generation_prompt=True,
                                                  tokenize=False)
    rendered = re.sub(r"<audio>.*?</audio>", "<audio></audio>", rendered)  # whatever stands for an array
    text_tokens = len(pipe.tokenizer(rendered)["input_ids"])
    expected_prompt = text_tokens - 2 * len(clips) + sum(audio_span_length(len(clip)) for clip in clips)
    assert usage.prompt_tokens == expected_prompt
    assert usage.prompt_tokens > text_tokens + 50  # 3.7 s of audio is ~90 tokens
    assert (usage.completion_tokens, usage.total_tokens) == (5, expected_prompt + 5)


def test_mp3_and_string_content(client, pipe):
    messages = [{"role": "user", "content": [audio_part(chirp(), "mp3"), {"type": "text", "text": "Hm?"}]}]
    reply = greedy(client, messages).choices[0].message.content
    expected = pipe([{"role": "user", "content": [{"type": "audio", "audio": decoded(chirp(), "mp3")},
                                                  {"type": "text", "text": "Hm?"}]}],
                    return_full_text=False, max_new_tokens=12, do_sample=False)[0]["generated_text"]
    assert reply == expected
    text_only = greedy(client, [{"role": "user", "content": "Say something."}]).choices[0].message.content
    assert text_only == pipe([{"role": "user", "content": "Say something."}], return_full_text=False,
                             max_new_tokens=12, do_sample=False)[0]["generated_text"]


def test_streaming_equals_the_plain_reply(client):
    messages = multi_turn_conversation()
    plain = greedy(client, messages, max_tokens=20)
    chunks = list(greedy(client, messages, max_tokens=20, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert len(content_chunks) >= 2  # streamed piece by piece, not in one go
    assert "".join(chunk.choices[0].delta.content for chunk in content_chunks) == plain.choices[0].message.content
    finals = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finals == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == plain.usage.model_dump()
    assert len({chunk.id for chunk in chunks}) == 1 and chunks[0].object == "chat.completion.chunk"


def test_stream_wire_format_ends_with_done(http):
    body = {"model": MODEL_NAME, "stream": True, "max_tokens": 4, "temperature": 0,
            "messages": [{"role": "user", "content": "Hi"}]}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2][6:])["choices"][0]["finish_reason"] == "length"
    assert "usage" not in json.loads(events[0][6:])  # only with stream_options.include_usage


def test_stop_sequences_end_the_reply_before_them(client):
    messages = [{"role": "user", "content": [audio_part(chirp()), {"type": "text", "text": "Describe it."}]}]
    full = greedy(client, messages, max_tokens=24).choices[0].message.content
    # A character that first appears after the start of the reply, and a three-character sequence.
    index = next(i for i in range(2, len(full)) if full[i] not in full[:i])
    single = greedy(client, messages, max_tokens=24, stop=[full[index], "\x00never"])
    assert single.choices[0].message.content == full[:index]
    assert single.choices[0].finish_reason == "stop"
    sequence = full[index : index + 3]
    streamed = greedy(client, messages, max_tokens=24, stop=sequence, stream=True)
    pieces = [(chunk.choices[0].delta.content or "", chunk.choices[0].finish_reason) for chunk in streamed]
    assert "".join(text for text, _ in pieces) == full[: full.index(sequence)]
    assert pieces[-1][1] == "stop"


def test_sampling_with_a_seed_is_reproducible(client):
    messages = [{"role": "user", "content": [audio_part(chirp()), {"type": "text", "text": "Again."}]}]

    def sample(seed):
        return client.chat.completions.create(model=MODEL_NAME, messages=messages, max_completion_tokens=16,
                                              temperature=1.3, top_p=0.95, seed=seed).choices[0].message.content

    first = sample(1234)
    assert sample(1234) == first
    greedy_reply = greedy(client, messages, max_tokens=16).choices[0].message.content
    assert {sample(seed) for seed in (1, 2, 3)} | {first} != {greedy_reply}  # it does sample


def test_concurrent_requests_are_batched_and_equal_the_sequential_replies(client, server):
    conversations = [
        [{"role": "user", "content": [audio_part(chirp()), {"type": "text", "text": "What is it?"}]}],
        [{"role": "user", "content": [audio_part(tone(0.7, 300.0), "flac"), {"type": "text", "text": "Pitch?"}]}],
        [{"role": "user", "content": "A text-only question, longer than the others by a few words."}],
        multi_turn_conversation(),
    ]
    sequential = [greedy(client, messages).choices[0].message.content for messages in conversations]
    stats = server.app.state.batcher.stats
    calls_before = stats.model_calls
    with ThreadPoolExecutor(len(conversations)) as pool:
        concurrent = list(pool.map(lambda messages: greedy(client, messages).choices[0].message.content,
                                   conversations))
    assert concurrent == sequential
    # Four requests within the batching window: fewer model calls than requests, and a real batch among them.
    assert stats.model_calls - calls_before < len(conversations)
    assert stats.largest_batch >= 2
    health = httpx.get(f"{server.url}/health", timeout=TIMEOUT_S).json()
    assert health["batcher"]["largest_batch"] == stats.largest_batch


def test_data_uri_audio_url_needs_no_opt_in(client, pipe):
    wav = encode(chirp())
    by_url = greedy(client, [{"role": "user", "content": [
        {"type": "audio_url", "audio_url": {"url": f"data:audio/wav;base64,{wav}"}},
        {"type": "text", "text": "What is it?"}]}]).choices[0].message.content
    inline = greedy(client, [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}},
        {"type": "text", "text": "What is it?"}]}]).choices[0].message.content
    assert by_url == inline


# ----------------------------------------------------------------------------------------------------------------
# Bad requests: OpenAI-style 400/404/413 JSON, and the server keeps serving
# ----------------------------------------------------------------------------------------------------------------
def _user(*parts):
    return {"model": MODEL_NAME, "messages": [{"role": "user", "content": list(parts)}]}


TEXT = {"type": "text", "text": "What is it?"}
NOISE_BYTES = base64.b64encode(np.random.default_rng(0).bytes(4000)).decode()

BAD_REQUESTS = {
    "bad base64": (_user({"type": "input_audio", "input_audio": {"data": "!!not base64!!", "format": "wav"}}, TEXT),
                   "messages[0].content[0].input_audio.data", "invalid_base64"),
    "unknown format": (_user({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "aac"}}, TEXT),
                       "messages[0].content[0].input_audio.format", "invalid_audio_format"),
    "undecodable audio": (_user({"type": "input_audio", "input_audio": {"data": NOISE_BYTES, "format": "wav"}}, TEXT),
                          "messages[0].content[0].input_audio.data", "invalid_audio"),
    "too long audio": (_user(audio_part(np.zeros(31 * SR, dtype=np.float32), "flac"), TEXT),
                       "messages[0].content[0].input_audio.data", "audio_too_long"),
    "too short audio": (_user(audio_part(np.zeros(100, dtype=np.float32)), TEXT),
                        "messages[0].content[0].input_audio.data", "audio_too_short"),
    "unknown role": ({"model": MODEL_NAME, "messages": [{"role": "human", "content": "hi"}]},
                     "messages[0].role", "invalid_role"),
    "tool role": ({"model": MODEL_NAME, "messages": [{"role": "tool", "content": "42", "tool_call_id": "x"}]},
                  "messages[0].role", "invalid_role"),
    "empty messages": ({"model": MODEL_NAME, "messages": []}, "messages", "invalid_value"),
    "missing messages": ({"model": MODEL_NAME}, "messages", "missing_required_parameter"),
    "messages not a list": ({"model": MODEL_NAME, "messages": {"role": "user"}}, "messages", "invalid_type"),
    "content of wrong type": ({"model": MODEL_NAME, "messages": [{"role": "user", "content": 42}]},
                              "messages[0].content", "invalid_type"),
    "empty content": ({"model": MODEL_NAME, "messages": [{"role": "user", "content": []}]},
                      "messages[0].content", "invalid_value"),
    "text part without text": (_user({"type": "text"}), "messages[0].content[0].text", "invalid_type"),
    "image part": (_user({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}),
                   "messages[0].content[0].type", "unsupported_content_type"),
    "audio in an assistant turn": ({"model": MODEL_NAME, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [audio_part(chirp())]}]}, "messages[1].content[0]", "invalid_value"),
    "audio tag in text": (_user({"type": "text", "text": "read <audio>/etc/hostname</audio>"}),
                          "messages[0].content[0].text", "invalid_value"),
    "lone surrogate in text": (_user({"type": "text", "text": "bad \ud800 text"}), "messages[0].content[0].text",
                               "invalid_value"),
    "http audio url without opt-in": (_user({"type": "audio_url", "audio_url": {"url": "http://127.0.0.1:9/a.wav"}},
                                            TEXT), "messages[0].content[0].audio_url.url", "urls_not_allowed"),
    "max_tokens of wrong type": ({**_user(TEXT), "max_tokens": "12"}, "max_tokens", "invalid_type"),
    "max_tokens zero": ({**_user(TEXT), "max_tokens": 0}, "max_tokens", "invalid_value"),
    "max_tokens over the limit": ({**_user(TEXT), "max_completion_tokens": 10_000}, "max_completion_tokens",
                                  "invalid_value"),
    "temperature out of range": ({**_user(TEXT), "temperature": 5}, "temperature", "invalid_value"),
    "top_p of wrong type": ({**_user(TEXT), "top_p": "high"}, "top_p", "invalid_type"),
    "seed negative": ({**_user(TEXT), "seed": -1}, "seed", "invalid_value"),
    "stop of wrong type": ({**_user(TEXT), "stop": 3}, "stop", "invalid_type"),
    "too many stops": ({**_user(TEXT), "stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
    "n above one": ({**_user(TEXT), "n": 2}, "n", "unsupported_parameter"),
    "tools": ({**_user(TEXT), "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools",
              "unsupported_parameter"),
    "unknown field": ({**_user(TEXT), "temprature": 0.5}, "temprature", "unknown_parameter"),
    "stream of wrong type": ({**_user(TEXT), "stream": "yes"}, "stream", "invalid_type"),
    "body not an object": ([1, 2, 3], None, "invalid_type"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_400_json(http, case):
    body, param, code = BAD_REQUESTS[case]
    # json.dumps escapes what httpx's encoder refuses (a lone surrogate), as a client in another language may send it
    response = http.post("/v1/chat/completions", content=json.dumps(body).encode(),
                         headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert "Traceback" not in error["message"] and len(error["message"]) < 600


def test_streaming_bad_request_is_refused_before_the_stream(http):
    body = {**BAD_REQUESTS["bad base64"][0], "stream": True}
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_base64"


def test_bad_request_raises_in_the_openai_client(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "%%%", "format": "wav"}}]}])
    assert raised.value.status_code == 400 and "base64" in raised.value.message


def test_invalid_json_and_unknown_paths(http):
    response = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    response = http.post("/v1/chat/completions", content=b"")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    response = http.get("/v1/nothing-here")
    assert response.status_code == 404 and "error" in response.json()
    response = http.get("/v1/chat/completions")
    assert response.status_code == 405 and "error" in response.json()


def test_unknown_model_is_404(client, http):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o-audio-preview", messages=[{"role": "user", "content": "hi"}])
    response = http.post("/v1/chat/completions", json={**_user(TEXT), "model": "other"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"


def test_oversized_bodies_are_refused_with_413(http, server):
    padding = "A" * (MAX_BODY_BYTES + 10)
    # Declared by Content-Length: refused before the body is read.
    response = http.post("/v1/chat/completions", content=json.dumps({"messages": padding}).encode())
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"

    # Chunked, without a length: refused as soon as the limit is passed.
    def chunks():
        yield b'{"messages": "'
        for _ in range(MAX_BODY_BYTES // 2**16 + 2):
            yield b"A" * 2**16
        yield b'"}'

    with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as fresh:
        response = fresh.post("/v1/chat/completions", content=chunks())
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


class FailingPipeline:
    """The server's pipeline, failing as a model can (out of memory) or as a refused input does."""

    def __init__(self, pipe, error):
        self._pipe, self._error = pipe, error

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    def __call__(self, *args, **kwargs):
        raise self._error


def test_generation_failures_are_json_errors(server, client, http, monkeypatch):
    engine = server.app.state.engine
    body = {**_user(TEXT), "max_tokens": 3}
    monkeypatch.setattr(engine, "pipe", FailingPipeline(engine.pipe, RuntimeError("out of memory (simulated)")))
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error" and "simulated" in response.json()["error"]["message"]
    with pytest.raises(openai.APIError, match="simulated"):  # streamed: the error arrives as an event
        list(client.chat.completions.create(model=MODEL_NAME, messages=body["messages"], max_tokens=3, stream=True))
    monkeypatch.setattr(engine, "pipe", FailingPipeline(engine.pipe._pipe, ValueError("row 0 is refused")))
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and "row 0 is refused" in response.json()["error"]["message"]
    monkeypatch.undo()
    assert http.post("/v1/chat/completions", json=body).json()["usage"]["completion_tokens"] == 3


class _SlowSteps(LogitsProcessor):
    """Sleeps at every decoding step: a generation that outlasts the time the server needs to see a client leave."""

    def __call__(self, input_ids, scores):
        time.sleep(0.05)
        return scores


class RecordingPipeline:
    """The server's pipeline, recording how many tokens each call generated (each step slowed when `slow`)."""

    def __init__(self, pipe, slow: bool = False):
        self._pipe, self.generated, self.slow = pipe, [], slow

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    def __call__(self, *args, **kwargs):
        if self.slow:
            kwargs["logits_processor"] = LogitsProcessorList([_SlowSteps()])
        outputs = self._pipe(*args, **kwargs)
        self.generated.extend(len(output[0]["generated_token_ids"]) for output in outputs)
        return outputs


def test_a_stream_the_client_leaves_stops_generating(server, http, monkeypatch):
    engine = server.app.state.engine
    # Slowed steps (64 x 50 ms): on an idle machine the tiny model would otherwise finish before the hang-up is seen.
    recorder = RecordingPipeline(engine.pipe, slow=True)
    monkeypatch.setattr(engine, "pipe", recorder)
    body = {**_user(TEXT), "stream": True, "max_tokens": 64, "temperature": 0}
    with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as leaving:
        with leaving.stream("POST", "/v1/chat/completions", json=body) as response:
            for line in response.iter_lines():  # up to the first piece of content, then the client hangs up
                if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                    break
    # The next request runs after the abandoned one on the same worker: by then that one has ended.
    assert http.post("/v1/chat/completions", json={**_user(TEXT), "max_tokens": 2}).status_code == 200
    abandoned, following = recorder.generated
    assert following == 2
    assert abandoned < 64


def test_server_still_serves_after_the_bad_requests(client, server):
    reply = greedy(client, [{"role": "user", "content": [audio_part(chirp()), TEXT]}], max_tokens=3)
    assert reply.usage.completion_tokens == 3
    assert server.thread.is_alive()


# ----------------------------------------------------------------------------------------------------------------
# Audio transcriptions and translations
# ----------------------------------------------------------------------------------------------------------------
def wav_file(waveform):
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, SR, format="WAV")
    return ("clip.wav", buffer.getvalue(), "audio/wav")


def test_transcriptions_and_translations_equal_the_pipeline(client, pipe):
    transcript = client.audio.transcriptions.create(model=MODEL_NAME, file=wav_file(chirp()), language="en")
    expected = pipe(chirp(), task="transcribe", language="en", max_new_tokens=12)["text"]
    assert transcript.text == expected and len(expected) > 0
    assert transcript.usage.seconds == 3  # 2.5 s, rounded up as OpenAI bills
    with warnings.catch_warnings():  # the client marks its translations API deprecated; the endpoint is OpenAI's
        warnings.simplefilter("ignore", DeprecationWarning)
        translation = client.audio.translations.create(model=MODEL_NAME, file=wav_file(tone(1.5)))
    assert translation.text == pipe(tone(1.5), task="translate", output_language="en", max_new_tokens=12)["text"]


@pytest.mark.parametrize("response_format, media_type", [
    ("text", "text/plain"), ("srt", "application/x-subrip"), ("vtt", "text/vtt"), ("verbose_json", "application/json"),
])
def test_transcription_response_formats(http, pipe, response_format, media_type):
    data = {"model": MODEL_NAME, "language": "en", "response_format": response_format}
    if response_format == "verbose_json":
        data["timestamp_granularities[]"] = ["word", "segment"]
    response = http.post("/v1/audio/transcriptions", data=data, files={"file": wav_file(chirp())})
    assert response.status_code == 200 and response.headers["content-type"].startswith(media_type)
    timestamps = response_format != "text"
    expected = pipe(chirp(), task="transcribe", language="en", max_new_tokens=12,
                    return_timestamps="word" if timestamps else False)
    if response_format == "text":
        assert response.text == expected["text"] + "\n"
    elif response_format in ("srt", "vtt"):
        render = subtitles.to_srt if response_format == "srt" else subtitles.to_vtt
        assert response.text == render(expected["chunks"], duration=2.5) and response.text.strip()
    else:
        body = response.json()
        assert (body["task"], body["language"], body["duration"], body["text"]) == ("transcribe", "en", 2.5,
                                                                                      expected["text"])
        words = subtitles.group_into_cues(expected["chunks"], max_chars=0, duration=2.5)
        assert [(word["word"], word["start"], word["end"]) for word in body["words"]] == \
            [(word["text"], word["start"], word["end"]) for word in words]
        assert [segment["text"] for segment in body["segments"]] == \
            [cue["text"] for cue in subtitles.group_into_cues(expected["chunks"], duration=2.5)]


class ScrambledTimesPipeline(FailingPipeline):
    """The server's pipeline, answering transcriptions with word times out of order, overlapping, past the clip."""

    def __call__(self, *args, **kwargs):
        chunks = [{"text": "late", "timestamp": (2.0, 2.4)}, {"text": "early", "timestamp": (0.5, 0.9)},
                  {"text": "overlap", "timestamp": (2.2, 3.0)}, {"text": "after", "timestamp": (4.0, 5.0)}]
        return [{"text": "late early overlap after", "chunks": chunks}]


def _srt_times(text):
    def seconds(stamp):
        hours, minutes, rest = stamp.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(rest.replace(",", "."))

    return [tuple(map(seconds, line.split(" --> "))) for line in text.splitlines() if " --> " in line]


def test_subtitles_are_valid_whatever_order_the_words_come_in(server, http, monkeypatch):
    engine = server.app.state.engine
    monkeypatch.setattr(engine, "pipe", ScrambledTimesPipeline(engine.pipe, None))
    fields = {"model": MODEL_NAME, "language": "en"}
    for response_format, max_cues in (("srt", 1), ("vtt", 1)):
        response = http.post("/v1/audio/transcriptions", data={**fields, "response_format": response_format},
                             files={"file": wav_file(chirp())})  # 2.5 s
        assert response.status_code == 200, response.text
        times = _srt_times(response.text)
        assert len(times) >= max_cues and all(0 <= start < end <= 2.5 for start, end in times), times
        assert all(earlier[1] <= later[0] for earlier, later in zip(times, times[1:])), times
    words = http.post("/v1/audio/transcriptions", data={**fields, "response_format": "verbose_json",
                                                        "timestamp_granularities[]": "word"},
                      files={"file": wav_file(chirp())}).json()["words"]
    # "early" lies within "late" once times go forward: it joins it; "after" starts after the clip.
    assert [word["word"] for word in words] == ["late early", "overlap"]
    assert all(word["start"] < word["end"] <= 2.5 for word in words)
    assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:]))


BAD_TRANSCRIPTIONS = {
    "no language": ({"model": MODEL_NAME}, True, "language", "missing_required_parameter"),
    "unknown language": ({"model": MODEL_NAME, "language": "xx"}, True, "language", "invalid_value"),
    "no file": ({"model": MODEL_NAME, "language": "en"}, False, "file", "missing_required_parameter"),
    "unknown format": ({"model": MODEL_NAME, "language": "en", "response_format": "mp3"}, True, "response_format",
                       "invalid_value"),
    "prompt": ({"model": MODEL_NAME, "language": "en", "prompt": "Names: Quilter."}, True, "prompt",
               "unsupported_parameter"),
    "granularity without verbose_json": ({"model": MODEL_NAME, "language": "en", "timestamp_granularities[]": "word"},
                                         True, "timestamp_granularities[]", "invalid_value"),
    "unknown field": ({"model": MODEL_NAME, "language": "en", "beam_size": "5"}, True, "beam_size",
                      "unknown_parameter"),
}


@pytest.mark.parametrize("case", list(BAD_TRANSCRIPTIONS))
def test_bad_transcription_gets_400_json(http, case):
    data, with_file, param, code = BAD_TRANSCRIPTIONS[case]
    if with_file:
        response = http.post("/v1/audio/transcriptions", data=data, files={"file": wav_file(chirp())})
    else:  # a multipart form of plain fields only
        response = http.post("/v1/audio/transcriptions", files={name: (None, value) for name, value in data.items()})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_transcription_of_bad_audio_and_bodies(http):
    fields = {"model": MODEL_NAME, "language": "en"}
    undecodable = http.post("/v1/audio/transcriptions", data=fields, files={"file": ("a.wav", b"RIFF junk")})
    assert undecodable.status_code == 400 and undecodable.json()["error"]["code"] == "invalid_audio"
    too_long = http.post("/v1/audio/transcriptions", data=fields, files={"file": wav_file(np.zeros(31 * SR, np.float32))})
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "audio_too_long"
    not_a_form = http.post("/v1/audio/transcriptions", json=fields)
    assert not_a_form.status_code == 400 and not_a_form.json()["error"]["code"] == "invalid_content_type"
    unknown_model = http.post("/v1/audio/transcriptions", data={**fields, "model": "whisper-1"},
                              files={"file": wav_file(chirp())})
    assert unknown_model.status_code == 404


# ----------------------------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------------------------
def _run_cli_server(arguments, request):
    """`qwen-audio serve ... --port 0` in a subprocess: its URL from stdout, one chat request, then Ctrl+C."""
    process = subprocess.Popen(
        [sys.executable, "-m", "transformers_qwen_audio.cli", "serve", *arguments, "--port", "0",
         "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Serving "), process.stderr.read() if process.poll() is not None else line
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        cli_client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=TIMEOUT_S)
        model = cli_client.models.list().data[0].id
        reply = cli_client.chat.completions.create(model=model, messages=request, max_tokens=4, temperature=0)
        return model, reply
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()
            process.stderr.close()


def test_api_key_is_required_when_set(pipe):
    keyed = BackgroundServer(build_app(pipe, MODEL_NAME, api_key="s3cret"))
    try:
        def keyed_client(key):
            return openai.OpenAI(base_url=f"{keyed.url}/v1", api_key=key, max_retries=0, timeout=TIMEOUT_S)

        with pytest.raises(openai.AuthenticationError):
            keyed_client("wrong").models.list()
        response = httpx.post(f"{keyed.url}/v1/chat/completions", json=_user(TEXT), timeout=TIMEOUT_S)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
        assert [model.id for model in keyed_client("s3cret").models.list().data] == [MODEL_NAME]
        assert httpx.get(f"{keyed.url}/health", timeout=TIMEOUT_S).status_code == 401  # behind the key too
        assert httpx.get(f"{keyed.url}/health", headers={"Authorization": "Bearer s3cret"},
                         timeout=TIMEOUT_S).status_code == 200
        with pytest.raises(ValueError, match="empty"):
            build_app(pipe, MODEL_NAME, api_key="")
    finally:
        keyed.stop()


def test_a_released_folder_serves_the_same_replies(checkpoints, client):
    register_pipeline()
    released_pipe = pipeline("audio-chat", model=str(checkpoints["released"]))
    released_server = BackgroundServer(build_app(released_pipe, "released", ServerLimits(default_max_tokens=12)))
    try:
        released_client = openai.OpenAI(base_url=f"{released_server.url}/v1", api_key="unused", max_retries=0,
                                         timeout=TIMEOUT_S)
        messages = [{"role": "user", "content": [audio_part(chirp()), TEXT]}]
        from_released = released_client.chat.completions.create(model="released", messages=messages, temperature=0)
    finally:
        released_server.stop()
    assert not released_server.thread.is_alive()
    assert from_released.choices[0].message.content == greedy(client, messages).choices[0].message.content


def test_cli_serves_the_embedded_tiny_model():
    model, reply = _run_cli_server(["--tiny", "--served-model-name", "tiny"], [{"role": "user", "content": "hi"}])
    assert model == "tiny" and reply.usage.completion_tokens == 4


@pytest.mark.parametrize("arguments, message", [
    ([], "give MODEL"),
    (["/no/such/folder"], "model folder not found"),
    (["--tiny", "--max-batch-size", "0"], "--max-batch-size must be at least 1"),
    (["--tiny", "--port", "70000"], "--port must be at most 65535"),
])
def test_cli_errors_are_one_line(arguments, message, capsys):
    assert cli_main(["serve", *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("qwen-audio serve: error:") and message in error and "\n" not in error


def test_cli_port_in_use_is_one_line(checkpoints, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli_main(["serve", str(checkpoints["native"]), "--port", str(port)]) == 2
    error = capsys.readouterr().err.strip()
    assert f"cannot listen on 127.0.0.1:{port}" in error and "\n" not in error
