"""
Long-form transcription: `chunk` (back-to-back 30 s windows), `sequential` (windows start after the last whole word)
and `vad` (windows cut in pauses found by silero-vad) on recordings of several minutes, same model, same run; and
`live`: the same recordings streamed in `--live-piece-seconds` pieces through `LiveTranscript.for_model` (what the
web demo's microphone and the server's WebSocket keep), as fast as the model allows.

    python benchmarks/long_form.py [MODEL] [--recordings 2] [--minutes 3] [--batch-size 8] [--max-new-tokens 96]
                                   [--split test]

The recordings join utterances of one of the tiny dataset's held-out splits (`data.tiny_multitask`: `test` to report,
`validation` to choose settings such as `--window-seconds` on) with pauses of 0.3-1.2 s, so every word's time on the
recording is known. The baseline is the same utterances transcribed one by one (no window edge anywhere). For each
method it prints:
- WER against that one-by-one transcription (and against the dataset's texts);
- words dropped and doubled: each word the one-by-one transcription found is paired, in time order, with the nearest
  unpaired word of the same text within `--tolerance` s of its true time; it is dropped when there is none, and a
  word of the same text left unpaired within that reach is a double (so a word spoken twice in a row is not one);
- word boundary error: mean |start - true start| and |end - true end| of the paired words, in seconds;
- throughput: audio seconds transcribed per second of wall time;
- for `live`, after the table: how far behind the stream its words became final (median and 90th percentile of
  the stream's length when a word was made final, less the word's end), and whether its words are those of `vad`.
MODEL defaults to the embedded tiny Qwen-Audio-Chat (random weights: the mechanics and the speed, not the accuracy).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from transformers_qwen_audio.audio_io import QWEN_AUDIO_SAMPLING_RATE, load_audio
from transformers_qwen_audio.data.tiny_multitask import ensure_tiny_multitask
from transformers_qwen_audio.evaluation.metrics import corpus_word_error_rate

RATE = QWEN_AUDIO_SAMPLING_RATE
METHODS = ("chunk", "sequential", "vad", "live")


def build_recordings(folder: Path, count: int, minutes: float, seed: int = 0, split: str = "test"):
    """`count` recordings of about `minutes` each from `split`'s utterances: (waveform, utterances), each utterance
    `{"waveform", "text", "offset", "words": [(word, start, end)]}` with times on the recording."""
    rows = [json.loads(line) for line in (folder / "speech" / f"{split}.jsonl").read_text().splitlines()]
    rng = np.random.default_rng(seed)
    order = iter(rng.permutation(len(rows)).tolist() * 100)
    recordings = []
    for _ in range(count):
        pieces, utterances, length = [], [], 0
        while length < minutes * 60 * RATE:
            row = rows[next(order)]
            waveform = load_audio(str(folder / row["audio"]))
            pause = np.zeros(int(rng.uniform(0.3, 1.2) * RATE), np.float32)
            offset = (length + len(pause)) / RATE
            utterances.append({"waveform": waveform, "text": row["text"], "offset": offset,
                               "words": [(w["word"], offset + w["start"], offset + w["end"]) for w in row["words"]]})
            pieces += [pause, waveform]
            length += len(pause) + len(waveform)
        recordings.append((np.concatenate(pieces), utterances))
    return recordings


def normalized(text: str) -> str:
    return "".join(character for character in text.lower() if character.isalnum() or character == "'")


def edge_errors(found, expected, tolerance: float):
    """(dropped, doubled, start errors, end errors): `expected` (word, start, end) against the found word chunks."""
    timed = [chunk for chunk in found if chunk["timestamp"][0] is not None and chunk["timestamp"][1] is not None]

    def reaches(chunk, word, start, end):
        return (normalized(chunk["text"]) == normalized(word) and chunk["timestamp"][0] <= end + tolerance
                and chunk["timestamp"][1] >= start - tolerance)

    paired, dropped = set(), 0
    start_errors, end_errors = [], []
    for word, start, end in sorted(expected, key=lambda item: item[1]):
        candidates = [index for index, chunk in enumerate(timed)
                      if index not in paired and reaches(chunk, word, start, end)]
        if not candidates:
            dropped += 1
            continue
        best = min(candidates, key=lambda index: abs(timed[index]["timestamp"][0] - start))
        paired.add(best)
        start_errors.append(abs(timed[best]["timestamp"][0] - start))
        end_errors.append(abs(timed[best]["timestamp"][1] - end))
    doubled = sum(1 for index, chunk in enumerate(timed)
                  if index not in paired and any(reaches(chunk, *word) for word in expected))
    return dropped, doubled, start_errors, end_errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="checkpoint folder (default: the embedded tiny model)")
    parser.add_argument("--recordings", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96, help="per 30 s window")
    parser.add_argument("--tolerance", type=float, default=0.3, help="seconds around a word's true time")
    parser.add_argument("--language", default="en")
    parser.add_argument("--split", default="test", choices=("test", "validation"),
                        help="the held-out utterances the recordings join (choose settings on validation)")
    parser.add_argument("--window-seconds", type=float, default=None,
                        help="windows of sequential / vad / live (default: the model's declared long-form window, "
                             "else 30 s; chunk always hears 30 s)")
    parser.add_argument("--live-piece-seconds", type=float, default=0.5, help="what live gets at a time")
    args = parser.parse_args(argv)

    from transformers import pipeline

    import transformers_qwen_audio  # noqa: F401  (registers "audio-chat")

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model is None:
            from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint

            model = str(build_released_checkpoint(Path(scratch) / "tiny"))
        pipe = pipeline("audio-chat", model=model)
        folder = ensure_tiny_multitask()
        recordings = build_recordings(folder, args.recordings, args.minutes, split=args.split)
        audio_seconds = sum(len(waveform) for waveform, _ in recordings) / RATE
        call = {"task": "transcribe", "language": args.language, "return_timestamps": "word", "do_sample": False,
                "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size}
        utterances = [utterance for _, recording in recordings for utterance in recording]
        # Where each recording's utterances start in `utterances`.
        firsts = np.cumsum([0] + [len(recording) for _, recording in recordings])[:-1].tolist()
        started = time.perf_counter()
        alone = pipe([utterance["waveform"] for utterance in utterances], **call)
        alone_seconds = time.perf_counter() - started
        # The words each utterance gets heard alone, on the recording's time line: what a long-form method should find.
        heard_alone, alone_starts, alone_ends = [], [], []
        alone_doubled = 0  # words of a recording that repeat within --tolerance s count as doubled even heard alone
        for utterance, result in zip(utterances, alone):
            found = {normalized(chunk["text"]) for chunk in result["chunks"]}
            heard_alone.append([word for word in utterance["words"] if normalized(word[0]) in found])
            # The boundaries the one-by-one transcription gives, on the recording's time line: the baseline.
            shifted = [{"text": chunk["text"], "timestamp": tuple(None if time is None else time + utterance["offset"]
                                                                  for time in chunk["timestamp"])}
                       for chunk in result["chunks"]]
            _, doubled, starts, ends = edge_errors(shifted, heard_alone[-1], args.tolerance)
            alone_doubled += doubled
            alone_starts += starts
            alone_ends += ends
        references = [" ".join(result["text"] for result in alone[first: first + len(recording)])
                      for first, (_, recording) in zip(firsts, recordings)]
        truths = [" ".join(utterance["text"] for utterance in recording) for _, recording in recordings]

        print(f"model: {args.model or 'embedded tiny model (random weights)'}")
        print(f"{args.recordings} recordings of {args.split}, {audio_seconds:.0f} s of audio, "
              f"{len(utterances)} utterances ({sum(len(u['words']) for u in utterances)} words, "
              f"{sum(map(len, heard_alone))} heard alone); "
              f"one by one: WER vs text {corpus_word_error_rate(truths, references):.3f}, "
              f"{audio_seconds / alone_seconds:.1f} audio s/s, start / end error {_mean(alone_starts):.3f} / "
              f"{_mean(alone_ends):.3f} s, {alone_doubled} doubled")
        print(f"{'method':<11}{'WER vs alone':>13}{'WER vs text':>12}{'dropped':>9}{'doubled':>9}"
              f"{'start err':>10}{'end err':>9}{'audio s/s':>10}")
        by_method, lags = {}, []
        for method in METHODS:
            started = time.perf_counter()
            try:
                window = {} if method == "chunk" or args.window_seconds is None else {"window_seconds": args.window_seconds}
                if method == "live":
                    results, lags = live_results(pipe, recordings, call, args.live_piece_seconds, args.window_seconds)
                else:
                    results = pipe([waveform for waveform, _ in recordings], long_audio=method, **call, **window)
                by_method[method] = [result["text"] for result in results]
            except ImportError as error:
                print(f"{method:<11}skipped: {error}")
                continue
            seconds = time.perf_counter() - started
            hypotheses = [result["text"] for result in results]
            dropped = doubled = 0
            start_errors, end_errors = [], []
            for result, (_, recording), first in zip(results, recordings, firsts):
                expected = [word for words in heard_alone[first: first + len(recording)] for word in words]
                counts = edge_errors(result["chunks"], expected, args.tolerance)
                dropped, doubled = dropped + counts[0], doubled + counts[1]
                start_errors += counts[2]
                end_errors += counts[3]
            print(f"{method:<11}{corpus_word_error_rate(references, hypotheses):>13.3f}"
                  f"{corpus_word_error_rate(truths, hypotheses):>12.3f}{dropped:>9d}{doubled:>9d}"
                  f"{_mean(start_errors):>10.3f}{_mean(end_errors):>9.3f}{audio_seconds / seconds:>10.1f}")
        if lags:
            same = sum(live == offline for live, offline in zip(by_method["live"], by_method.get("vad", [])))
            print(f"live: words final {np.median(lags):.2f} s (median) / {np.percentile(lags, 90):.2f} s (90 %) after "
                  f"they end; {same} of {len(recordings)} recordings end with exactly the words of vad")
    return 0


def live_results(pipe, recordings, call, piece_seconds: float, window_seconds: float | None):
    """Each recording streamed through a `LiveTranscript` as the web demo and the server keep it; returns the
    results ({"text", "chunks"}) and, per final word, how far past its end the stream was when it became final."""
    from transformers_qwen_audio.long_form import LiveTranscript, words_text

    call = {**call, "long_audio": "truncate"}
    call.pop("batch_size", None)
    results, lags, piece = [], [], int(piece_seconds * RATE)
    for waveform, _ in recordings:
        live = LiveTranscript.for_model(pipe.model.generation_config)
        if window_seconds is not None:
            live = LiveTranscript(window_seconds=window_seconds, vad=live.vad)
        for first in range(0, len(waveform) + piece, piece):
            if first < len(waveform):
                live.push(waveform[first: first + piece])
            else:
                live.finish()
            while live.due():
                finals = live.settle(pipe(live.window_audio(), **call)["chunks"])
                lags += [live.seconds - word["timestamp"][1] for word in finals]
        results.append({"text": words_text(live.final), "chunks": live.final})
    return results, lags


def _mean(values) -> float:
    return float(np.mean(values)) if values else float("nan")


if __name__ == "__main__":
    sys.exit(main())
