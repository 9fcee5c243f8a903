# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Long-form transcription: recordings longer than the 30 s window the model hears, cut where the words end.

Two ways to place the windows, both on the recording's time line:

- `"sequential"`, as Whisper's sequential long-form decoding does with its segment timestamps: a window is
  transcribed with word timestamps, the words that end before the window's tail (`tail_seconds`) are kept, and the
  next window starts at the last kept word's end. A word cut by the window edge is heard again, whole, in the next
  window. Windows of one recording depend on each other; several recordings advance together, one batch a step.
- `"vad"`: a voice-activity detector (silero-vad, the `vad` extra; its wheel ships its model) finds the pauses first,
  and windows of up to 30 s end in them. The windows are independent, so all of them, of every recording, are
  transcribed as batches.

`"chunk"` (back-to-back 30 s windows, in the pipeline itself) stays the fastest choice for audio without long words
at the edges.

Both take `transcribe_windows(windows) -> list[list[word]]`: word chunks `{"text", "timestamp": (start, end)}` relative
to each window, as `pipeline("audio-chat")(..., task="transcribe", return_timestamps="word")` gives them. That keeps
this module free of the model, and testable on constructed timestamps. A missing time (text the model wrote before
its first or after its last timestamp) is completed from the neighbouring words and the window's edges.

`LiveTranscript` is the same idea for a stream (the web demo's microphone, the server's WebSocket): a rolling buffer
transcribed with word timestamps as audio arrives. With a VAD that hears the stream as it comes
(`voice_activity.StreamingSpeechSegments`), the buffer is cut into exactly the windows `"vad"` cuts the whole
recording into, and its final words are `"vad"`'s; without, a word is final once the model has heard the pause after
it, and the buffer is cut there.
"""

import bisect
from collections.abc import Callable, Sequence

import numpy as np

from .audio_io import QWEN_AUDIO_SAMPLING_RATE
from .voice_activity import StreamingSpeechSegments, speech_segments, vad_available


WINDOW_SECONDS = 30.0
# Words that end in the last second of a window (that is not the recording's last) may be cut by its edge: they are
# heard again at the start of the next window instead.
TAIL_SECONDS = 1.0
# A window shorter than this is not worth a model call (and Qwen-Audio needs some audio to hear).
MIN_WINDOW_SECONDS = 0.1
# A VAD window opens this long before its first speech and ends at most this long after its last: a model trained on
# clips with short silences around the words hears a long pause as room for one more word (the main job's model, 3 s
# windows on validation recordings: WER 0.16 ending half-way through each pause with 0.1 s before the speech, 0.13
# ending 0.1 s after it, 0.11 with 0.2 s, 0.125 with 0.3 s; 0.07 utterance by utterance).
WINDOW_CONTEXT_SECONDS = 0.2
# A pause this long ends a VAD window even when the next speech would fit in it: the model hears each stretch of speech
# with the silence of one pause around it, and a live window is final once the pause is heard (the main job's model,
# 3 s windows on validation recordings: WER 0.055 -> 0.044 against the text, and 0.100 -> 0.074 for a second seed's
# model, with 0.6 or 0.8 s; 0.055 / 0.089 with 1.0 s, 0.052 / 0.096 with 1.5 s).
WINDOW_BREAK_SECONDS = 0.8
LONG_FORM_METHODS = ("sequential", "vad")

Word = dict
TranscribeWindows = Callable[[list[np.ndarray]], list[list[Word]]]


def _shifted(words: Sequence[Word], offset: float) -> list[Word]:
    return [{**word, "timestamp": (round(word["timestamp"][0] + offset, 2), round(word["timestamp"][1] + offset, 2))}
            for word in words]


def _check_window_result(words, index: int, window_seconds: float) -> list[Word]:
    if not isinstance(words, list):
        raise TypeError(f"transcribe_windows must return one list of words per window; window {index} got "
                        f"{type(words).__name__}.")
    return complete_times(words, window_seconds)


def complete_times(words: Sequence[Word], window_seconds: float) -> list[Word]:
    """
    The words with every time inside the window, and none missing: a missing start takes the previous word's end
    (0 for the first), a missing end the next word's start (the window's end for the last: an open word may be cut).
    """
    completed, previous_end = [], 0.0
    for index, word in enumerate(words):
        start, end = word["timestamp"]
        start = previous_end if start is None else min(max(float(start), 0.0), window_seconds)
        if end is None:
            following = next((later["timestamp"][0] for later in words[index + 1:]
                              if later["timestamp"][0] is not None), None)
            end = window_seconds if following is None else following
        end = min(max(float(end), start), window_seconds)
        completed.append({**word, "timestamp": (start, end)})
        previous_end = end
    return completed


def words_text(words: Sequence[Word], separator: str = " ") -> str:
    """The running text of word chunks (`separator`: `word_timestamps.word_separator(language)`)."""
    return separator.join(word["text"] for word in words if word["text"])


def words_to_segments(words: Sequence[Word], separator: str = " ", max_gap: float = 0.0) -> list[Word]:
    """Segment chunks (as `return_timestamps=True` gives them) from word chunks: runs of words cut where one word's
    end and the next one's start are more than `max_gap` seconds apart."""
    segments: list[Word] = []
    for word in words:
        start, end = word["timestamp"]
        if segments and start - segments[-1]["timestamp"][1] <= max_gap:
            segments[-1] = {"text": segments[-1]["text"] + separator + word["text"],
                            "timestamp": (segments[-1]["timestamp"][0], end)}
        else:
            segments.append({"text": word["text"], "timestamp": (start, end)})
    return segments


