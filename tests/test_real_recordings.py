"""
The original repository's real recordings (`../shared/qwen_audio_reference/audio/`: LibriSpeech FLAC, Chinese WAV,
Spanish MP3, 96 s of music, glass breaking in MP3) through every entry point a user has, on the reference
checkpoint in the released layout with the real vocabulary: the pipeline (transcription, chat, a sound question),
`qwen-audio transcribe`, the server's chat and transcription routes and the web demo's handlers. Random weights:
these prove that each file is taken without an error, not what the model says.
"""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transformers import pipeline

import transformers_qwen_audio  # noqa: F401  registers the pipeline

CHECKPOINT = "tiny_real_vocab_original_layout"
AUDIO_FORMATS = {".wav": "wav", ".flac": "flac", ".mp3": "mp3"}
# Long enough for music.wav (96 s), heard as consecutive 30 s windows.
MAX_SECONDS = 120.0
GENERATION = {"max_new_tokens": 3, "do_sample": False}


@pytest.fixture(scope="module")
def recordings(reference_dir) -> list[Path]:
    files = sorted(path for path in (reference_dir / "audio").iterdir() if path.suffix in AUDIO_FORMATS)
    assert {path.suffix for path in files} == set(AUDIO_FORMATS) and len(files) >= 8
    return files


@pytest.fixture(scope="module")
def pipe(reference_dir):
    return pipeline("audio-chat", model=str(reference_dir / CHECKPOINT), device="cpu")


def test_pipeline_takes_every_recording(pipe, recordings):
    for path in recordings:
        language = "zh" if path.name.startswith(("zh_", "chongqing")) else "en"
        transcript = pipe(str(path), task="transcribe", language=language, long_audio="chunk", **GENERATION)
        assert isinstance(transcript["text"], str), path.name  # a task request answers {"text", ...}, as ASR does
        timed = pipe(str(path), task="transcribe", language=language, return_timestamps="word", **GENERATION)
        assert isinstance(timed["text"], str) and isinstance(timed["chunks"], list), path.name
        messages = [{"role": "user", "content": [{"type": "audio", "path": str(path)},
                                                 {"type": "text", "text": "What is this sound?"}]}]
        [reply] = pipe(messages, long_audio="chunk", **GENERATION)  # as ImageTextToTextPipeline: the conversation + reply
        assert reply["generated_text"][-1]["role"] == "assistant", path.name
        assert isinstance(reply["generated_text"][-1]["content"], str), path.name
        answer = pipe(str(path), task="event", **GENERATION)  # a sound question, the shorthand of the table
        assert isinstance(answer["text"], str), path.name


def test_command_line_transcribes_every_recording(reference_dir, recordings, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "transformers_qwen_audio.cli", "transcribe", str(reference_dir / CHECKPOINT),
         *map(str, recordings), "--language", "en", "--max-new-tokens", "3", "--greedy", "--long-audio", "chunk",
         "--output", "srt", "--output-dir", str(tmp_path), "--no-progress", "--device", "cpu"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(path.stem for path in tmp_path.glob("*.srt")) == sorted(path.stem for path in recordings)


def test_server_takes_every_recording(pipe, recordings):
    httpx = pytest.importorskip("httpx")
    from transformers_qwen_audio.serving.app import BackgroundServer, build_app
    from transformers_qwen_audio.serving.protocol import ServerLimits

    server = BackgroundServer(build_app(pipe, "reference", ServerLimits(max_audio_seconds=MAX_SECONDS)))
    try:
        with httpx.Client(base_url=server.url, timeout=300) as http:
            for path in recordings:
                audio = {"data": base64.b64encode(path.read_bytes()).decode(), "format": AUDIO_FORMATS[path.suffix]}
                chat = http.post("/v1/chat/completions", json={"model": "reference", "max_tokens": 3, "temperature": 0,
                                 "messages": [{"role": "user", "content": [
                                     {"type": "input_audio", "input_audio": audio},
                                     {"type": "text", "text": "What is this sound?"}]}]})
                assert chat.status_code == 200, (path.name, chat.text)
                transcription = http.post("/v1/audio/transcriptions", data={"model": "reference", "language": "en",
                                                                            "response_format": "srt"},
                                          files={"file": (path.name, path.read_bytes())})
                assert transcription.status_code == 200, (path.name, transcription.text)
    finally:
        server.stop()


def test_web_demo_takes_every_recording(pipe, recordings):
    pytest.importorskip("gradio")
    from transformers_qwen_audio.web_demo import WebDemo, WebDemoLimits

    demo = WebDemo(pipe, WebDemoLimits(chat_audio_seconds=MAX_SECONDS), dict(GENERATION))
    try:
        for path in recordings:
            transcript, *_ = demo.transcribe(str(path), language="en")
            assert isinstance(transcript, str), path.name
            replies = list(demo.chat({"text": "What is this sound?", "files": [str(path)]}, [], max_new_tokens=3,
                                     greedy=True))
            assert replies and isinstance(replies[-1], str), path.name
    finally:
        demo.close()
