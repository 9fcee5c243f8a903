# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
`qwen-audio web MODEL`: a Gradio demo of Qwen-Audio(-Chat) over the `audio-chat` pipeline (needs the `[web]` extra:
`pip install 'transformers-qwen-audio[web]'`).

    qwen-audio web Qwen/Qwen-Audio-Chat                   # http://127.0.0.1:7860
    qwen-audio web ./qwen-audio-chat-native --port 8080
    qwen-audio web --tiny                                 # the embedded tiny model (random weights), offline

Four tabs:
- Chat: upload or record clips (several per turn), ask about them, several turns; the reply streams token by token;
  regenerate, undo, clear and stop in the conversation. Clips show as players in the conversation.
- Transcribe: a clip or a long recording (heard as consecutive 30 s windows, as windows that start after the last
  whole word, or as windows cut in pauses), in a given language or translated,
  with word timestamps: a table of words (select a word to play the recording from there), subtitles under the
  player, SRT and WebVTT files to download.
- Sound questions: one click per task of the model (caption, sound events, acoustic scene, ...) or a free question.
- Live: the microphone streams into a rolling buffer (`long_form.LiveTranscript`); the text grows as you speak,
  words final once the model has heard the pause after them.

Bad input (a file that is not audio, an empty recording, a clip over the limit) shows a message in the page and the
app goes on. Transcriptions and sound questions from several users run together as one pipeline batch; chat replies
stream concurrently. The same endpoints serve `gradio_client` (`/chat`, `/transcribe`, `/ask`, one per task:
`/caption`, `/event`, ...). The page loads nothing from the internet.