def check_window_seconds(window_seconds, name: str = "`window_seconds`") -> float:
    """A long-form window length, in seconds: longer than two tails (so that every window settles some audio) and at
    most the 30 s the model hears."""
    if isinstance(window_seconds, bool) or not isinstance(window_seconds, (int, float)) or not (
            2 * TAIL_SECONDS < window_seconds <= WINDOW_SECONDS):
        raise ValueError(f"{name} must be above {2 * TAIL_SECONDS:g} and at most {WINDOW_SECONDS:g} seconds (what "
                         f"the model hears), got {window_seconds!r}.")
    return float(window_seconds)


def declared_window_seconds(generation_config) -> float:
    """The long-form window a checkpoint declares (`generation_config.long_form_window_seconds`: the main job's tiny
    models, trained on short clips, set it), else the 30 s the model hears."""
    declared = getattr(generation_config, "long_form_window_seconds", None)
    if declared is None:
        return WINDOW_SECONDS
    return check_window_seconds(declared, "The checkpoint's `generation_config.long_form_window_seconds`")


def default_long_audio(generation_config, otherwise: str = "chunk") -> str:
    """How the server, the web demo and `qwen-audio transcribe` cut recordings by default: a checkpoint that declares a
    long-form window was trained on clips shorter than 30 s and reads 30 s windows badly (the main job's model: WER
    0.96 with `chunk`, 0.08 with `vad` in its 3 s windows), so it gets `vad` (`sequential` without silero-vad);
    any other keeps `otherwise`."""
    if getattr(generation_config, "long_form_window_seconds", None) is None:
        return otherwise
    return "vad" if vad_available() else "sequential"


def cut_in_pause(end: float, following: float) -> float:
    """Where to start hearing again after a word that ends at `end`, the next one starting at `following`: half-way
    into the pause, at most `WINDOW_CONTEXT_SECONDS` after the word, not at its end: a model that times an end early
    would start the next window inside the word and write it twice (the main job's model, live on validation
    recordings: WER 0.37 -> 0.30)."""
    return min((end + following) / 2, end + WINDOW_CONTEXT_SECONDS)


