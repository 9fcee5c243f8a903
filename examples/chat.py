"""
Multi-turn chat about audio clips with Qwen-Audio-Chat, through the `audio-chat` pipeline.

    python examples/chat.py [MODEL] [AUDIO]

MODEL: a checkpoint folder (native or released layout) or a Hub repo id; defaults to the tiny real-vocabulary
checkpoint of the reference folder when present (its weights are random: the replies are gibberish, the mechanics
are real), else Qwen/Qwen-Audio-Chat. AUDIO defaults to a LibriSpeech clip of the reference folder.
"""

import os
import sys
from pathlib import Path

import transformers_qwen_audio  # noqa: F401  (registers "audio-chat")
from transformers import pipeline

REFERENCE_DIR = Path(os.environ.get("QWEN_AUDIO_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "qwen_audio_reference"))
TINY = REFERENCE_DIR / "tiny_real_vocab_original_layout"


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else (str(TINY) if TINY.is_dir() else "Qwen/Qwen-Audio-Chat")
    audio = sys.argv[2] if len(sys.argv) > 2 else str(REFERENCE_DIR / "audio" / "1272-128104-0000.flac")
    pipe = pipeline("audio-chat", model=model)

    messages = [{"role": "user", "content": [{"type": "audio", "path": audio}, {"type": "text", "text": "What does the person say?"}]}]
    # The result holds the whole conversation with the new assistant turn: continue from it.
    messages = pipe(messages, max_new_tokens=64)[0]["generated_text"]
    print("assistant:", messages[-1]["content"])

    messages.append({"role": "user", "content": "Is the speaker a man or a woman?"})
    print("assistant: ", end="", flush=True)
    for piece in pipe.stream(messages, max_new_tokens=64):  # tokens as they come
        print(piece, end="", flush=True)
    print()


if __name__ == "__main__":
    main()