From Python: `build_demo(pipeline("audio-chat", model=...)).launch()`.
"""

import functools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio_io import (
    QWEN_AUDIO_SAMPLING_RATE,
    AudioTooLongError,
    DecoderMissingError,
    NotAudioError,
    ffmpeg_executable,
    load_audio,
)
from .batching import DynamicBatcher, StopWhenCancelled
from .long_form import LONG_FORM_METHODS, LiveTranscript, default_long_audio, words_text
from .conversation import CONTROL_TOKENS
from .subtitles import group_into_cues, render
from .task_prompts import LANGUAGE_NAMES, OUTPUT_LANGUAGES, QUESTION_TASKS, SPEECH_TASKS, supported_tasks
from .tokenization_qwen_audio import AUDIO_LANGUAGES


DEFAULT_PORT = 7860
# Tasks with a button of their own in "Sound questions"; speech tasks live in "Transcribe", questions in the box.
SOUND_TASKS = tuple(task for task in supported_tasks() if task not in SPEECH_TASKS + QUESTION_TASKS)
# Button labels of the task shorthands (a task missing here shows its own name).
TASK_LABELS = {
    "caption": "Caption",
    "keyword": "Keywords",
    "emotion_recognition": "Emotion",
    "music_description": "Music",
    "note_analysis": "Notes",
    "audio_grounding": "Sound timing",
    "named_entity_recognition": "Named entities",
    "scene": "Scene",
    "event": "Sound events",
    "vocal_classification": "Vocal sound",
    "speech_understanding": "Speech topic",
    "speaker_meta": "Speaker",
    "song_meta": "Song",
    "speech_edit": "Edited words",
}
WORD_TABLE_HEADERS = ["word", "start (s)", "end (s)"]
NO_TRANSLATION = "none"  # the "Translate into" choice that means: transcribe
# The "Long recordings" choices of the Transcribe tab: how recordings over 30 s are cut into windows.
LONG_AUDIO_CHOICES = [("back-to-back 30 s windows (fastest)", "chunk"),
                      ("windows after the last whole word", "sequential"), ("windows cut in pauses (VAD)", "vad")]
# libsndfile reads the first ones (and Gradio's WAV recordings); the others go through imageio-ffmpeg's ffmpeg.
AUDIO_FORMATS_HINT = "WAV, FLAC, OGG, MP3, M4A, WebM, MP4, AAC"
# Gradio's cache (uploads, recordings, the subtitle files it serves) and the demo's own subtitle folders: checked
# every `frequency` seconds, files older than `age` deleted, all of them at shutdown. A conversation's clips are
# decoded again at every turn, so they must outlive a long session.
CACHE_CLEANUP_S = (3600, 6 * 3600)


@dataclass
class WebDemoLimits:
    """What the demo accepts and how it schedules work."""

    chat_audio_seconds: float = 120.0  # per clip; clips over 30 s are heard as consecutive 30 s windows
    transcribe_audio_seconds: float = 1800.0
    max_new_tokens: int = 256  # default of the "Longest reply" slider
    max_new_tokens_limit: int = 2048
    max_batch_size: int = 8  # transcriptions / sound questions generated together
    batch_wait_s: float = 0.02  # how long a request waits for others to batch with
    chat_concurrency: int = 4  # chat replies streamed at the same time

    def __post_init__(self):
        for name in ("chat_audio_seconds", "transcribe_audio_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"`{name}` must be positive, got {getattr(self, name)}.")
        for name in ("max_new_tokens", "max_new_tokens_limit", "max_batch_size", "chat_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)}.")
        if self.max_new_tokens > self.max_new_tokens_limit:
            raise ValueError("`max_new_tokens` cannot exceed `max_new_tokens_limit`.")
        if self.batch_wait_s < 0:
            raise ValueError(f"`batch_wait_s` must be >= 0, got {self.batch_wait_s}.")


class InputError(ValueError):
    """A problem with what the user gave; its message is shown in the page as is."""


def _page_error(error: Exception, title: str):
    """The message box a handler raises for bad input: readable, without a server-side traceback."""
    import gradio as gr

    return gr.Error(str(error), title=title, print_exception=False)


# ----------------------------------------------------------------------------------------------------------------
# Audio from the browser
# ----------------------------------------------------------------------------------------------------------------
def _duration_text(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def load_clip(path: str | None, max_seconds: float) -> np.ndarray:
    """
    The clip at `path` (a Gradio upload or recording) as a 16 kHz mono waveform; `InputError` says what is wrong.
    Decoded by `audio_io.load_audio` with the limit, so a file's header is checked before a sample is decoded.
    Decoded again at every chat turn rather than cached: it costs milliseconds next to generation, and a cache of
    long recordings would cost gigabytes.
    """
    if not path:
        raise InputError("No audio: upload a clip or record one first.")
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise InputError(f"{name} did not arrive; upload it again.")
    if os.path.getsize(path) == 0:
        raise InputError(f"{name} is empty: record again, or upload a clip with sound in it.")
    try:
        return load_audio(path, max_seconds=max_seconds)
    except AudioTooLongError as error:
        raise InputError(
            f"{name} is {_duration_text(error.seconds)} long; this demo takes clips of up to "
            f"{_duration_text(max_seconds)} here. Cut it, or start the demo with a higher limit."
        ) from None
    except DecoderMissingError:  # the server, not the file, is at fault
        raise InputError(f"{name} can only be decoded with ffmpeg, which this server lacks (WAV, FLAC, OGG and "
                         "MP3 work without it).") from None
    except NotAudioError:
        raise InputError(f"{name} is not an audio file this demo can read ({AUDIO_FORMATS_HINT}).") from None
    except (ValueError, TypeError, OSError) as error:
        message = " ".join(str(error).split())
        if " is empty" in message:  # a header without samples
            raise InputError(f"{name} is empty (no samples): record again, or upload a clip with sound in it.") \
                from None
        # The decoder names the file by its path in Gradio's cache; the user knows it by its name.
        raise InputError(message.replace(f"file {path}", name)) from None


def check_text(text: str, what: str) -> str:
    """`text` as typed; `InputError` when it holds one of the prompt's control tokens (`<|im_end|>` would let a
    message forge a turn of its own; the processor refuses them too, in its own words)."""
    found = [(text.find(token), token) for token in CONTROL_TOKENS if token in text]
    if found:
        raise InputError(f"{what} contains {min(found)[1]}, a control token of the model's prompt; remove it.")
    return text


def _language_choices(codes) -> list[tuple[str, str]]:
    return [(f"{LANGUAGE_NAMES.get(code, code)} ({code})", code) for code in codes]


def _file_path(value) -> str | None:
    """A path from what Gradio gives for a file: a path string, or a `{"path": ...}` / FileData-like dict."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("path") or (value.get("file") or {}).get("path")
    return getattr(value, "path", None)


