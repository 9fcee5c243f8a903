"""
Batched against one-by-one generation with the `audio-chat` pipeline, on the same model, in one run.

    python benchmarks/batch_generation.py [MODEL] [--batch-size 8] [--max-new-tokens 48] [--repeats 3]

MODEL defaults to the tiny real-vocabulary Qwen-Audio-Chat of the reference folder (`../shared/qwen_audio_reference`
or `$QWEN_AUDIO_REFERENCE_DIR`); the audio clips come from its `audio/` folder. 8 conversations of different lengths
(0 to 2 clips, 1 to 3 turns) are answered greedily with a fixed number of new tokens; the script asserts that the
batched replies equal the one-by-one ones and prints the throughput ratio.

The pipeline batches its inputs in the order given (transformers' Pipeline machinery streams them lazily, so it
cannot sort them by length first). The third mode, `batched_sorted`, gives the same conversations sorted by prompt
length (and puts the replies back in order): its ratio to `batched` is what sorting would gain, i.e. the padding cost
of the given order. With `--batch-size` >= the number of conversations the two are the same batch.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import torch

import transformers_qwen_audio  # noqa: F401  (registers "audio-chat")
from transformers import pipeline

REFERENCE_DIR = Path(os.environ.get("QWEN_AUDIO_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "qwen_audio_reference"))


def conversations(audio_dir: Path) -> list[list[dict]]:
    def audio(name):
        return {"type": "audio", "path": str(audio_dir / name)}

    def text(value):
        return {"type": "text", "text": value}

    speech, short, cut = "1272-128104-0000.flac", "1089_134686_000007_000004_person_name.wav", "1272-128104-0000-middle_classes.wav"
    return [
        [{"role": "user", "content": "Hello! Who are you?"}],
        [{"role": "user", "content": [audio(short), text("What is the name said?")]}],
        [{"role": "user", "content": [audio(speech), text("what does the person say?")]}],
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": [audio(cut), text("Transcribe.")]}],
        [{"role": "user", "content": [audio(short), audio(speech), text("what is the difference of the two recordings?")]}],
        [{"role": "user", "content": [audio(speech), text("what does the person say?")]},
         {"role": "assistant", "content": 'The person says: "mister quilter".'},
         {"role": "user", "content": 'Find the start time and end time of the word "middle classes"'}],
        [{"role": "user", "content": [audio("es.mp3"), text("Which language is this?")]}],
        [{"role": "user", "content": "Write a haiku about audio."},
         {"role": "assistant", "content": "Waves in the silence"},
         {"role": "user", "content": [audio("glass-breaking-151256.mp3"), text("And what is that sound?")]}],
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default=str(REFERENCE_DIR / "tiny_real_vocab_original_layout"))
    parser.add_argument("--audio-dir", default=str(REFERENCE_DIR / "audio"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each mode (best is kept)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    if not Path(args.model).exists() and args.model.startswith(("/", ".")):
        print(f"model not found: {args.model} (pass a checkpoint path)", file=sys.stderr)
        return 2

    pipe = pipeline("audio-chat", model=args.model, device=args.device)
    chats = conversations(Path(args.audio_dir))
    generation = {"max_new_tokens": args.max_new_tokens, "min_new_tokens": args.max_new_tokens, "do_sample": False}

    def one_by_one():
        return [pipe(chat, return_full_text=False, **generation)[0]["generated_text"] for chat in chats]

    def batched():
        return [r[0]["generated_text"] for r in pipe(chats, batch_size=args.batch_size, return_full_text=False, **generation)]

    lengths = [
        pipe.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        for chat in chats
    ]
    order = sorted(range(len(chats)), key=lambda index: len(lengths[index][0]))

    def batched_sorted():
        results = pipe([chats[index] for index in order], batch_size=args.batch_size, return_full_text=False, **generation)
        replies = [None] * len(chats)
        for index, result in zip(order, results):
            replies[index] = result[0]["generated_text"]
        return replies

    one_by_one(), batched()  # warm-up (allocator, tokenizer caches)
    timings = {}
    for name, run in (("one_by_one", one_by_one), ("batched", batched), ("batched_sorted", batched_sorted)):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            replies = run()
            best = min(best, time.perf_counter() - start)
        timings[name] = (best, replies)

    assert timings["batched"][1] == timings["one_by_one"][1], "batched replies differ from one-by-one replies"
    assert timings["batched_sorted"][1] == timings["one_by_one"][1], "sorted batches give other replies"
    tokens = len(chats) * args.max_new_tokens
    for name, (seconds, _) in timings.items():
        print(f"{name:>14}: {seconds:.3f} s for {len(chats)} conversations, {tokens / seconds:.1f} new tokens/s")
    ratio = timings["one_by_one"][0] / timings["batched"][0]
    print(f"device={pipe.device} dtype={pipe.model.dtype} threads={torch.get_num_threads()} batch_size={args.batch_size}")
    print(f"outputs identical: yes; throughput ratio batched / one-by-one: {ratio:.2f}x")
    sorting_gain = timings["batched"][0] / timings["batched_sorted"][0]
    print(f"length-sorted input / given order (what sorting inside the pipeline would gain): {sorting_gain:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