def sequential_long_form(
    waveforms: Sequence[np.ndarray],
    transcribe_windows: TranscribeWindows,
    window_seconds: float = WINDOW_SECONDS,
    tail_seconds: float = TAIL_SECONDS,
    sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE,
    progress: Callable[[float], None] | None = None,
) -> list[list[Word]]:
    """
    The words of each recording (timestamps on its own time line), transcribed window after window: each window
    starts where the last kept word of the previous one ended. All recordings advance together, one batch per step.
    `progress(seconds)` is called with the audio seconds each step settled.
    """
    if not 0 <= tail_seconds < window_seconds:
        raise ValueError(f"`tail_seconds` must be at least 0 and less than the window ({window_seconds} s), got "
                         f"{tail_seconds}.")
    window = int(round(window_seconds * sampling_rate))
    starts = [0] * len(waveforms)
    results: list[list[Word]] = [[] for _ in waveforms]
    while True:
        active = [index for index, waveform in enumerate(waveforms)
                  if len(waveform) - starts[index] >= MIN_WINDOW_SECONDS * sampling_rate]
        if not active:
            return results
        windows = [waveforms[index][starts[index]: starts[index] + window] for index in active]
        transcribed = transcribe_windows(windows)
        if len(transcribed) != len(windows):
            raise ValueError(f"transcribe_windows returned {len(transcribed)} results for {len(windows)} windows.")
        for index, piece, words in zip(active, windows, transcribed):
            words = _check_window_result(words, index, len(piece) / sampling_rate)
            offset = starts[index] / sampling_rate
            is_last = starts[index] + len(piece) >= len(waveforms[index])
            if is_last:
                kept, advance = words, len(piece)
            else:
                limit = len(piece) / sampling_rate - tail_seconds
                kept = [word for word in words if word["timestamp"][1] <= limit]
                # The next window starts in the pause after the kept words' last end (a damaged model may write
                # times out of order); with none kept (silence, or one word longer than the window), after the
                # settled part of this one, so that the loop always advances.
                if kept:
                    kept_end = max(word["timestamp"][1] for word in kept)
                    following = min((word["timestamp"][0] for word in words if word["timestamp"][0] >= kept_end),
                                    default=len(piece) / sampling_rate)
                    settled = cut_in_pause(kept_end, following)
                else:
                    settled = limit
                advance = max(int(settled * sampling_rate), int(MIN_WINDOW_SECONDS * sampling_rate))
            results[index].extend(_shifted(kept, offset))
            starts[index] += advance
            if progress is not None:
                progress(advance / sampling_rate)


def words_in_speech(words: Sequence[Word], segments: Sequence[tuple[int, int]],
                    sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE) -> list[Word]:
    """The words (times in seconds) that overlap some speech segment ((start, end) samples, sorted): a word timed
    wholly inside a pause is one the model made up, as a model trained on short clips does at a window's end or in a
    long pause ("cat cat", "red zero red": the main job's model, vad on validation recordings, WER against the text
    0.063 -> 0.055 in 3 s windows, 0.229 -> 0.177 in 4 s ones)."""
    starts = [start for start, _ in segments]
    kept = []
    for word in words:
        start, end = (time * sampling_rate for time in word["timestamp"])
        index = bisect.bisect_left(starts, end)  # segments[:index] start before the word ends; the last ends latest
        if index and segments[index - 1][1] > start:
            kept.append(word)
    return kept


