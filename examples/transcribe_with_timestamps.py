"""
Transcription with word timestamps, written as SRT subtitles; recordings over 30 s are transcribed window by window.

    python examples/transcribe_with_timestamps.py [MODEL] [AUDIO] [--language en] [--srt OUT.srt]

MODEL defaults to the tiny real-vocabulary checkpoint of the reference folder when present, else Qwen/Qwen-Audio
(the base model, which was trained on the timestamped transcription task). For a chat checkpoint the pipeline asks
in words; pass `chat_format="raw"` to force the base model's task tags.
"""

import argparse
import os
from pathlib import Path

import transformers_qwen_audio  # noqa: F401
from transformers import pipeline
from transformers_qwen_audio import subtitles

REFERENCE_DIR = Path(os.environ.get("QWEN_AUDIO_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "qwen_audio_reference"))
TINY = REFERENCE_DIR / "tiny_real_vocab_original_layout"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default=str(TINY) if TINY.is_dir() else "Qwen/Qwen-Audio")
    parser.add_argument("audio", nargs="?", default=str(REFERENCE_DIR / "audio" / "1272-128104-0000.flac"))
    parser.add_argument("--language", default="en")
    parser.add_argument("--srt", help="write SRT subtitles here")
    args = parser.parse_args()

    pipe = pipeline("audio-chat", model=args.model)
    result = pipe(args.audio, task="transcribe", language=args.language, return_timestamps="word",
                  long_audio="chunk", chat_format="raw", max_new_tokens=256)
    print(result["text"])
    for chunk in result["chunks"]:
        print(f"{chunk['timestamp']}: {chunk['text']}")
    if args.srt:
        print("wrote", subtitles.write(result, args.srt))


if __name__ == "__main__":
    main()
