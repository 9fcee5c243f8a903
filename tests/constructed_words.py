"""Constructed word timelines, and what a fake model that hears part of one says: shared by the long-form tests
(tests/test_long_form.py, tests/test_pipeline_long_form.py) and the live ones (tests/test_live_transcription.py)."""

import numpy as np
import pytest


def make_timeline(seconds: float, seed: int = 0, pauses: tuple[float, float] = (0.05, 0.6)) -> list[tuple]:
    """Words of 0.2-0.9 s with pauses drawn from `pauses`, as (text, start, end), from 0.3 s to `seconds` - 0.1."""
    rng = np.random.default_rng(seed)
    words, time = [], 0.3
    while True:
        length = rng.uniform(0.2, 0.9)
        if time + length > seconds - 0.1:
            return words
        words.append((f"w{len(words)}", round(time, 2), round(time + length, 2)))
        time += length + rng.uniform(*pauses)


def words_heard(words, start: float, end: float, open_end: bool = False) -> list[dict]:
    """The word chunks a model hearing [start, end) of `words` gives, timed from `start`; a word cut by the end comes
    back garbled ("~"), ending at the edge or, with `open_end`, without an end, as a model that heard half of it
    might say it."""
    heard = []
    for text, word_start, word_end in words:
        if word_start >= start - 1e-3 and word_end <= end + 1e-3:
            heard.append({"text": text, "timestamp": (round(word_start - start, 3), round(word_end - start, 3))})
        elif start <= word_start < end:
            cut = None if open_end else round(end - start, 3)
            heard.append({"text": text + "~", "timestamp": (round(word_start - start, 3), cut)})
    return heard


def as_tuples(words) -> list[tuple]:
    return [(word["text"], *word["timestamp"]) for word in words]


def expected(words, tolerance: float = 0.02) -> list[tuple]:
    return [(text, pytest.approx(start, abs=tolerance), pytest.approx(end, abs=tolerance)) for text, start, end in words]


class TimelineVAD:
    """A stand-in for `voice_activity.StreamingSpeechSegments` that hears `words` (text, start, end) as the speech:
    a word shows once 0.25 s of it has come (silero-vad's minimum speech), words less than 0.1 s apart are one segment
    (its minimum pause), segments are padded by 0.03 s, and the last one stays open, ending where the stream is, until
    0.1 s of the pause after it has come."""

    def __init__(self, words, rate: int = 16000, heard: int = 0):
        self.words, self.rate, self.samples = words, rate, heard

    def push(self, samples) -> None:
        self.samples += len(samples)

    def segments(self, final: bool = False) -> list[tuple[int, int]]:
        heard = self.samples / self.rate
        spans: list[list[float]] = []
        for _, start, end in self.words:
            if not final and start + 0.25 > heard:
                break
            if spans and start - spans[-1][1] < 0.1:
                spans[-1][1] = end
            else:
                spans.append([start, end])
        if spans and not final and spans[-1][1] + 0.1 > heard:
            spans[-1][1] = heard
        return [(int(max(start - 0.03, 0) * self.rate), int(min(end + 0.03, heard) * self.rate))
                for start, end in spans]
