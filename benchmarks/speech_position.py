"""
Where in the 30 s window a model reads speech: the same utterances transcribed alone, after leading silence, and
joined with short pauses, same model, same run.

    python benchmarks/speech_position.py MODEL [--split validation] [--utterances 120] [--offsets 0 3 6 10 20]
                                         [--joined 2 3 4]

A model trained only on clips of a few seconds transcribes an utterance well where its training clips had speech and
fails when the same words come later in the window (the tiny stage-1 model of the main job: WER 0.10 alone, 0.57 after
3 s of silence, 1.17 after 6 s). This prints, for each condition, the WER against the dataset's texts and against
the utterances transcribed alone, so that a change to training (`time_shift_probability`, long recordings) can be
judged on the window it has to cover. The utterances come from the tiny dataset's `--split` (`validation`, the one
to tune on); joined recordings use pauses of 0.3-1.2 s and stay within 30 s.
"""

import argparse
import json
import sys

import numpy as np

from transformers_qwen_audio.audio_io import QWEN_AUDIO_SAMPLING_RATE, load_audio
from transformers_qwen_audio.data.tiny_multitask import ensure_tiny_multitask
from transformers_qwen_audio.evaluation.metrics import corpus_word_error_rate

RATE = QWEN_AUDIO_SAMPLING_RATE
WINDOW_SECONDS = 30.0


def load_utterances(split: str, count: int, seed: int = 0) -> list[tuple[np.ndarray, str]]:
    folder = ensure_tiny_multitask()
    path = folder / "speech" / f"{split}.jsonl"
    if not path.is_file():
        raise SystemExit(f"no split {split!r} in {folder / 'speech'}")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    chosen = np.random.default_rng(seed).permutation(len(rows))[:count]
    return [(load_audio(str(folder / rows[index]["audio"])), rows[index]["text"]) for index in chosen]


def joined(utterances, size: int, seed: int = 0) -> list[tuple[np.ndarray, str]]:
    """Consecutive groups of `size` utterances, each joined with pauses, the groups that fit in one window."""
    rng = np.random.default_rng(seed)
    groups = []
    for start in range(0, len(utterances) - size + 1, size):
        pieces, texts = [], []
        for waveform, text in utterances[start: start + size]:
            pieces += [np.zeros(int(rng.uniform(0.3, 1.2) * RATE), np.float32), waveform]
            texts.append(text)
        waveform = np.concatenate(pieces)
        if len(waveform) <= WINDOW_SECONDS * RATE:
            groups.append((waveform, " ".join(texts)))
    return groups


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a trained checkpoint folder (the main job's DIR/model)")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--utterances", type=int, default=120)
    parser.add_argument("--offsets", type=float, nargs="+", default=[0, 3, 6, 10, 20], help="seconds of leading silence")
    parser.add_argument("--joined", type=int, nargs="+", default=[2, 3, 4], help="utterances per joined recording")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    if any(not 0 <= offset < WINDOW_SECONDS for offset in args.offsets):
        parser.error(f"--offsets must lie in [0, {WINDOW_SECONDS:g}) seconds")
    if any(size < 2 for size in args.joined):
        parser.error("--joined sizes must be at least 2")

    from transformers import pipeline

    import transformers_qwen_audio  # noqa: F401  (registers "audio-chat")

    pipe = pipeline("audio-chat", model=args.model)
    call = {"task": "transcribe", "language": "en", "do_sample": False, "max_new_tokens": 200,
            "batch_size": args.batch_size}

    def transcribe(waveforms):
        return [result["text"] for result in pipe(list(waveforms), **call)]

    utterances = load_utterances(args.split, args.utterances)
    texts = [text for _, text in utterances]
    alone = transcribe(waveform for waveform, _ in utterances)
    print(f"model: {args.model}; {len(utterances)} utterances of the {args.split} split")
    print(f"{'condition':<24}{'recordings':>11}{'WER vs text':>13}{'WER vs alone':>14}")
    for offset in args.offsets:
        silence = np.zeros(int(round(offset * RATE)), np.float32)
        hypotheses = alone if offset == 0 else transcribe(np.concatenate([silence, waveform])
                                                           for waveform, _ in utterances)
        print(f"{f'after {offset:g} s of silence':<24}{len(hypotheses):>11}"
              f"{corpus_word_error_rate(texts, hypotheses):>13.3f}{corpus_word_error_rate(alone, hypotheses):>14.3f}")
    for size in args.joined:
        groups = joined(utterances, size)
        alone_groups = joined([(waveform, text) for (waveform, _), text in zip(utterances, alone)], size)
        hypotheses = transcribe(waveform for waveform, _ in groups)
        print(f"{f'{size} joined':<24}{len(groups):>11}"
              f"{corpus_word_error_rate([text for _, text in groups], hypotheses):>13.3f}"
              f"{corpus_word_error_rate([text for _, text in alone_groups], hypotheses):>14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
