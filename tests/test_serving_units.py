"""The server's parts without a server: the dynamic batcher, the stop-sequence filter, request parsing."""

import base64
import functools
import http.server
import io
import threading

import numpy as np
import pytest
import soundfile

from transformers_qwen_audio.batching import DynamicBatcher, QueueFullError
from transformers_qwen_audio.serving.protocol import (
    RequestError,
    ServerLimits,
    StopSequenceFilter,
    parse_chat_request,
    truncate_at_stop,
)

SR = 16000


class RecordingRunner:
    """A `run_batch` that records its batches, can be held at its first call, and fails on "bad" payloads."""

    def __init__(self):
        self.batches = []
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, payloads):
        self.started.set()
        self.release.wait(10)
        self.batches.append(list(payloads))
        if "bad" in payloads:
            raise ValueError("bad payload")
        return [f"done {payload}" for payload in payloads]


@pytest.fixture
def runner():
    return RecordingRunner()


def test_batcher_groups_waiting_jobs_by_key(runner):
    batcher = DynamicBatcher(runner, max_batch_size=8, max_wait_s=0.0)
    try:
        first = batcher.submit("first", key="greedy")
        assert runner.started.wait(10)  # the worker is busy with the first job; the next ones wait together
        futures = [batcher.submit("a1", "greedy"), batcher.submit("b1", "sampled"), batcher.submit("s1", None),
                   batcher.submit("a2", "greedy"), batcher.submit("s2", None)]
        runner.release.set()
        results = [future.result(10) for future in [first, *futures]]
    finally:
        batcher.close()
    assert results == ["done first", "done a1", "done b1", "done s1", "done a2", "done s2"]
    assert runner.batches == [["first"], ["a1", "a2"], ["b1"], ["s1"], ["s2"]]
    assert batcher.stats.to_dict()["batch_sizes"] == {"1": 4, "2": 1}
    assert (batcher.stats.requests, batcher.stats.model_calls, batcher.stats.largest_batch) == (6, 5, 2)


def test_batcher_respects_the_batch_size(runner):
    batcher = DynamicBatcher(runner, max_batch_size=3, max_wait_s=0.0)
    try:
        blocker = batcher.submit("first", "k")
        assert runner.started.wait(10)
        futures = [batcher.submit(f"j{index}", "k") for index in range(7)]
        runner.release.set()
        for future in [blocker, *futures]:
            future.result(10)
    finally:
        batcher.close()
    assert [len(batch) for batch in runner.batches] == [1, 3, 3, 1]


def test_batcher_window_gathers_late_arrivals(runner):
    runner.release.set()
    batcher = DynamicBatcher(runner, max_batch_size=4, max_wait_s=0.5)
    try:
        futures = [batcher.submit("early", "k")]
        futures.append(batcher.submit("late", "k"))  # well within the window
        for future in futures:
            future.result(10)
    finally:
        batcher.close()
    assert runner.batches == [["early", "late"]]


def test_a_failing_batch_is_rerun_one_by_one(runner):
    batcher = DynamicBatcher(runner, max_batch_size=4, max_wait_s=0.0)
    try:
        blocker = batcher.submit("first", "k")
        assert runner.started.wait(10)
        good, bad, other = (batcher.submit(payload, "k") for payload in ("good", "bad", "other"))
        runner.release.set()
        blocker.result(10)
        assert good.result(10) == "done good" and other.result(10) == "done other"
        with pytest.raises(ValueError, match="bad payload"):
            bad.result(10)
        # The worker survived: it still serves.
        assert batcher.submit("after", None).result(10) == "done after"
    finally:
        batcher.close()
    assert runner.batches[1] == ["good", "bad", "other"]
    assert runner.batches[2:5] == [["good"], ["bad"], ["other"]]
    assert batcher.stats.fallbacks == 1


def test_batcher_bounds_its_queue_and_closes_cleanly(runner):
    batcher = DynamicBatcher(runner, max_batch_size=1, max_wait_s=0.0, max_pending=2)
    running = batcher.submit("first", None)
    assert runner.started.wait(10)
    waiting = [batcher.submit("w1", None), batcher.submit("w2", None)]
    with pytest.raises(QueueFullError):
        batcher.submit("w3", None)
    closer = threading.Thread(target=batcher.close)
    closer.start()
    runner.release.set()
    closer.join(10)
    assert running.result(10) == "done first"
    for future in waiting:
        with pytest.raises(RuntimeError, match="shutting down"):
            future.result(10)
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit("late", None)