def windows_at_pauses(
    segments: Sequence[tuple[int, int]],
    total: int,
    window_seconds: float = WINDOW_SECONDS,
    sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE,
) -> list[tuple[int, int]]:
    """
    Windows of at most `window_seconds` that cover every speech segment (sorted (start, end) samples) and end in
    pauses: `WINDOW_CONTEXT_SECONDS` after their last segment, or half-way to the next one when that is nearer. A
    pause of `WINDOW_BREAK_SECONDS` or more always ends a window. A window opens the same context before its first
    segment (or where the previous one ended), and a segment longer than a window is cut into window-long pieces.
    Returns (start, end) samples.
    """
    window = int(round(window_seconds * sampling_rate))
    context = int(WINDOW_CONTEXT_SECONDS * sampling_rate)
    long_pause = int(WINDOW_BREAK_SECONDS * sampling_rate)
    windows: list[tuple[int, int]] = []
    start = last_end = None
    for segment_start, segment_end in segments:
        if start is not None and (segment_end - start > window or segment_start - last_end >= long_pause):
            windows.append((start, min((last_end + segment_start) // 2, last_end + context, start + window)))
            start = None
        if start is None:
            start = max(windows[-1][1] if windows else 0, segment_start - context)
        while segment_end - start > window:
            windows.append((start, start + window))
            start += window
        last_end = segment_end
    if start is not None:
        windows.append((start, min(total, last_end + context, start + window)))
    return [(begin, end) for begin, end in windows if end - begin >= MIN_WINDOW_SECONDS * sampling_rate]


def vad_long_form(
    waveforms: Sequence[np.ndarray],
    transcribe_windows: TranscribeWindows,
    window_seconds: float = WINDOW_SECONDS,
    sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE,
    batch_size: int = 8,
    segments_of: Callable[[np.ndarray], list[tuple[int, int]]] | None = None,
    progress: Callable[[float], None] | None = None,
    drop_words_in_silence: bool = True,
) -> list[list[Word]]:
    """
    The words of each recording, from windows that end in pauses found by a VAD (`segments_of`, by default
    `speech_segments`); every window of every recording is independent, so they are transcribed `batch_size` at a time.
    With `drop_words_in_silence`, a word the model times where the VAD heard no speech is dropped (`words_in_speech`).
    """
    segments_of = segments_of or (lambda waveform: speech_segments(waveform, sampling_rate))
    speech = [segments_of(waveform) for waveform in waveforms]
    planned = [(index, begin, end) for index, waveform in enumerate(waveforms)
               for begin, end in windows_at_pauses(speech[index], len(waveform), window_seconds, sampling_rate)]
    results: list[list[Word]] = [[] for _ in waveforms]
    for first in range(0, len(planned), batch_size):
        batch = planned[first: first + batch_size]
        transcribed = transcribe_windows([waveforms[index][begin:end] for index, begin, end in batch])
        if len(transcribed) != len(batch):
            raise ValueError(f"transcribe_windows returned {len(transcribed)} results for {len(batch)} windows.")
        for (index, begin, end), words in zip(batch, transcribed):
            words = _check_window_result(words, index, (end - begin) / sampling_rate)
            words = _shifted(words, begin / sampling_rate)
            if drop_words_in_silence:
                words = words_in_speech(words, speech[index], sampling_rate)
            results[index].extend(words)
            if progress is not None:
                progress((end - begin) / sampling_rate)
    return results


def long_form_words(
    waveforms: Sequence[np.ndarray],
    transcribe_windows: TranscribeWindows,
    method: str = "sequential",
    **kwargs,
) -> list[list[Word]]:
    """The words of each recording by `method` (`"sequential"` or `"vad"`); see the module's docstring."""
    if method == "sequential":
        return sequential_long_form(waveforms, transcribe_windows, **kwargs)
    if method == "vad":
        return vad_long_form(waveforms, transcribe_windows, **kwargs)
    raise ValueError(f"Unknown long-form method {method!r}; expected one of {', '.join(LONG_FORM_METHODS)}.")


# Live transcription: how often the buffer is heard again, and how long a pause makes the words before it final.
LIVE_STEP_SECONDS = 1.0
LIVE_PAUSE_SECONDS = 0.2
VAD_SETTLE_SECONDS = 0.3  # more than the VAD's minimum speech and minimum pause, padded


class LiveTranscript:
    """
    The transcript of an audio stream so far, from a rolling buffer heard again every `step_seconds` of new audio.

    Model-free, so that a synchronous caller (the web demo) and an asynchronous one (the server's WebSocket) drive it
    alike: `push(samples)` adds audio; while `due()`, transcribe `window_audio()` (it starts `window_start` seconds
    into the stream) with word timestamps relative to it and hand the words to `settle(words)`, which returns the
    words that became final. At the end of the stream, `finish()` makes every word heard final. Times are on the
    stream's time line; `final` and `partial` hold the words so far.

    Where the buffer is cut, two ways:

    - with `vad` (a `voice_activity.StreamingSpeechSegments`, which hears the stream frame by frame as the whole
      recording would be heard), the buffer is planned into windows that end in pauses exactly as `vad_long_form`
      plans a whole recording (`windows_at_pauses`, `window_seconds` long at most). A window is transcribed for good
      once nothing that comes later could change it: a later window has begun, the pause after it has lasted
      `WINDOW_BREAK_SECONDS`, or the stream has gone a whole window past its start. Its words are final and the
      buffer is cut at its end; the open window is heard again every step for the words still partial. So the
      finals are the words of the offline `long_audio="vad"` transcription of the same audio, window for window.
    - without, the model's own timestamps decide: a word is final when it ends before the buffer's last
      `tail_seconds` and a pause of `pause_seconds` follows it (the model has heard that it is over); the buffer is then
      cut in that pause. A buffer that would outgrow the window is cut at its settled part whatever follows.
    """

    def __init__(self, sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE, tail_seconds: float = TAIL_SECONDS,
                 pause_seconds: float = LIVE_PAUSE_SECONDS, step_seconds: float = LIVE_STEP_SECONDS,
                 window_seconds: float = WINDOW_SECONDS, vad: StreamingSpeechSegments | None = None):
        if not (step_seconds > 0 and tail_seconds >= 0 and step_seconds + tail_seconds < window_seconds):
            raise ValueError(f"`step_seconds` ({step_seconds}) and `tail_seconds` ({tail_seconds}) must be positive "
                             f"and together shorter than the window ({window_seconds} s).")
        self.sampling_rate = sampling_rate
        self.tail_seconds, self.pause_seconds = tail_seconds, pause_seconds
        self.step = int(step_seconds * sampling_rate)
        self.window_seconds = window_seconds
        self.window = int(window_seconds * sampling_rate)
        self.vad = vad
        # How long the VAD needs to settle what it heard: speech that starts in the pause after a window (its end is
        # half-way to it) shows once heard for the VAD's minimum speech (`voice_activity.MIN_SPEECH_SECONDS`, padded
        # by silero-vad's 0.03 s); the end of open speech comes back by up to its minimum pause (0.1 s) and a frame.
        self.vad_settle = int((WINDOW_CONTEXT_SECONDS + VAD_SETTLE_SECONDS) * sampling_rate)
        self.long_pause = int(WINDOW_BREAK_SECONDS * sampling_rate)
        self.buffer = np.zeros(0, np.float32)
        self.buffer_start = 0  # where the buffer starts on the stream's time line, in samples
        self.unheard = 0  # samples pushed since the buffer was last transcribed
        self.finishing = False
        self.final: list[Word] = []
        self.partial: list[Word] = []
        self._plan: tuple[list[tuple[int, int]], int] | None = None  # with a VAD: the buffer's windows, how many closed
        self._speech: list[tuple[int, int]] = []  # with a VAD: the speech reaching into the buffer (stream samples)
        # The part of the buffer the last `window_audio()` gave out: audio may come between it and `settle()`.
        self._handed: tuple[int, int] | None = None
        self._heard_unheard = 0  # `unheard` when that audio was given out

    @property
    def seconds(self) -> float:
        """How much audio the stream has brought so far."""
        return (self.buffer_start + len(self.buffer)) / self.sampling_rate

    @property
    def window_start(self) -> float:
        """Where the audio of the last `window_audio()` starts on the stream's time line, in seconds."""
        return (self.buffer_start + (self._handed or (0, 0))[0]) / self.sampling_rate

    def push(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"Live audio must be mono samples (1-D), got shape {samples.shape}.")
        self.buffer = np.concatenate([self.buffer, samples])
        self.unheard += len(samples)
        self._plan = None
        if self.vad is not None:
            self.vad.push(samples)

    def finish(self) -> None:
        """The stream has ended: what is left is transcribed once more (while `due()`) and all of it is final."""
        self.finishing = True
        self._plan = None

    def due(self) -> bool:
        """Whether the buffer should be transcribed now."""
        if self.vad is not None:
            windows, closed = self._windows()
            if self.finishing and not closed:
                self.partial = []  # the end of the stream: nothing is left open
            return bool(closed) or (not self.finishing and bool(windows) and self.unheard >= self.step)
        if self.finishing:
            return len(self.buffer) >= MIN_WINDOW_SECONDS * self.sampling_rate
        return self.unheard >= self.step or len(self.buffer) > self.window - self.step

    def window_audio(self) -> np.ndarray:
        """The audio to transcribe: with a VAD, the first closed window or else the open one; without, the buffer
        (its first window-long part)."""
        if self.vad is not None:
            windows, closed = self._windows()
            self._handed = windows[0] if closed else windows[-1]
        else:
            self._handed = (0, min(len(self.buffer), self.window))
        self._heard_unheard = self.unheard  # what came after this is still unheard once it is settled
        return self.buffer[self._handed[0]: self._handed[1]]

    def settle(self, words: Sequence[Word]) -> list[Word]:
        """Takes the words of `window_audio()` (relative times) and returns those that became final (stream times)."""
        if self.vad is not None:
            return self._settle_window(words)
        if self._handed is None:  # words of the buffer as it is now
            self._handed, self._heard_unheard = (0, min(len(self.buffer), self.window)), self.unheard
        heard_samples, self._handed = self._handed[1], None
        heard = heard_samples / self.sampling_rate
        words = _check_window_result(words, 0, heard)
        self._mark_heard()
        if self.finishing and len(self.buffer) <= self.window:
            count, cut = len(words), len(self.buffer)
        else:
            count, cut = self._settled(words, heard)
        offset = self.buffer_start / self.sampling_rate
        finals = _shifted(words[:count], offset)
        self.final.extend(finals)
        self._cut(cut)
        self.partial = _shifted(words[count:], offset) if len(self.buffer) else []
        if len(self.buffer) < MIN_WINDOW_SECONDS * self.sampling_rate and self.finishing:
            self._cut(len(self.buffer))  # too short to hear: the stream's end
        return finals

    @classmethod
    def for_model(cls, generation_config) -> "LiveTranscript":
        """The live transcript the web demo and the server keep for each stream. With silero-vad installed (the `vad`
        extra), cut at its pauses into the model's declared long-form windows (`declared_window_seconds`): the finals
        are then those of `long_audio="vad"` on the whole recording. Without, at the pauses the model's timestamps
        show, in 30 s buffers (the main job's model, validation recordings: WER 0.30 against the text; 0.055 with the
        VAD in its 3 s windows)."""
        if vad_available():
            return cls(window_seconds=declared_window_seconds(generation_config), vad=StreamingSpeechSegments())
        return cls()

    def _mark_heard(self) -> None:
        self.unheard = max(self.unheard - self._heard_unheard, 0)
        self._heard_unheard = 0

    def _cut(self, samples: int) -> None:
        self.buffer = self.buffer[samples:]
        self.buffer_start += samples
        self._plan = None

    def _windows(self) -> tuple[list[tuple[int, int]], int]:
        """With a VAD: the buffer's windows (`windows_at_pauses`, samples in the buffer) and how many of the first
        are closed: planned alike whatever the speech still open at the buffer's end turns out to be. A buffer without
        speech keeps only its last step (room for the VAD to hear a word start)."""
        if self._plan is None:
            self._speech = [segment for segment in self.vad.segments(final=self.finishing)
                            if segment[1] > self.buffer_start]
            segments = [(max(start - self.buffer_start, 0), end - self.buffer_start) for start, end in self._speech]
            windows = self._planned(segments)
            if not windows and not self.finishing and len(self.buffer) > self.step:
                self._cut(len(self.buffer) - self.step)
            if self.finishing:
                closed = len(windows)
            elif segments and segments[-1][1] > len(self.buffer) - self.vad_settle:
                # Speech still open: its end may come back by silero's minimum pause, and a short one may vanish.
                # Windows are closed where the plan is the same either way, and a later window follows them.
                start, end = segments[-1]
                alternatives = [self._planned(segments[:-1] + [(start, max(start, end - self.vad_settle))])]
                if end - start < 2 * self.vad_settle:
                    alternatives.append(self._planned(segments[:-1]))
                closed = 0
                while closed < len(windows) - 1 and all(
                        closed < len(other) and other[closed] == windows[closed] for other in alternatives):
                    closed += 1
            else:  # the last window closes once no later speech could join it: none would fit in it, or a pause
                # that ends a window has been heard; nor start in its pause
                closed = len(windows)
                heard_pause = len(self.buffer) - segments[-1][1] if segments else 0
                if windows and (len(self.buffer) - windows[-1][0] <= self.window + self.vad_settle
                                and heard_pause < self.long_pause + self.vad_settle
                                or len(self.buffer) - windows[-1][1] < self.vad_settle):
                    closed -= 1
            self._plan = (windows, closed)
        return self._plan

    def _planned(self, segments: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return windows_at_pauses([segment for segment in segments if segment[1] > segment[0]], len(self.buffer),
                                 self.window_seconds, self.sampling_rate)

    def _settle_window(self, words: Sequence[Word]) -> list[Word]:
        if self._handed is None:
            raise RuntimeError("settle() takes the words of the audio window_audio() gave; call it first.")
        handed, self._handed = self._handed, None
        begin, end = handed
        windows, closed = self._windows()
        words = _check_window_result(words, 0, (end - begin) / self.sampling_rate)
        words = _shifted(words, (self.buffer_start + begin) / self.sampling_rate)
        # As vad_long_form does: words timed in a pause are dropped (on the stream's time line, as there).
        words = words_in_speech(words, self._speech, self.sampling_rate)
        if not (closed and windows[0] == handed):  # the open window: words that may still change
            self._mark_heard()
            self.partial = words
            return []
        self.final.extend(words)
        self._cut(end)
        self.partial = []
        self.unheard = max(self.unheard, self.step)  # what is left is heard again at once for its partial words
        return words

    def _settled(self, words: list[Word], heard: float) -> tuple[int, int]:
        """How many words are final, and where (in samples) the buffer is cut."""
        limit = heard - self.tail_seconds
        settled = 0  # words[:settled] end before the tail
        while settled < len(words) and words[settled]["timestamp"][1] <= limit:
            settled += 1
        count, cut = 0, 0.0
        for index in range(settled):
            following = words[index + 1]["timestamp"][0] if index + 1 < len(words) else heard
            if following - words[index]["timestamp"][1] >= self.pause_seconds:
                count, cut = index + 1, cut_in_pause(words[index]["timestamp"][1], following)
        if len(self.buffer) > self.window - self.step and cut * self.sampling_rate < self.step:
            # A full buffer without a pause to cut at (or only at its very start, as a damaged model may time its
            # words): its settled words are final all the same, and it moves on by at least one step.
            count = settled
            cut = max((word["timestamp"][1] for word in words[:settled]), default=limit)
            return count, max(int(cut * self.sampling_rate), self.step)
        return count, int(cut * self.sampling_rate)


__all__ = ["LONG_FORM_METHODS", "LiveTranscript", "check_window_seconds", "complete_times", "declared_window_seconds",
           "default_long_audio", "long_form_words", "sequential_long_form", "vad_long_form", "windows_at_pauses",
           "words_in_speech", "words_text", "words_to_segments"]