# ----------------------------------------------------------------------------------------------------------------
# Chat
# ----------------------------------------------------------------------------------------------------------------
def history_to_messages(history, system_prompt: str, max_seconds: float) -> list[dict]:
    """
    The pipeline conversation of a Gradio chat history (message dicts whose content is a string or a list of
    `{"type": "text" | "file", ...}` parts): files become decoded audio parts, text parts are kept in order.
    """
    messages = []
    if system_prompt and system_prompt.strip():
        messages.append({"role": "system", "content": check_text(system_prompt.strip(), "The system prompt")})
    for message in history:
        role = message["role"]
        content = message["content"]
        parts = content if isinstance(content, list) else [content]
        converted = []
        for part in parts:
            if isinstance(part, str):
                converted.append({"type": "text", "text": part})
            elif isinstance(part, dict) and part.get("type") == "text":
                converted.append({"type": "text", "text": part["text"]})
            elif _file_path(part) is not None:
                converted.append({"type": "audio", "audio": load_clip(_file_path(part), max_seconds)})
        if role == "assistant":
            text = "".join(part["text"] for part in converted if part["type"] == "text")
            if text:
                messages.append({"role": "assistant", "content": text})
        elif converted:
            # Consecutive user entries (Gradio may show clips and text as separate bubbles) form one turn.
            if messages and messages[-1]["role"] == "user":
                messages[-1]["content"].extend(converted)
            else:
                messages.append({"role": "user", "content": converted})
    return messages


def _user_turn(message) -> list:
    """The new message of the multimodal box (`{"text", "files"}`) as chat history content."""
    if isinstance(message, str):
        message = {"text": message, "files": []}
    files = [_file_path(file) for file in message.get("files") or []]
    text = check_text((message.get("text") or "").strip(), "The message")
    if not files and not text:
        raise InputError("The message is empty: type a question or attach a clip.")
    return [{"path": path} for path in files] + ([text] if text else [])


class MicrophoneSession:
    """One browser session's live stream: its `LiveTranscript`, and the thread that transcribes it as the audio comes.
    The stream handler only adds the audio and starts that thread: a handler that waits for the model makes the
    browser drop the microphone's pieces meanwhile (only 20.2-22.0 s of a 24.8 s recording played through
    Chromium's fake microphone arrived, with the main job's model on 2 cores)."""

    def __init__(self, transcript: LiveTranscript):
        self.transcript = transcript
        self.lock = threading.Lock()
        self.worker: threading.Thread | None = None
        self.error: Exception | None = None

    def raise_error(self) -> None:
        """A transcription that failed in the thread fails the next handler call, once."""
        error, self.error = self.error, None
        if error is not None:
            raise error


