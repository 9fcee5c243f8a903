"""
Many conversations at once: the pipeline left-pads them into batches, and each reply is exactly what the
conversation gives alone.

    python examples/batch_chat.py [MODEL] [--batch-size 4]

MODEL defaults to the tiny real-vocabulary checkpoint of the reference folder when present, else
Qwen/Qwen-Audio-Chat. The clips come from the reference folder's `audio/`.
"""

import argparse
import os
from pathlib import Path

import transformers_qwen_audio  # noqa: F401
from transformers import pipeline

REFERENCE_DIR = Path(os.environ.get("QWEN_AUDIO_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "qwen_audio_reference"))
TINY = REFERENCE_DIR / "tiny_real_vocab_original_layout"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default=str(TINY) if TINY.is_dir() else "Qwen/Qwen-Audio-Chat")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    audio = REFERENCE_DIR / "audio"

    questions = [
        ("1272-128104-0000.flac", "What does the person say?"),
        ("glass-breaking-151256.mp3", "What is that sound?"),
        ("es.mp3", "Which language is spoken?"),
        ("zh_are_you_ok_relaxed.wav", "What is the speaker's mood?"),
    ]
    conversations = [
        [{"role": "user", "content": [{"type": "audio", "path": str(audio / name)}, {"type": "text", "text": question}]}]
        for name, question in questions
    ]
    pipe_results = pipeline("audio-chat", model=args.model)(
        conversations, batch_size=args.batch_size, max_new_tokens=48, do_sample=False, return_full_text=False
    )
    for (name, question), result in zip(questions, pipe_results):
        print(f"{name} | {question}\n  -> {result[0]['generated_text']}")



if __name__ == "__main__":
    main()
