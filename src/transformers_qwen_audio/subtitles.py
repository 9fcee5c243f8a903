# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Subtitles from timestamped transcriptions: `{"text", "chunks": [{"text": word, "timestamp": (start, end)}]}` (what
the `audio-chat` pipeline and transformers' ASR pipeline return) to SRT, WebVTT or JSON.

Words are grouped into cues of at most `max_chars` characters and `max_duration` seconds. A missing start (text
before the first timestamp) takes the previous cue's end; a missing end (or one not after its start) takes the next
word's start, or start + `DEFAULT_WORD_SECONDS`.

Whatever order the model wrote its times in, the cues are valid subtitles: in time order, none overlapping the one
before, each ending after it starts, and, given the clip's `duration`, within the clip. A word that starts before
the one before it is moved to where that one starts (random or damaged checkpoints write times out of order).
"""

import json
import os

SUBTITLE_FORMATS = ("srt", "vtt", "json", "txt")
DEFAULT_WORD_SECONDS = 0.5


def _clean_chunks(chunks, duration: float | None) -> list[tuple[str, float, float]]:
    words = []
    previous_start = previous_end = 0.0
    for index, chunk in enumerate(chunks):
        if not isinstance(chunk, dict) or "text" not in chunk or "timestamp" not in chunk:
            raise ValueError(f"Chunk {index} must be a dict with 'text' and 'timestamp', got {chunk!r}.")
        start, end = chunk["timestamp"]
        # Starts never go back in time: cues must be in order.
        start = previous_end if start is None else max(float(start), previous_start)
        if end is None or float(end) <= start:
            following = next((c["timestamp"][0] for c in chunks[index + 1 :] if c["timestamp"][0] is not None), None)
            end = following if following is not None and following > start else start + DEFAULT_WORD_SECONDS
        end = float(end)
        if duration is not None:
            if start >= duration:
                break  # this word and the ones after it start after the clip's end
            end = min(end, duration)
        words.append((str(chunk["text"]).strip(), start, end))
        previous_start, previous_end = start, end
    return [word for word in words if word[0]]


def group_into_cues(chunks, max_chars: int = 42, max_duration: float = 5.0, duration: float | None = None
                    ) -> list[dict]:
    """Groups word chunks into cues `{"text", "start", "end"}`: in time order, not overlapping, each ending after it
    starts (and, given the clip's `duration` in seconds, within it: words that start after it are dropped). A word
    wholly inside the cue before it joins that cue's text."""
    if duration is not None and not duration > 0:
        raise ValueError(f"`duration` must be a positive number of seconds, got {duration!r}.")
    cues = []
    for text, start, end in _clean_chunks(chunks, duration):
        if cues:
            cue = cues[-1]
            joined = f"{cue['text']} {text}"
            if len(joined) <= max_chars and end - cue["start"] <= max_duration:
                cue["text"], cue["end"] = joined, max(cue["end"], end)
                continue
            start = max(start, cue["end"])  # a word that overlaps the cue before starts where that one ends
            if end <= start:  # nothing of it is left after that cue: its text joins it
                cue["text"] = joined
                continue
        cues.append({"text": text, "start": start, "end": end})
    return cues


def format_timestamp(seconds: float, separator: str = ",") -> str:
    """`HH:MM:SS,mmm` (SRT) or, with `separator="."`, `HH:MM:SS.mmm` (WebVTT)."""
    if seconds < 0:
        raise ValueError(f"Timestamps cannot be negative, got {seconds}.")
    milliseconds = round(seconds * 1000)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{milliseconds:03d}"


def to_srt(chunks, **cue_kwargs) -> str:
    """SRT of word chunks (`cue_kwargs`: `group_into_cues`'s `max_chars`, `max_duration`, `duration`)."""
    blocks = [
        f"{index}\n{format_timestamp(cue['start'])} --> {format_timestamp(cue['end'])}\n{cue['text']}\n"
        for index, cue in enumerate(group_into_cues(chunks, **cue_kwargs), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(chunks, **cue_kwargs) -> str:
    """WebVTT of word chunks (`cue_kwargs` as for `to_srt`)."""
    blocks = [
        f"{format_timestamp(cue['start'], '.')} --> {format_timestamp(cue['end'], '.')}\n{cue['text']}\n"
        for cue in group_into_cues(chunks, **cue_kwargs)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_json(result: dict) -> str:
    """The result as JSON (timestamps as `[start, end]` lists)."""
    return json.dumps(result, ensure_ascii=False, indent=1)


def render(result: dict, output_format: str, duration: float | None = None) -> str:
    """Renders a transcription result (`{"text", "chunks"?}`) in one of `SUBTITLE_FORMATS` (cues within the clip's
    `duration` when given)."""
    if output_format not in SUBTITLE_FORMATS:
        raise ValueError(f"Unknown subtitle format {output_format!r}; expected one of {SUBTITLE_FORMATS}.")
    if output_format == "json":
        return to_json(result)
    if output_format == "txt":
        return result["text"] + "\n"
    if "chunks" not in result:
        raise ValueError(f"{output_format.upper()} needs timestamps: transcribe with `return_timestamps='word'`.")
    return (to_srt if output_format == "srt" else to_vtt)(result["chunks"], duration=duration)


def write(result: dict, path: str | os.PathLike, output_format: str | None = None) -> str:
    """Writes `result` to `path` in `output_format` (default: from the file extension); returns the path."""
    output_format = output_format or os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    text = render(result, output_format)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    return os.fspath(path)


__all__ = ["SUBTITLE_FORMATS", "format_timestamp", "group_into_cues", "render", "to_json", "to_srt", "to_vtt", "write"]