# ----------------------------------------------------------------------------------------------------------------
# The app
# ----------------------------------------------------------------------------------------------------------------
class WebDemo:
    """The handlers of the demo over one `audio-chat` pipeline; `build()` makes the Gradio app."""

    def __init__(self, pipe, limits: WebDemoLimits | None = None, generate_kwargs: dict | None = None,
                 title: str = "Qwen-Audio"):
        self.pipe = pipe
        self.limits = limits or WebDemoLimits()
        self.generate_kwargs = dict(generate_kwargs or {})
        self.title = title
        self.workdir = tempfile.TemporaryDirectory(prefix="qwen-audio-web-", ignore_cleanup_errors=True)
        self.batcher = DynamicBatcher(self._run_batch, max_batch_size=self.limits.max_batch_size,
                                      max_wait_s=self.limits.batch_wait_s, name="qwen-audio-web-batcher")

    def close(self) -> None:
        self.batcher.close()
        self.workdir.cleanup()

    # -- generation ------------------------------------------------------------------------------------------
    def _generation(self, max_new_tokens, greedy) -> dict:
        kwargs = dict(self.generate_kwargs)
        if max_new_tokens:
            kwargs["max_new_tokens"] = int(min(max(int(max_new_tokens), 1), self.limits.max_new_tokens_limit))
        if greedy:
            kwargs["do_sample"] = False
        return kwargs

    def _run_batch(self, payloads: list) -> list:
        """One pipeline call for requests that share their settings (the batcher groups them by key)."""
        call_kwargs = dict(payloads[0][1])
        waveforms = [waveform for waveform, _ in payloads]
        return self.pipe(waveforms, batch_size=len(waveforms), **call_kwargs)

    def _submit(self, waveform: np.ndarray, **call_kwargs):
        key: Hashable = repr(sorted(call_kwargs.items()))  # equal settings batch together
        return self.batcher.submit((waveform, call_kwargs), key=key).result()

    # -- handlers (each turns bad input into a message in the page) --------------------------------------------
    def chat(self, message, history, system_prompt="", max_new_tokens=None, greedy=False):
        """Streams the reply to the new message (`{"text", "files"}`) after `history` (Gradio message dicts)."""
        try:
            new_turn = {"role": "user", "content": _user_turn(message)}
            messages = history_to_messages(list(history) + [new_turn], system_prompt, self.limits.chat_audio_seconds)
        except InputError as error:
            raise _page_error(error, "Cannot send this message") from None
        from transformers import StoppingCriteriaList

        cancelled = threading.Event()
        kwargs = self._generation(max_new_tokens, greedy)
        kwargs["stopping_criteria"] = StoppingCriteriaList([StopWhenCancelled(cancelled)])
        reply = ""
        try:
            for piece in self.pipe.stream(messages, long_audio="chunk", **kwargs):
                reply += piece
                yield reply
        except (ValueError, TypeError, FileNotFoundError) as error:
            raise _page_error(error, "The model could not take this conversation") from None
        finally:
            cancelled.set()  # the Stop button or a closed tab ends generation, not just the stream
        if not reply.strip():
            yield "(the model gave an empty reply; try Regenerate, or a longer reply limit)"

    def check_chat_message(self, message):
        """Gradio validator of the chat box: the message is refused, with the reason, before it joins the chat."""
        import gradio as gr

        try:
            for part in _user_turn(message):
                if isinstance(part, dict):
                    load_clip(part["path"], self.limits.chat_audio_seconds)
        except InputError as error:
            return gr.validate(False, str(error))
        return gr.validate(True, "")

    def transcribe(self, audio, language="en", translate_into=NO_TRANSLATION, timestamps=True, long_audio=None):
        """Transcript, word table, subtitle files and the player (with subtitles) of one recording; `long_audio`
        defaults as the tab's choice does (`long_form.default_long_audio`)."""
        import gradio as gr

        long_audio = long_audio or default_long_audio(self.pipe.model.generation_config)
        try:
            waveform = load_clip(_file_path(audio), self.limits.transcribe_audio_seconds)
            if language not in AUDIO_LANGUAGES:
                raise InputError(f"Unknown language {language!r}; choose one of {', '.join(AUDIO_LANGUAGES)}.")
            if long_audio not in ("chunk", *LONG_FORM_METHODS):
                raise InputError(f"Unknown long-recording mode {long_audio!r}; choose chunk, "
                                 f"{', '.join(LONG_FORM_METHODS)}.")
            call = {"task": "transcribe", "language": language, "long_audio": long_audio,
                    **self._generation(None, greedy=True)}
            if translate_into not in (NO_TRANSLATION, *OUTPUT_LANGUAGES):
                raise InputError(f"Unknown translation language {translate_into!r}; choose one of "
                                 f"{', '.join(OUTPUT_LANGUAGES)} or {NO_TRANSLATION!r}.")
            if translate_into != NO_TRANSLATION:
                call.update(task="translate", output_language=translate_into)
            if timestamps:
                call["return_timestamps"] = "word"
            result = self._submit(waveform, **call)
        except (InputError, ValueError, TypeError) as error:
            raise _page_error(error, "Cannot transcribe this") from None
        chunks = result.get("chunks", [])
        rows = [[chunk["text"].strip(), *(None if t is None else round(float(t), 2) for t in chunk["timestamp"])]
                for chunk in chunks]
        files, cues = [], None
        if timestamps:
            duration = len(waveform) / QWEN_AUDIO_SAMPLING_RATE
            stem = Path(_file_path(audio)).stem or "recording"
            self._delete_old_subtitles()
            folder = Path(tempfile.mkdtemp(dir=self.workdir.name))
            for output_format in ("srt", "vtt"):
                target = folder / f"{stem}.{output_format}"
                target.write_text(render(result, output_format, duration=duration), encoding="utf-8")
                files.append(str(target))
            cues = [{"text": cue["text"], "timestamp": [cue["start"], cue["end"]]}
                    for cue in group_into_cues(chunks, duration=duration)]
        player = gr.Audio(value=_file_path(audio), subtitles=cues or None, playback_position=0)
        return result["text"], rows, files or None, player

    def live(self, chunk, session, language="en"):
        """One piece of the microphone's stream (`gr.Audio(streaming=True)`: `(rate, samples)`) into the session's
        rolling buffer (`MicrophoneSession`, kept in `gr.State`): the final text so far and the words still open. The
        buffer is transcribed in a thread of its own (`_follow`), so that this returns at once."""
        if not isinstance(session, MicrophoneSession) or session.transcript.finishing:  # a new recording
            session = MicrophoneSession(LiveTranscript.for_model(self.pipe.model.generation_config))
        if chunk is not None:
            try:
                if language not in AUDIO_LANGUAGES:
                    raise InputError(f"Unknown language {language!r}; choose one of {', '.join(AUDIO_LANGUAGES)}.")
                rate, samples = chunk
                samples = load_audio(samples, sampling_rate=rate)
                with session.lock:
                    transcript, limit_seconds = session.transcript, self.limits.transcribe_audio_seconds
                    if transcript.seconds + len(samples) / QWEN_AUDIO_SAMPLING_RATE > limit_seconds:
                        limit = _duration_text(limit_seconds)
                        raise InputError(f"Live transcription stops at {limit}.")
                    transcript.push(samples)
                    session.raise_error()
                    if session.worker is None:
                        session.worker = threading.Thread(target=self._follow, args=(session, language),
                                                          name="qwen-audio-live", daemon=True)
                        session.worker.start()
            except (InputError, ValueError, TypeError) as error:
                raise _page_error(error, "Cannot transcribe this") from None
        with session.lock:
            return words_text(session.transcript.final), words_text(session.transcript.partial), session

    def live_end(self, session, language="en"):
        """The recording stopped: what is left in the buffer becomes final."""
        if not isinstance(session, MicrophoneSession):
            return "", "", None
        worker = session.worker
        if worker is not None:
            worker.join()
        session.transcript.finish()
        self._follow(session, language)
        try:
            session.raise_error()
        except (InputError, ValueError, TypeError) as error:
            raise _page_error(error, "Cannot transcribe this") from None
        return words_text(session.transcript.final), "", None

    def _follow(self, session: "MicrophoneSession", language: str) -> None:
        """Transcribes the session's buffer while it is due; the audio goes on arriving meanwhile."""
        while True:
            with session.lock:
                if session.error is not None or not session.transcript.due():
                    session.worker = None
                    return
                audio = session.transcript.window_audio()
            try:
                result = self._submit(audio, task="transcribe", language=language, return_timestamps="word",
                                      long_audio="truncate", **self._generation(None, greedy=True))
            except Exception as error:  # noqa: BLE001  (shown by the next handler call, in the page)
                with session.lock:
                    session.error, session.worker = error, None
                return
            with session.lock:
                session.transcript.settle(result["chunks"])

    def _delete_old_subtitles(self) -> None:
        """Subtitle folders older than Gradio's cache keeps its copies (`CACHE_CLEANUP_S`): they would pile up."""
        oldest = time.time() - CACHE_CLEANUP_S[1]
        for folder in Path(self.workdir.name).iterdir():
            if folder.stat().st_mtime < oldest:
                shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def word_start(words, index) -> float | None:
        """Start (s) of the word in the selected row of the word table; a word without one starts where the one
        before it ends (as in the subtitles)."""
        row = index[0] if isinstance(index, (list, tuple)) else index
        values = words.values.tolist() if hasattr(words, "values") else list(words)
        if not isinstance(row, int) or not 0 <= row < len(values):
            return None
        earlier = [time for previous in reversed(values[:row]) for time in (previous[2], previous[1])]
        candidates = [values[row][1], *earlier]
        for time in candidates:
            if isinstance(time, (int, float)) and not np.isnan(time):
                return float(time)
        return 0.0

    def ask(self, audio, question="", task="question"):
        """The answer to a question about the clip, or the result of one of the model's tasks on it."""
        try:
            waveform = load_clip(_file_path(audio), self.limits.chat_audio_seconds)
            call = {"task": task, "long_audio": "chunk", **self._generation(None, greedy=True)}
            if task in QUESTION_TASKS:
                if not question or not question.strip():
                    raise InputError("Type a question about the clip, or click one of the task buttons.")
                call["prompt"] = check_text(question.strip(), "The question")
            result = self._submit(waveform, **call)
        except (InputError, ValueError, TypeError) as error:
            raise _page_error(error, "Cannot answer this") from None
        return result["text"] or "(the model gave an empty answer)"

    # -- layout -----------------------------------------------------------------------------------------------
    def build(self):
        """The Gradio app (call `.launch()` on it, or `launch(...)` of this module)."""
        import gradio as gr

        limits = self.limits
        use_packaged_ffmpeg()
        with gr.Blocks(title=self.title, analytics_enabled=False, fill_height=True,
                       delete_cache=CACHE_CLEANUP_S) as demo:
            gr.Markdown(f"# {self.title}\nAudio chat, transcription with word timestamps, and sound questions.")
            with gr.Tab("Chat", id="chat"):
                settings = [
                    gr.Textbox(label="System prompt", placeholder="You are a helpful assistant.", lines=1,
                               render=False),
                    gr.Slider(1, limits.max_new_tokens_limit, value=limits.max_new_tokens, step=1,
                              label="Longest reply (tokens)", render=False),
                    gr.Checkbox(label="Greedy decoding (otherwise the checkpoint's sampling settings)", value=False,
                                render=False),
                ]  # rendered by ChatInterface, in its accordion
                gr.ChatInterface(
                    self.chat,
                    multimodal=True,
                    chatbot=gr.Chatbot(label="Conversation", elem_id="conversation", height=480,
                                       buttons=["copy", "copy_all"],
                                       placeholder="Attach clips (upload or record) and ask about them."),
                    textbox=gr.MultimodalTextbox(
                        sources=["upload", "microphone"], file_types=["audio"], file_count="multiple",
                        placeholder="Ask about the clips you attach (several per message are fine)",
                        show_label=False, elem_id="chat-box",
                    ),
                    additional_inputs=settings,
                    additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False),
                    api_name="chat",
                    concurrency_limit=limits.chat_concurrency,
                    validator=self.check_chat_message,
                    autofocus=False,
                    fill_height=True,
                )
            with gr.Tab("Transcribe", id="transcribe"):
                with gr.Row():
                    with gr.Column():
                        recording = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording",
                                             elem_id="recording")
                        with gr.Row():
                            language = gr.Dropdown(_language_choices(AUDIO_LANGUAGES), value="en",
                                                   label="Spoken language")
                            translate_into = gr.Dropdown([("(no translation)", NO_TRANSLATION),
                                                          *_language_choices(OUTPUT_LANGUAGES)],
                                                         value=NO_TRANSLATION, label="Translate into")
                        timestamps = gr.Checkbox(value=True, label="Word timestamps (table, SRT, WebVTT)")
                        long_audio = gr.Dropdown(LONG_AUDIO_CHOICES, label="Long recordings",
                                                 value=default_long_audio(self.pipe.model.generation_config),
                                                 elem_id="long-audio")
                        transcribe_button = gr.Button("Transcribe", variant="primary")
                    with gr.Column():
                        transcript = gr.Textbox(label="Transcript", lines=4, buttons=["copy"], elem_id="transcript")
                        player = gr.Audio(label="Playback (select a word in the table to play from it)",
                                          interactive=False, type="filepath", elem_id="player")
                        subtitle_files = gr.File(label="Subtitles", file_count="multiple", interactive=False,
                                                 elem_id="subtitle-files")
                words = gr.Dataframe(headers=WORD_TABLE_HEADERS, datatype=["str", "number", "number"],
                                     label="Words", interactive=False, max_height=320, column_count=3,
                                     elem_id="words")
                transcribe_inputs = [recording, language, translate_into, timestamps, long_audio]
                gr.on([transcribe_button.click], self.transcribe, transcribe_inputs,
                      [transcript, words, subtitle_files, player], api_name="transcribe",
                      concurrency_limit=limits.max_batch_size)

                def play_from_word(table, event: gr.SelectData):
                    start = self.word_start(table, event.index)
                    return gr.skip() if start is None else gr.Audio(playback_position=start, autoplay=True)

                words.select(play_from_word, [words], [player], api_visibility="undocumented", queue=False)
            with gr.Tab("Live", id="live"):
                with gr.Row():
                    with gr.Column():
                        microphone = gr.Audio(sources=["microphone"], streaming=True, label="Microphone",
                                              elem_id="live-microphone")
                        live_language = gr.Dropdown(_language_choices(AUDIO_LANGUAGES), value="en",
                                                    label="Spoken language")
                    with gr.Column():
                        live_final = gr.Textbox(label="Transcript (final words)", lines=6, buttons=["copy"],
                                                elem_id="live-final")
                        live_partial = gr.Textbox(label="Still listening (may change)", lines=2,
                                                  elem_id="live-partial")
                live_state = gr.State(None)
                # One live event at a time, in the order they came, the stop after the last piece: events of one
                # session run in parallel otherwise, so two pieces raced into one buffer (or into two new ones) and
                # about 8 % of the audio was lost (a 23.8 s recording through Chromium's fake microphone).
                microphone.stream(self.live, [microphone, live_state, live_language],
                                  [live_final, live_partial, live_state], stream_every=0.5, api_name="live",
                                  concurrency_limit=1, concurrency_id="live")
                microphone.stop_recording(self.live_end, [live_state, live_language],
                                          [live_final, live_partial, live_state], api_name="live_end",
                                          concurrency_limit=1, concurrency_id="live")
            with gr.Tab("Sound questions", id="sound"):
                with gr.Row():
                    with gr.Column():
                        clip = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Clip", elem_id="clip")
                        question = gr.Textbox(label="Question", placeholder="What can you hear?", lines=1,
                                              elem_id="sound-question")
                        ask_button = gr.Button("Ask", variant="primary")
                    with gr.Column():
                        answer = gr.Textbox(label="Answer", lines=6, buttons=["copy"], elem_id="answer")
                gr.Markdown("One click asks the model for one of its tasks:")
                with gr.Row(equal_height=True):
                    for task in SOUND_TASKS:
                        button = gr.Button(TASK_LABELS.get(task, task.replace("_", " ").capitalize()), size="sm",
                                           min_width=120)
                        button.click(functools.partial(self.ask, question="", task=task), [clip], [answer],
                                     api_name=task, concurrency_limit=limits.max_batch_size,
                                     concurrency_id="sound-questions")
                ask_button.click(self.ask, [clip, question], [answer], api_name="ask",
                                 concurrency_limit=limits.max_batch_size, concurrency_id="sound-questions")
                question.submit(self.ask, [clip, question], [answer], api_visibility="undocumented",
                                concurrency_limit=limits.max_batch_size, concurrency_id="sound-questions")
        demo.queue(max_size=256)
        return demo


