"""Live transcription: the rolling buffer (`long_form.LiveTranscript`) on constructed timestamps, the server's
WebSocket (`/v1/audio/live`) and its limits, and the transcription endpoint's `long_audio` field."""

import io
import json
import struct
import threading
import time

import numpy as np
import pytest
import soundfile

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402
from transformers import pipeline  # noqa: E402

import transformers_qwen_audio  # noqa: E402,F401  (registers "audio-chat")
from constructed_words import TimelineVAD, as_tuples, expected, make_timeline, words_heard  # noqa: E402
from transformers_qwen_audio import long_form  # noqa: E402
from transformers_qwen_audio.long_form import WINDOW_CONTEXT_SECONDS, LiveTranscript, vad_long_form  # noqa: E402
from transformers_qwen_audio.serving.app import build_app  # noqa: E402
from transformers_qwen_audio.serving.live import LIVE_ROUTE  # noqa: E402
from transformers_qwen_audio.serving.protocol import ServerLimits  # noqa: E402
from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint  # noqa: E402

RATE = 16000


def words_in(words, start: float, end: float):
    return words_heard(words, start, end, open_end=True)


# --- the rolling buffer ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pause", [(0.25, 0.6), (0.0, 0.05)])  # with pauses; and without any (cut when full)
def test_live_transcript_finals_are_stable_and_every_word_is_final_once(pause):
    seconds = 75.0
    words = make_timeline(seconds, 1, pause)
    live, finals_seen, frame = LiveTranscript(), [], int(0.25 * RATE)
    for first in range(0, int(seconds * RATE), frame):
        live.push(np.zeros(frame, np.float32))
        while live.due():
            start = live.buffer_start / RATE
            finals_seen.append(live.settle(words_in(words, start, start + len(live.window_audio()) / RATE)))
        # A word is final only after the pause that follows it has been heard (or the buffer filled up).
        assert all(word["timestamp"][1] <= live.seconds - live.tail_seconds + 1e-6 for word in live.final)
        assert len(live.buffer) <= live.window
    during = len(live.final)
    live.finish()
    while live.due():
        start = live.buffer_start / RATE
        live.settle(words_in(words, start, start + len(live.window_audio()) / RATE))
    assert during > len(words) // 2  # most words were final while the stream went on
    assert as_tuples(live.final) == expected(words) and live.partial == []
    assert [word for batch in finals_seen for word in batch] == live.final[:during]


def test_live_transcript_cuts_its_buffer_into_the_pause_after_a_final_word():
    # Heard: "one" 0.2-0.6 s, "two" 0.8-1.2 s, then 1.8 s of silence (3 s heard, the tail 1 s). Both words are final;
    # the buffer is cut 0.2 s into the pause after "two" (a short pause is cut half-way: here after "one" it would
    # be 0.7 s), so that the next buffer cannot start inside a word whose end the model timed early.
    live = LiveTranscript()
    live.push(np.zeros(3 * RATE, np.float32))
    finals = live.settle([{"text": "one", "timestamp": (0.2, 0.6)}, {"text": "two", "timestamp": (0.8, 1.2)}])
    assert [word["text"] for word in finals] == ["one", "two"]
    assert live.buffer_start == int((1.2 + WINDOW_CONTEXT_SECONDS) * RATE)
    live = LiveTranscript()
    live.push(np.zeros(3 * RATE, np.float32))
    live.settle([{"text": "one", "timestamp": (0.2, 0.6)}, {"text": "two", "timestamp": (0.8, 2.5)}])
    assert live.buffer_start == int(0.7 * RATE) and [word["text"] for word in live.final] == ["one"]


