"""Timestamped output (SRWT) to word chunks, and chunks to SRT / WebVTT / JSON."""

import json

import pytest

from transformers_qwen_audio import parse_word_timestamps
from transformers_qwen_audio.subtitles import format_timestamp, group_into_cues, render, to_srt, to_vtt, write

# What Qwen-Audio answers to `<|startoftranscript|><|en|><|transcribe|><|en|><|timestamps|><|0.00|>` (the prompt's
# first timestamp put back in front).
SRWT = "<|0.00|> mister<|0.41|> quilter<|0.86|><|sil|><|1.20|> is<|1.35|> the<|1.48|> apostle<|2.05|><|endoftext|>"
CHUNKS = [
    {"text": "mister", "timestamp": (0.0, 0.41)},
    {"text": "quilter", "timestamp": (0.41, 0.86)},
    {"text": "is", "timestamp": (1.2, 1.35)},
    {"text": "the", "timestamp": (1.35, 1.48)},
    {"text": "apostle", "timestamp": (1.48, 2.05)},
]


def test_parse_srwt_into_chunks():
    assert parse_word_timestamps(SRWT) == CHUNKS
    # A second 30 s window lands on the recording's time line.
    shifted = parse_word_timestamps(["<|0.00|> a<|1.00|>", "<|0.50|> b<|2.00|>"])
    assert shifted == [{"text": "a", "timestamp": (0.0, 1.0)}, {"text": "b", "timestamp": (30.5, 32.0)}]


def test_srt():
    assert to_srt(CHUNKS, max_chars=14) == (
        "1\n00:00:00,000 --> 00:00:00,860\nmister quilter\n\n"
        "2\n00:00:01,200 --> 00:00:02,050\nis the apostle\n"
    )


def test_vtt():
    assert to_vtt(CHUNKS) == "WEBVTT\n\n00:00:00.000 --> 00:00:02.050\nmister quilter is the apostle\n"


def test_cues_respect_duration_and_fill_missing_times():
    chunks = [{"text": "a", "timestamp": (None, 1.0)}, {"text": "b", "timestamp": (1.0, None)},
              {"text": "c", "timestamp": (7.0, 8.0)}]
    # "a" starts where the recording does; "b" ends where the next word starts; cues stay under 5 s.
    assert group_into_cues(chunks, max_duration=5.0) == [
        {"text": "a", "start": 0.0, "end": 1.0},
        {"text": "b", "start": 1.0, "end": 7.0},
        {"text": "c", "start": 7.0, "end": 8.0},
    ]
    assert format_timestamp(3725.5) == "01:02:05,500"
    with pytest.raises(ValueError):
        format_timestamp(-1)


def test_render_and_write(tmp_path):
    result = {"text": "mister quilter is the apostle", "chunks": CHUNKS}
    assert json.loads(render(result, "json"))["chunks"][0] == {"text": "mister", "timestamp": [0.0, 0.41]}
    assert render(result, "txt") == "mister quilter is the apostle\n"
    path = write(result, tmp_path / "speech.srt")
    assert (tmp_path / "speech.srt").read_text(encoding="utf-8").startswith("1\n00:00:00,000 --> ")
    assert path.endswith("speech.srt")
    with pytest.raises(ValueError, match="needs timestamps"):
        render({"text": "no times"}, "srt")
    with pytest.raises(ValueError, match="Unknown subtitle format"):
        render(result, "ass")


def _assert_valid(cues, duration=None):
    for cue in cues:
        assert cue["end"] > cue["start"] >= 0, cue
        if duration is not None:
            assert cue["end"] <= duration, cue
    for earlier, later in zip(cues, cues[1:]):
        assert later["start"] >= earlier["end"], (earlier, later)


@pytest.mark.parametrize("max_chars", [0, 14, 42])
def test_cues_stay_valid_with_words_out_of_order_and_overlapping(max_chars):
    # What a random or damaged checkpoint writes: times that go back, overlap, repeat, or run past the clip.
    chunks = [
        {"text": "late", "timestamp": (3.0, 3.5)},
        {"text": "early", "timestamp": (1.0, 1.2)},  # before the word before it
        {"text": "same", "timestamp": (3.2, 3.2)},  # no length
        {"text": "overlap", "timestamp": (3.1, 4.0)},
        {"text": "backwards", "timestamp": (5.0, 4.5)},  # ends before it starts
        {"text": "beyond", "timestamp": (9.0, 12.0)},  # past the 8 s clip
        {"text": "after", "timestamp": (11.0, None)},
    ]
    cues = group_into_cues(chunks, max_chars=max_chars, duration=8.0)
    _assert_valid(cues, duration=8.0)
    assert cues[0]["text"].startswith("late") and cues[0]["start"] == 3.0
    assert "beyond" not in " ".join(cue["text"] for cue in cues)  # wholly after the clip's end
    # The case: a word out of order joined into one cue used to end before it started.
    joined = group_into_cues([{"text": "b", "timestamp": (2.0, 2.5)}, {"text": "a", "timestamp": (0.5, 1.0)}])
    assert joined == [{"text": "b a", "start": 2.0, "end": 2.5}]
    srt = to_srt(chunks, max_chars=max_chars, duration=8.0)
    times = [line.split(" --> ") for line in srt.splitlines() if " --> " in line]
    assert times and all(start < end <= "00:00:08,000" for start, end in times)
    assert all(earlier[1] <= later[0] for earlier, later in zip(times, times[1:]))


def test_duration_must_be_positive():
    with pytest.raises(ValueError, match="duration"):
        group_into_cues(CHUNKS, duration=0)