def use_packaged_ffmpeg() -> None:
    """Points Gradio's own decoder (pydub, for microphone WebM and format conversions) at the ffmpeg `audio_io`
    finds (imageio-ffmpeg's, no system package needed)."""
    executable = ffmpeg_executable()
    if executable is not None:
        from pydub import AudioSegment

        AudioSegment.converter = executable


def offline_theme():
    """Gradio's default look with the system's fonts: the default theme fetches fonts from the internet."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "Consolas", "monospace"])


def build_demo(pipe, limits: WebDemoLimits | None = None, generate_kwargs: dict | None = None,
               title: str = "Qwen-Audio"):
    """The Gradio app over an `audio-chat` pipeline; `demo.web_demo` holds the handlers (close it when done)."""
    handlers = WebDemo(pipe, limits, generate_kwargs, title)
    demo = handlers.build()
    demo.web_demo = handlers
    return demo


def launch(demo, host: str = "127.0.0.1", port: int | None = DEFAULT_PORT, share: bool = False, **kwargs):
    """Starts the app as the command line does (offline theme, no SSR node server, no analytics)."""
    return demo.launch(server_name=host, server_port=port, share=share, theme=offline_theme(), ssr_mode=False,
                       footer_links=["api"], max_file_size="1gb", **kwargs)


__all__ = ["WebDemo", "WebDemoLimits", "build_demo", "history_to_messages", "launch", "load_clip"]
