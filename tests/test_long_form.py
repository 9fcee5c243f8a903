"""Long-form transcription on constructed timestamps: windows, offsets, no word doubled or dropped at the edges."""

import numpy as np
import pytest

from constructed_words import as_tuples, expected, make_timeline, words_heard
from transformers_qwen_audio.long_form import (
    WINDOW_BREAK_SECONDS,
    WINDOW_CONTEXT_SECONDS,
    long_form_words,
    sequential_long_form,
    vad_long_form,
    windows_at_pauses,
    words_in_speech,
)


RATE = 100  # samples per second: small arrays, same arithmetic
OWNER_STRIDE = 10_000.0  # recording k's samples hold k * OWNER_STRIDE + their own time


def _recording(seconds: float, owner: int = 0) -> np.ndarray:
    """Each sample holds its recording's number and its own time: a fake transcriber can tell where a window lies."""
    return owner * OWNER_STRIDE + (np.arange(int(seconds * RATE)) / RATE).astype(np.float64)


def _fake_transcriber(timelines, calls):
    """Returns the words inside each window (relative times), a word cut by the window's end garbled and ending at
    the edge. `calls` gets each batch's size."""

    def transcribe(windows):
        calls.append(len(windows))
        results = []
        for window in windows:
            owner, start = divmod(float(window[0]), OWNER_STRIDE)
            results.append(words_heard(timelines[int(owner)], start, start + len(window) / RATE))
        return results

    return transcribe


def _expected(words):
    return expected(words, tolerance=0.011)


@pytest.mark.parametrize("seconds, seed", [(95.0, 0), (61.3, 1), (30.0, 2), (12.0, 3)])
def test_sequential_keeps_every_word_once_on_the_recording_time_line(seconds, seed):
    timeline = make_timeline(seconds, seed)
    calls = []
    [words] = sequential_long_form([_recording(seconds)], _fake_transcriber([timeline], calls), sampling_rate=RATE)
    assert as_tuples(words) == _expected(timeline)
    # Each window but the last settles at least 30 - 1 (tail) - 0.9 (longest word) seconds.
    assert len(calls) <= int(np.ceil(max(seconds - 30, 0) / 28.1)) + 1


def test_sequential_advances_recordings_together_in_one_batch_per_step():
    timelines = [make_timeline(70.0, 0), make_timeline(20.0, 1)]
    calls = []
    words = sequential_long_form([_recording(70.0, 0), _recording(20.0, 1)], _fake_transcriber(timelines, calls),
                                 sampling_rate=RATE)
    assert calls[0] == 2 and len(calls) == 3 and calls[1:] == [1, 1]
    for timeline, found in zip(timelines, words):
        assert as_tuples(found) == _expected(timeline)


def test_sequential_advances_through_silence_and_overlong_words():
    [words] = sequential_long_form([_recording(75.0)], lambda windows: [[] for _ in windows], sampling_rate=RATE)
    assert words == []
    # One "word" longer than a window: the loop still ends, and what follows it is found.
    timeline = [("long", 1.0, 40.0), ("after", 41.0, 41.5)]
    [words] = sequential_long_form([_recording(45.0)], _fake_transcriber([timeline], []), sampling_rate=RATE)
    assert as_tuples(words)[-1] == ("after", pytest.approx(41.0, abs=0.011), pytest.approx(41.5, abs=0.011))


def test_sequential_refuses_bad_settings_and_results():
    with pytest.raises(ValueError, match="tail_seconds"):
        sequential_long_form([_recording(40)], lambda windows: [], tail_seconds=30.0, sampling_rate=RATE)
    with pytest.raises(ValueError, match="returned 0 results for 1 windows"):
        sequential_long_form([_recording(40)], lambda windows: [], sampling_rate=RATE)
    with pytest.raises(TypeError, match="one list of words per window"):
        sequential_long_form([_recording(40)], lambda windows: ["text"], sampling_rate=RATE)
    with pytest.raises(ValueError, match="Unknown long-form method"):
        long_form_words([_recording(40)], lambda windows: [], method="overlap")


def _segments(timeline, gap: float = 0.3):
    """The VAD's view: words closer than `gap` merge into one speech segment."""
    segments = []
    for _, start, end in timeline:
        if segments and start - segments[-1][1] / RATE < gap:
            segments[-1] = (segments[-1][0], int(end * RATE))
        else:
            segments.append((int(start * RATE), int(end * RATE)))
    return segments


def test_windows_end_in_pauses_and_cover_all_speech():
    timeline = make_timeline(200.0, 4)
    segments = _segments(timeline)
    windows = windows_at_pauses(segments, 200 * RATE, sampling_rate=RATE)
    assert all(end - start <= 30 * RATE for start, end in windows)
    assert all(earlier[1] <= later[0] for earlier, later in zip(windows, windows[1:]))
    for segment_start, segment_end in segments:  # every segment lies inside one window
        assert any(start <= segment_start and segment_end <= end for start, end in windows)
    # A segment longer than a window is cut into window-long pieces.
    opens = 100 - int(WINDOW_CONTEXT_SECONDS * RATE)
    assert windows_at_pauses([(100, 100 + 70 * RATE)], 80 * RATE, sampling_rate=RATE)[:2] == [
        (opens, opens + 30 * RATE), (opens + 30 * RATE, opens + 60 * RATE)]


