"""The package's download policy (audio_io): URLs only on request, size-capped, timed out; only regular files read;
truncated WAV files warn. Served by a real local HTTP server."""

import io
import os
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile

from transformers_qwen_audio import audio_io
from transformers_qwen_audio.audio_io import TruncatedAudioWarning, load_audio


def wav_bytes(seconds=0.5, rate=16000) -> bytes:
    buffer = io.BytesIO()
    samples = (0.1 * np.sin(np.arange(int(seconds * rate)) / 5)).astype(np.float32)
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


CLIP = wav_bytes()


class Handler(BaseHTTPRequestHandler):
    served = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        Handler.served.append(self.path)
        if self.path == "/clip.wav":
            self.send_response(200)
            self.send_header("Content-Length", str(len(CLIP)))
            self.end_headers()
            self.wfile.write(CLIP)
        elif self.path == "/announced-huge.wav":  # says 10 GB; the client must not start reading it
            self.send_response(200)
            self.send_header("Content-Length", str(10 * 1024**3))
            self.end_headers()
            self.wfile.write(CLIP)
        elif self.path == "/endless.wav":  # no length, streams until the client hangs up
            self.send_response(200)
            self.end_headers()
            try:
                self.wfile.write(CLIP)
                for _ in range(10_000):
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                pass
        elif self.path == "/stalls.wav":  # headers, then nothing
            self.send_response(200)
            self.send_header("Content-Length", str(len(CLIP)))
            self.end_headers()
            self.wfile.flush()
            time.sleep(5)
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_refused_without_opt_in_and_nothing_is_requested(server):
    Handler.served.clear()
    with pytest.raises(ValueError, match="allow_urls=True"):
        load_audio(f"{server}/clip.wav")
    assert Handler.served == []


def test_url_downloaded_with_opt_in(server):
    waveform = load_audio(f"{server}/clip.wav", allow_urls=True)
    assert waveform.shape == (8000,)
    np.testing.assert_allclose(waveform, load_audio(CLIP), atol=0)


def test_url_over_the_announced_size_cap_is_refused(server):
    with pytest.raises(ValueError, match="over the .*-byte limit"):
        load_audio(f"{server}/announced-huge.wav", allow_urls=True)


def test_streamed_download_stops_at_the_size_cap(server, monkeypatch):
    monkeypatch.setattr(audio_io, "URL_MAX_BYTES", 1024 * 1024)
    started = time.monotonic()
    with pytest.raises(ValueError, match="Stopped downloading .* over the 1048576-byte limit"):
        load_audio(f"{server}/endless.wav", allow_urls=True)
    assert time.monotonic() - started < 30


def test_stalled_download_times_out(server, monkeypatch):
    monkeypatch.setattr(audio_io, "URL_TIMEOUT_SECONDS", 1)
    started = time.monotonic()
    with pytest.raises(ValueError, match="Could not download audio from .*stalls.wav"):
        load_audio(f"{server}/stalls.wav", allow_urls=True)
    assert time.monotonic() - started < 4


def test_http_error_is_named(server):
    with pytest.raises(ValueError, match="Could not download audio from .*missing.wav.*404"):
        load_audio(f"{server}/missing.wav", allow_urls=True)


def _load_with_deadline(path, seconds=20):
    """load_audio in a thread: a FIFO that blocks would fail the test instead of hanging it."""
    outcome = {}

    def target():
        try:
            outcome["result"] = load_audio(path)
        except Exception as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"load_audio({path!r}) hung"
    return outcome


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "speech.wav"
    os.mkfifo(fifo)
    outcome = _load_with_deadline(str(fifo))
    assert isinstance(outcome.get("error"), ValueError) and "is a FIFO" in str(outcome["error"])


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_device_is_refused(tmp_path):
    link = tmp_path / "endless.wav"
    link.symlink_to("/dev/zero")
    outcome = _load_with_deadline(str(link))
    assert isinstance(outcome.get("error"), ValueError) and "is a device" in str(outcome["error"])


def test_truncated_wav_warns_and_decodes_what_is_there(tmp_path):
    full = wav_bytes(seconds=1.0)
    path = tmp_path / "cut.wav"
    path.write_bytes(full[: 44 + 6000])  # header + 3000 of the announced 16000 frames
    with pytest.warns(TruncatedAudioWarning, match="cut.wav is truncated: its header announces 32000 bytes"):
        waveform = load_audio(path)
    assert waveform.shape == (3000,)


def test_complete_wav_does_not_warn(tmp_path):
    path = tmp_path / "whole.wav"
    path.write_bytes(wav_bytes(seconds=1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_audio(path).shape == (16000,)