def test_live_transcript_moves_on_when_a_damaged_model_times_every_word_at_zero():
    live, passes = LiveTranscript(), 0
    for _ in range(45 * 4):
        live.push(np.zeros(RATE // 4, np.float32))
        while live.due():
            passes += 1
            assert passes < 500, "the buffer never moved on"
            live.settle([{"text": "same", "timestamp": (0.0, 0.0)}, {"text": "again", "timestamp": (0.0, None)}])
    assert len(live.buffer) <= live.window and live.buffer_start > 0
    assert all(word["timestamp"][0] <= live.buffer_start / RATE for word in live.final)


def test_live_transcript_refuses_bad_settings_and_audio():
    with pytest.raises(ValueError, match="shorter than the window"):
        LiveTranscript(step_seconds=20, tail_seconds=15)
    with pytest.raises(ValueError, match="mono"):
        LiveTranscript().push(np.zeros((2, 100), np.float32))


def spoken(texts, pauses: tuple[float, float], seed: int = 0):
    """eSpeak NG words at 16 kHz joined by pauses drawn from `pauses`, after 0.4 s of silence: (waveform, words)."""
    soxr = pytest.importorskip("soxr")
    pytest.importorskip("espeakng_loader")
    from transformers_qwen_audio.data.speech_synthesis import ESpeakSynthesizer, Voice

    synthesizer, rng = ESpeakSynthesizer.shared(), np.random.default_rng(seed)
    pieces, words, time = [np.zeros(int(0.4 * RATE), np.float32)], [], 0.4
    for index, text in enumerate(texts):
        said = soxr.resample(synthesizer.synthesize(text, Voice("en-us", "m3", 170, 50), seed=index),
                             synthesizer.sampling_rate, RATE).astype(np.float32)
        pause = np.zeros(int(rng.uniform(*pauses) * RATE), np.float32)
        words.append((text, round(time, 3), round(time + len(said) / RATE, 3)))
        pieces += [said, pause]
        time += (len(said) + len(pause)) / RATE
    return np.concatenate(pieces), words


# --- the rolling buffer cut by a VAD --------------------------------------------------------------------------
def _timed_recording(seconds: float) -> np.ndarray:
    """Samples that hold their own time on the recording, in seconds: a fake model can tell what a window hears."""
    return (np.arange(int(seconds * RATE)) / RATE).astype(np.float32)


def _hearing(words):
    return lambda audio: words_in(words, float(audio[0]), float(audio[0]) + len(audio) / RATE)


def _live(waveform, transcript, hear, seed: int = 0):
    """Streams `waveform` into `transcript` in pieces of 0.1-0.7 s; returns the finals each pass gave, and whether
    partial words were shown."""
    rng, first, finals_seen, partials = np.random.default_rng(seed), 0, [], False
    while first < len(waveform):
        piece = int(rng.uniform(0.1, 0.7) * RATE)
        transcript.push(waveform[first: first + piece])
        first += piece
        while transcript.due():
            audio = transcript.window_audio()
            assert float(audio[0]) == pytest.approx(transcript.window_start, abs=1e-3)
            finals_seen.append(transcript.settle(hear(audio)))
            partials = partials or bool(transcript.partial)
        assert len(transcript.buffer) <= transcript.window + transcript.step + transcript.vad_settle + 0.7 * RATE
    transcript.finish()
    while transcript.due():
        finals_seen.append(transcript.settle(hear(transcript.window_audio())))
    return finals_seen, partials


@pytest.mark.parametrize("seed, pauses", [(1, (0.05, 0.6)), (2, (0.3, 1.5)), (3, (0.0, 0.08))])
def test_live_transcript_with_a_vad_ends_with_the_words_of_offline_vad(seed, pauses):
    # Pauses of every length, long ones, and none the VAD can hear (speech cut into window-long pieces): the finals
    # are the offline `vad` words, window for window, and most of them come while the stream goes on.
    seconds = 60.0
    words, waveform = make_timeline(seconds, seed, pauses), _timed_recording(seconds)
    heard = _hearing(words)

    def hear(audio):  # and a word made up in the silence at the end of what it hears, which both drop
        return heard(audio) + [{"text": "again", "timestamp": (len(audio) / RATE - 0.01, len(audio) / RATE)}]
    offline = vad_long_form([waveform], lambda windows: [hear(audio) for audio in windows], window_seconds=3.0,
                            segments_of=lambda audio: TimelineVAD(words, heard=len(audio)).segments(final=True))[0]
    live = LiveTranscript(window_seconds=3.0, vad=TimelineVAD(words))
    finals_seen, partials = _live(waveform, live, hear, seed)
    assert as_tuples(live.final) == as_tuples(offline) and live.partial == []
    assert [word for batch in finals_seen for word in batch] == live.final
    assert partials and len(finals_seen[-1]) < len(live.final) // 2
    if pauses[1] > 0.1:  # every word once, each heard whole
        assert as_tuples(live.final) == expected(words)


def test_live_transcript_with_a_vad_makes_words_final_once_the_pause_that_ends_a_window_is_heard():
    # 30 s windows: the words said before a long pause are final about a second after it began, not 30 s later.
    words = [("one", 0.5, 0.9), ("two", 1.1, 1.5), ("three", 20.0, 20.4)]
    live, hear = LiveTranscript(vad=TimelineVAD(words)), _hearing(words)
    waveform, became_final = _timed_recording(25.0), {}
    for first in range(0, len(waveform), RATE // 10):
        live.push(waveform[first: first + RATE // 10])
        while live.due():
            for word in live.settle(hear(live.window_audio())):
                became_final[word["text"]] = live.seconds
    assert live.window_seconds == 30.0 and list(became_final) == ["one", "two", "three"]
    for text, end in (("two", 1.5), ("three", 20.4)):  # the last words before a long pause
        assert became_final[text] - end <= long_form.WINDOW_BREAK_SECONDS + 1.0, text


def test_live_transcript_with_a_vad_keeps_little_of_a_silent_stream():
    live = LiveTranscript(window_seconds=3.0, vad=TimelineVAD([]))
    finals_seen, partials = _live(np.zeros(40 * RATE, np.float32), live, lambda audio: [{"text": "x",
                                                                                     "timestamp": (0.0, 0.1)}])
    assert live.final == [] and not partials and len(live.buffer) <= live.step
    assert live.buffer_start > 35 * RATE


def test_live_transcript_for_a_model_cuts_at_the_vad_in_the_declared_window(monkeypatch):
    from transformers import GenerationConfig

    declared = GenerationConfig(long_form_window_seconds=3.0)
    live = LiveTranscript.for_model(declared)
    assert live.vad is not None and live.window_seconds == 3.0
    assert LiveTranscript.for_model(GenerationConfig()).window_seconds == 30.0
    monkeypatch.setattr(long_form, "vad_available", lambda: False)
    live = LiveTranscript.for_model(declared)  # without silero-vad: the model's own pauses, in 30 s buffers
    assert live.vad is None and live.window_seconds == 30.0
    with pytest.raises(ValueError, match="long_form_window_seconds"):
        monkeypatch.setattr(long_form, "vad_available", lambda: True)
        LiveTranscript.for_model(GenerationConfig(long_form_window_seconds=1.0))


def test_live_transcript_with_silero_on_speech_ends_with_the_words_of_offline_vad():
    # Real speech (eSpeak NG words joined by pauses of 0.15-1.2 s) and the real VAD, streamed in uneven pieces: the
    # windows, and so the words a model would give, are those of `long_audio="vad"` on the whole recording.
    pytest.importorskip("silero_vad")
    from transformers_qwen_audio.voice_activity import StreamingSpeechSegments, speech_segments

    waveform, words = spoken("open the blue door and go left then turn right at the red house".split() * 2, (0.15, 1.2))
    segments = speech_segments(waveform)
    # Every word is heard as speech, the short ones said alone too ("the", "at": silero-vad's default drops them).
    assert len(segments) >= 5 and all(any(start < end_ * RATE and start_ * RATE < end for start, end in segments)
                                      for _, start_, end_ in words)
    stream = StreamingSpeechSegments()
    for first in range(0, len(waveform), 3001):
        stream.push(waveform[first: first + 3001])
    assert stream.segments(final=True) == segments

    def hear(audio, start):  # a fake model: the words inside what it hears, by the samples' place in the recording
        return words_in(words, start, start + len(audio) / RATE)

    offline = []
    for begin, end in long_form.windows_at_pauses(segments, len(waveform), 3.0):
        offline += [(word["text"], round(word["timestamp"][0] + begin / RATE, 2))
                    for word in hear(waveform[begin:end], begin / RATE)]
    live = LiveTranscript(window_seconds=3.0, vad=StreamingSpeechSegments())
    for first in range(0, len(waveform), 7000):
        live.push(waveform[first: first + 7000])
        while live.due():
            live.settle(hear(live.window_audio(), live.window_start))
    live.finish()
    while live.due():
        live.settle(hear(live.window_audio(), live.window_start))
    assert [(word["text"], round(word["timestamp"][0], 2)) for word in live.final] == offline
    assert len(offline) >= len(words)


# --- the server -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    folder = build_released_checkpoint(tmp_path_factory.mktemp("live") / "tiny")
    return pipeline("audio-chat", model=str(folder))


def make_client(pipe, **app_kwargs):
    limits = app_kwargs.pop("limits", ServerLimits(max_audio_seconds=120.0))
    return TestClient(build_app(pipe, "tiny", limits=limits, batch_wait_s=0.0, **app_kwargs))


@pytest.fixture(scope="module")
def client(pipe):
    with make_client(pipe, max_body_bytes=256 * 1024) as test_client:
        yield test_client


@pytest.fixture
def stream_words(client, monkeypatch):
    """The engine's transcription answers from a constructed timeline: each sample holds its stream time in ms."""
    words = make_timeline(12.0, 2, (0.25, 0.6))
    engine = client.app.state.engine
    batches = []

    def transcribe(requests):
        batches.append(len(requests))
        answers = []
        for request in requests:
            start = round(float(request.waveform[0]) * 32768) / 1000
            answers.append({"text": "", "chunks": words_in(words, start, start + request.seconds)})
        return answers

    monkeypatch.setattr(engine, "_transcribe", transcribe)
    return words, batches


def pcm(seconds: float, start: float = 0.0) -> bytes:
    """PCM16 whose every sample holds its time on the stream, in milliseconds."""
    milliseconds = np.round((start + np.arange(int(seconds * RATE)) / RATE) * 1000).astype("<i2")
    return milliseconds.tobytes()


def wav_header(rate: int = RATE, channels: int = 1) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    return b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + \
        struct.pack("<I", 0xFFFFFFFF)


def until_done(socket) -> list[dict]:
    messages = []
    while not messages or messages[-1]["type"] != "done":
        messages.append(socket.receive_json())
    return messages


@pytest.mark.parametrize("cut", ["vad", "pauses"])  # with silero-vad installed, or without
def test_websocket_partials_then_finals_on_the_stream_time_line(client, stream_words, monkeypatch, cut):
    words, _ = stream_words
    vad = (lambda: TimelineVAD(words)) if cut == "vad" else (lambda: None)
    monkeypatch.setattr(LiveTranscript, "for_model", classmethod(
        lambda cls, generation_config: cls(window_seconds=3.0 if cut == "vad" else 30.0, vad=vad())))
    with client.websocket_connect(LIVE_ROUTE) as socket:
        socket.send_text(json.dumps({"type": "config", "language": "en", "sample_rate": 16000}))
        audio = wav_header() + pcm(12.0)
        frame = 8000  # 0.25 s
        for first in range(0, len(audio), frame):
            socket.send_bytes(audio[first: first + frame])
        socket.send_text(json.dumps({"type": "end"}))
        messages = until_done(socket)
    finals = [word for message in messages if message["type"] == "final" for word in message["words"]]
    assert [(word["word"], word["start"], word["end"]) for word in finals] == expected(words)
    kinds = [message["type"] for message in messages]
    assert "error" not in kinds and kinds.count("partial") >= 10
    assert kinds.count("final") >= 3 and kinds.index("final") < len(kinds) - 3  # finals while the stream goes on
    assert any(message["words"] for message in messages if message["type"] == "partial")


def test_a_live_push_does_not_hold_up_the_other_clients(client, monkeypatch):
    """The VAD runs as audio is pushed (silero-vad over the new frames): the server does that off its event loop, so
    other requests are answered meanwhile."""
    pushing, released, original = threading.Event(), threading.Event(), LiveTranscript.push

    def slow_push(self, samples):
        pushing.set()
        released.wait(timeout=10)  # on the event loop, this would stall every other client for as long
        original(self, samples)

    monkeypatch.setattr(LiveTranscript, "push", slow_push)
    with client.websocket_connect(LIVE_ROUTE) as socket:
        socket.send_bytes(pcm(0.25))
        assert pushing.wait(timeout=10)
        started = time.perf_counter()
        assert client.get("/health").status_code == 200
        answered = time.perf_counter() - started
        released.set()
        socket.send_text(json.dumps({"type": "end"}))
        until_done(socket)
    assert answered < 5, f"/health took {answered:.1f} s while a live push was running"


def test_websocket_bad_messages_get_errors_and_the_session_goes_on(client, stream_words):
    with client.websocket_connect(LIVE_ROUTE) as socket:
        socket.send_bytes(b"\x00\x01\x02")
        assert socket.receive_json() == {"type": "error", "code": "invalid_audio", "message": (
            "A binary message carries 16-bit samples; 3 bytes is not a whole number of them.")}
        socket.send_text("{not json")
        assert socket.receive_json()["code"] == "invalid_json"
        socket.send_text(json.dumps({"type": "config", "sample_rate": 44100}))
        assert socket.receive_json()["code"] == "invalid_sample_rate"
        socket.send_text(json.dumps({"type": "config", "language": "xx"}))
        assert socket.receive_json()["code"] == "invalid_value"
        socket.send_text(json.dumps({"type": "pause"}))
        assert socket.receive_json()["code"] == "invalid_value"
        socket.send_bytes(wav_header(rate=8000))
        assert socket.receive_json()["code"] == "invalid_sample_rate"
        socket.send_bytes(wav_header(channels=2))
        assert "send 16-bit PCM mono" in socket.receive_json()["message"]
        socket.send_bytes(pcm(0.5))
        socket.send_text(json.dumps({"type": "end"}))
        assert until_done(socket)[-1] == {"type": "done"}


def test_websocket_oversize_messages_and_streams_close_the_session(pipe, client, stream_words):
    with client.websocket_connect(LIVE_ROUTE) as socket:
        socket.send_bytes(pcm(9.0))  # 288,000 bytes > 256 KiB
        error = socket.receive_json()
        assert error["code"] == "message_too_large"
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 1009
    with make_client(pipe, limits=ServerLimits(max_audio_seconds=2.0)) as short_client:
        with short_client.websocket_connect(LIVE_ROUTE) as socket:
            socket.send_bytes(pcm(1.5))
            socket.send_bytes(pcm(1.0, start=1.5))
            messages = [socket.receive_json()]
            while messages[-1]["type"] != "error":
                messages.append(socket.receive_json())
            assert messages[-1]["code"] == "audio_too_long" and "2 s" in messages[-1]["message"]
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
            assert closed.value.code == 1008


def test_websocket_api_key_and_freed_sessions(pipe):
    with make_client(pipe, api_key="secret") as keyed:
        with pytest.raises(WebSocketDisconnect) as refused:
            with keyed.websocket_connect(LIVE_ROUTE) as socket:
                socket.receive_json()
        assert refused.value.code == 1008
        sessions = keyed.app.state.live_sessions
        assert sessions.opened == 0
        for _ in range(2):
            with keyed.websocket_connect(LIVE_ROUTE, headers={"Authorization": "Bearer secret"}) as socket:
                socket.send_bytes(pcm(0.3))
                assert sessions.active >= 1
            # The client left without "end": its session and buffer are gone.
            deadline = time.monotonic() + 10
            while sessions.active and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sessions.active == 0
        assert sessions.opened == 2


def test_websocket_on_the_tiny_model(client):
    """Random weights: the mechanics (partials come, the stream ends), not the words. Speech, so that the VAD hears
    some."""
    waveform, _ = spoken("open the blue door please".split(), (0.1, 0.3))
    seconds = len(waveform) / RATE
    audio = (np.clip(waveform, -1, 1) * 32767).astype("<i2").tobytes()
    with client.websocket_connect(LIVE_ROUTE) as socket:
        for first in range(0, len(audio), 16000):
            socket.send_bytes(audio[first: first + 16000])
        socket.send_text(json.dumps({"type": "end"}))
        messages = until_done(socket)
    kinds = [message["type"] for message in messages]
    assert "error" not in kinds and kinds.count("partial") >= 2
    for message in messages[:-1]:
        assert all(0 <= word["start"] <= word["end"] <= seconds + 0.005 for word in message["words"])  # 0.01 s times


# --- the transcription endpoint's long_audio field ----------------------------------------------------------------
def test_transcription_endpoint_long_audio_field(pipe, monkeypatch):
    seen = []
    original = type(pipe).__call__
    monkeypatch.setattr(type(pipe), "__call__", lambda self, *args, **kwargs: seen.append(
        kwargs.get("long_audio")) or original(self, *args, **kwargs))
    buffer = io.BytesIO()
    soundfile.write(buffer, (0.05 * np.random.default_rng(3).standard_normal(35 * RATE)).astype(np.float32), RATE,
                    format="WAV", subtype="PCM_16")
    with make_client(pipe) as long_client:
        for field, mode in ((None, "chunk"), ("sequential", "sequential")):
            data = {"language": "en", "response_format": "verbose_json", "timestamp_granularities[]": "word"}
            if field:
                data["long_audio"] = field
            seen.clear()
            response = long_client.post("/v1/audio/transcriptions", files={"file": ("a.wav", buffer.getvalue())},
                                        data={**data, "temperature": "0"})
            assert response.status_code == 200, response.text
            assert seen[0] == mode  # the server's default (chunk past 30 s), or the request's
            assert all(0 <= word["start"] <= word["end"] <= 35.0 for word in response.json()["words"])
        response = long_client.post("/v1/audio/transcriptions", files={"file": ("a.wav", buffer.getvalue())},
                                    data={"language": "en", "long_audio": "overlap"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "long_audio"


# --- the web demo's Live tab --------------------------------------------------------------------------------------
@pytest.mark.parametrize("cut", ["vad", "pauses"])
def test_web_demo_live_handler_streams_finals_and_ends_the_buffer(pipe, monkeypatch, cut):
    pytest.importorskip("gradio")
    from transformers_qwen_audio.web_demo import WebDemo

    words = make_timeline(10.0, 4, (0.25, 0.6))
    monkeypatch.setattr(LiveTranscript, "for_model", classmethod(lambda cls, generation_config: cls(
        window_seconds=3.0, vad=TimelineVAD(words)) if cut == "vad" else cls()))
    demo = WebDemo(pipe)
    calls = []

    def submit(waveform, **call):
        calls.append(call)
        start = round(float(waveform[0]) * 32768) / 1000
        return {"text": "", "chunks": words_in(words, start, start + len(waveform) / RATE)}

    monkeypatch.setattr(demo, "_submit", submit)
    try:
        state, finals_seen = None, []
        browser_rate = 48000  # the microphone's rate: resampled to 16 kHz by the handler
        audio = np.repeat(np.frombuffer(pcm(10.0), dtype="<i2"), 3)
        for first in range(0, len(audio), browser_rate // 2):
            final, partial, state = demo.live((browser_rate, audio[first: first + browser_rate // 2]), state, "en")
            finals_seen.append(final)
            worker = state.worker  # the buffer is transcribed in a thread of its own: let it catch up
            if worker is not None:
                worker.join()
        assert any(finals_seen[:-2]) and all(later.startswith(earlier)
                                             for earlier, later in zip(finals_seen, finals_seen[1:]))
        final, partial, state = demo.live_end(state, "en")
        assert final == " ".join(text for text, _, _ in words) and partial == "" and state is None
        assert calls[0]["return_timestamps"] == "word" and calls[0]["long_audio"] == "truncate"
        with pytest.raises(Exception, match="Unknown language"):
            demo.live((RATE, np.zeros(RATE, np.int16)), None, "xx")
    finally:
        demo.close()


def test_web_demo_live_handler_does_not_wait_for_the_model(pipe, monkeypatch):
    # A handler that waits for the model makes the browser drop the microphone's pieces meanwhile: it only adds them.
    pytest.importorskip("gradio")
    import threading

    from transformers_qwen_audio.web_demo import WebDemo

    monkeypatch.setattr(LiveTranscript, "for_model", classmethod(lambda cls, generation_config: cls()))

    demo, release, calls = WebDemo(pipe), threading.Event(), []

    def slow_submit(waveform, **call):
        calls.append(len(waveform))
        assert release.wait(30)
        return {"text": "", "chunks": [{"text": "word", "timestamp": (0.0, 0.2)}]}

    demo._submit = slow_submit
    try:
        state = None
        rng = np.random.default_rng(0)
        for _ in range(8):
            started = time.monotonic()
            _, _, state = demo.live((RATE, (0.1 * rng.standard_normal(RATE // 2) * 32767).astype(np.int16)),
                                    state, "en")
            assert time.monotonic() - started < 1.0
        assert state.transcript.seconds == 4.0 and len(calls) <= 1  # all the audio is in; one model call waits
        release.set()
        final, partial, state = demo.live_end(state, "en")
        assert "word" in final and partial == "" and state is None
    finally:
        release.set()
        demo.close()


def readable_checkpoint(folder):
    """The tiny model with its output head limited to letters and timestamps on a 0.5 s grid, so that random weights
    write words with times (else mostly special tokens, which show nothing)."""
    from transformers import AutoProcessor

    from readable_checkpoints import limit_output_head

    build_released_checkpoint(folder)
    tokenizer = AutoProcessor.from_pretrained(folder).tokenizer
    timestamps = [tokenizer.convert_tokens_to_ids(f"<|{hundredths / 100:.2f}|>") for hundredths in range(0, 3001, 50)]
    return limit_output_head(folder, [*range(ord("a"), ord("z") + 1), ord(" "), *timestamps])


def test_browser_live_tab_shows_words_while_the_fake_microphone_records(tmp_path):
    """Chromium's fake microphone plays a file into the Live tab: words show before the recording ends, and the
    final words only ever grow (random weights: their content is not checked)."""
    import os
    import shutil
    import socket

    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright")
    pytest.importorskip("gradio")
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    from transformers_qwen_audio.cli.common import load_pipeline
    from transformers_qwen_audio.web_demo import build_demo, launch

    speech, _ = spoken("open the blue door and go left then turn right at the red house".split() * 2, (0.2, 0.6))
    microphone_file = tmp_path / "microphone.wav"
    soundfile.write(microphone_file, speech, RATE, subtype="PCM_16")
    demo = build_demo(load_pipeline(str(readable_checkpoint(tmp_path / "tiny"))),
                      generate_kwargs={"do_sample": False, "max_new_tokens": 12})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=[
                "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone_file}"])
            page = browser.new_page(permissions=["microphone"])
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("tab", name="Live").click()
            microphone = page.locator("#live-microphone")
            microphone.get_by_role("button", name="Record").click()
            seen, deadline = [], time.monotonic() + 60
            while time.monotonic() < deadline and len({partial for _, partial in seen if partial}) < 3:
                seen.append((page.locator("#live-final textarea").input_value(),
                             page.locator("#live-partial textarea").input_value()))
                time.sleep(0.2)
            microphone.get_by_role("button", name="Stop").click()
            browser.close()
    finally:
        demo.close()
        demo.web_demo.close()
    updates = {pair for pair in seen if any(pair)}
    assert len(updates) >= 3, f"the Live tab showed no words while recording: {seen[-5:]}"
    finals = [final for final, _ in seen]
    assert all(later.startswith(earlier) for earlier, later in zip(finals, finals[1:]))