def test_vad_windows_keep_a_short_context_around_the_speech():
    # Two utterances 10 s apart in windows of 12 s: each window holds one, with the context on either side and not the
    # pause's half (a long silence after the words is room for a word the model invents).
    context = int(WINDOW_CONTEXT_SECONDS * RATE)
    segments = [(5 * RATE, 7 * RATE), (17 * RATE, 19 * RATE)]
    assert windows_at_pauses(segments, 30 * RATE, window_seconds=12.0, sampling_rate=RATE) == [
        (5 * RATE - context, 7 * RATE + context), (17 * RATE - context, 19 * RATE + context)]
    # A pause of WINDOW_BREAK_SECONDS ends a window though the next speech would fit in it; a shorter one does not.
    breaking = int(WINDOW_BREAK_SECONDS * RATE)
    apart = [(5 * RATE, 6 * RATE), (6 * RATE + breaking, 7 * RATE + breaking)]
    assert windows_at_pauses(apart, 30 * RATE, window_seconds=12.0, sampling_rate=RATE) == [
        (5 * RATE - context, 6 * RATE + context), (6 * RATE + breaking - context, 7 * RATE + breaking + context)]
    near = [(5 * RATE, 6 * RATE), (6 * RATE + breaking - 1, 7 * RATE + breaking)]
    assert len(windows_at_pauses(near, 30 * RATE, window_seconds=12.0, sampling_rate=RATE)) == 1
    # A pause shorter than two contexts is shared half-way.
    close = [(5 * RATE, 7 * RATE), (7 * RATE + context, 18 * RATE)]
    assert windows_at_pauses(close, 30 * RATE, window_seconds=12.0, sampling_rate=RATE)[0] == (
        5 * RATE - context, 7 * RATE + context // 2)


def test_vad_transcribes_all_windows_as_batches_and_keeps_every_word_once():
    timelines = [make_timeline(150.0, 5), make_timeline(45.0, 6)]
    recordings = [_recording(150.0, 0), _recording(45.0, 1)]
    segments = [_segments(timeline) for timeline in timelines]
    calls = []
    words = vad_long_form(recordings, _fake_transcriber(timelines, calls), sampling_rate=RATE, batch_size=4,
                          segments_of=lambda waveform: segments[int(waveform[0] // OWNER_STRIDE)])
    windows = sum(len(windows_at_pauses(found, len(recording), sampling_rate=RATE))
                  for found, recording in zip(segments, recordings))
    assert windows >= 8 and calls == [4] * (windows // 4) + ([windows % 4] if windows % 4 else [])
    for timeline, found in zip(timelines, words):
        assert as_tuples(found) == _expected(timeline)


def test_vad_drops_the_words_a_model_times_in_a_pause():
    # "cat cat": a model trained on short clips writes a word more where it hears silence, and times it there.
    segments = [(50, 100), (200, 250)]  # speech 0.5-1.0 s and 2.0-2.5 s
    said = [{"text": "a", "timestamp": (0.55, 0.95)}, {"text": "made-up", "timestamp": (1.2, 1.6)},
            {"text": "edge", "timestamp": (0.9, 1.3)}, {"text": "b", "timestamp": (1.9, 2.05)},
            {"text": "tail", "timestamp": (2.5, 2.9)}, {"text": "none", "timestamp": (0.1, 0.4)}]
    assert [word["text"] for word in words_in_speech(said, segments, RATE)] == ["a", "edge", "b"]
    assert words_in_speech(said, [], RATE) == []
    timeline = make_timeline(60.0, 7, (0.3, 1.5))
    found = _segments(timeline, gap=0.2)

    def inventing(windows):  # the words heard, and one more in the silence at each window's end
        heard = _fake_transcriber([timeline], [])(windows)
        return [words + [{"text": "again", "timestamp": (len(window) / RATE - 0.05, len(window) / RATE)}]
                for window, words in zip(windows, heard)]

    kwargs = {"sampling_rate": RATE, "window_seconds": 5.0, "segments_of": lambda waveform: found}
    assert as_tuples(vad_long_form([_recording(60.0)], inventing, **kwargs)[0]) == _expected(timeline)
    kept = vad_long_form([_recording(60.0)], inventing, drop_words_in_silence=False, **kwargs)[0]
    assert [word["text"] for word in kept].count("again") == len(windows_at_pauses(found, 60 * RATE, 5.0, RATE))


def test_sequential_starts_the_next_window_in_the_pause_after_the_last_kept_word():
    # A 10 s window keeps "one" (ends 2.0 s) and "two" (ends 8.4 s; the tail is the last 1 s); "three" starts at
    # 8.5 s. The next window starts half-way into that short pause (8.45 s), and after a long pause at most
    # WINDOW_CONTEXT_SECONDS after the word: never at a word's end, where an early-timed end would cut into the word.
    starts = []

    def transcribe(windows):
        starts.extend(float(window[0]) for window in windows)
        if len(starts) == 1:
            return [[{"text": "one", "timestamp": (1.0, 2.0)}, {"text": "two", "timestamp": (7.0, 8.4)},
                     {"text": "three", "timestamp": (8.5, 9.8)}]]
        return [[]]

    seconds = np.arange(25 * RATE) / RATE
    sequential_long_form([seconds], transcribe, window_seconds=10.0, sampling_rate=RATE)
    assert starts[1] == pytest.approx(8.45, abs=1.5 / RATE)
    starts.clear()

    def long_pause(windows):
        starts.extend(float(window[0]) for window in windows)
        return [[{"text": "one", "timestamp": (1.0, 2.0)}]] if len(starts) == 1 else [[]]

    sequential_long_form([seconds], long_pause, window_seconds=10.0, sampling_rate=RATE)
    assert starts[1] == pytest.approx(2.0 + WINDOW_CONTEXT_SECONDS, abs=1.5 / RATE)