@pytest.mark.parametrize("pieces, stops, expected", [
    (["Hel", "lo W", "orld"], ["o Wo"], "Hell"),
    (["Hel", "lo W", "orld"], ["xyz"], "Hello World"),
    (["ab", "c"], ["c", "bc"], "a"),
    (["a", "b", "a", "b", "c"], ["abc"], "ab"),
    (["stop", "here"], ["stop"], ""),
])
def test_stop_filter_never_sends_part_of_a_stop_sequence(pieces, stops, expected):
    stop_filter = StopSequenceFilter(stops)
    sent = []
    for piece in pieces:
        sent.append(stop_filter.push(piece))
        text = "".join(sent)
        assert not any(stop[:2] in text[len(expected):] for stop in stops if len(stop) > 1)
    sent.append(stop_filter.flush())
    assert "".join(sent) == expected == truncate_at_stop("".join(pieces), stops)[0]


def _wav_bytes(seconds=1.0):
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(int(seconds * SR), dtype=np.float32) + 0.1, SR, format="WAV")
    return buffer.getvalue()


def _request(*parts, **fields):
    return {"model": "m", "messages": [{"role": "user", "content": [*parts, {"type": "text", "text": "?"}]}], **fields}


def test_parse_maps_openai_settings_to_generate():
    wav = base64.b64encode(_wav_bytes()).decode()
    part = {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}}
    limits = ServerLimits(default_max_tokens=33)
    request = parse_chat_request(_request(part), "m", limits)
    assert request.generate_kwargs == {"max_new_tokens": 33}  # the checkpoint's sampling settings otherwise
    assert request.messages[0]["content"][0]["audio"].shape == (SR,)
    greedy = parse_chat_request(_request(part, temperature=0, top_p=0.5, max_tokens=7), "m", limits)
    assert greedy.generate_kwargs == {"max_new_tokens": 7, "do_sample": False}
    sampled = parse_chat_request(_request(part, temperature=0.7, top_p=0.9, top_k=-1, stop="x"), "m", limits)
    assert sampled.generate_kwargs == {"max_new_tokens": 33, "do_sample": True, "temperature": 0.7, "top_p": 0.9,
                                       "top_k": 0}
    assert sampled.stop == ["x"] and sampled.batch_key is not None
    assert parse_chat_request(_request(part, seed=3), "m", limits).batch_key is None
    assert parse_chat_request(_request(part, stream=True), "m", limits).batch_key is None
    developer = parse_chat_request({"messages": [{"role": "developer", "content": "Be brief."},
                                                 {"role": "user", "content": "hi"}]}, "m", limits)
    assert developer.messages[0]["role"] == "system"


@pytest.fixture
def audio_site(tmp_path):
    """A web server on 127.0.0.1 serving one WAV file."""
    (tmp_path / "clip.wav").write_bytes(_wav_bytes(0.5))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()
    site.server_close()
    thread.join(10)


def test_audio_urls_only_with_the_opt_in(audio_site):
    body = _request({"type": "audio_url", "audio_url": {"url": f"{audio_site}/clip.wav"}})
    with pytest.raises(RequestError) as refused:
        parse_chat_request(body, "m", ServerLimits())
    assert refused.value.code == "urls_not_allowed" and "--allow-urls" in refused.value.message
    allowed = parse_chat_request(body, "m", ServerLimits(allow_urls=True))
    assert allowed.messages[0]["content"][0]["audio"].shape == (SR // 2,)
    with pytest.raises(RequestError) as missing:
        parse_chat_request(_request({"type": "audio_url", "audio_url": {"url": f"{audio_site}/none.wav"}}), "m",
                           ServerLimits(allow_urls=True))
    assert missing.value.code == "invalid_audio" and missing.value.status == 400
    with pytest.raises(RequestError) as scheme:
        parse_chat_request(_request({"type": "audio_url", "audio_url": {"url": "file:///etc/hostname"}}), "m",
                           ServerLimits(allow_urls=True))
    assert scheme.value.code == "invalid_url"


def test_long_clips_need_a_larger_limit():
    wav = base64.b64encode(_wav_bytes(31.0)).decode()
    part = {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}}
    with pytest.raises(RequestError, match="at most 30 s"):
        parse_chat_request(_request(part), "m", ServerLimits())
    limits = ServerLimits(max_audio_seconds=60)
    assert limits.long_audio == "chunk"
    assert parse_chat_request(_request(part), "m", limits).messages[0]["content"][0]["audio"].shape == (31 * SR,)
