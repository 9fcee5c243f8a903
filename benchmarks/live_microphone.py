"""
Live transcription through a browser microphone, measured: a held-out recording of the tiny dataset (test
utterances joined by pauses) is played by Chromium's fake microphone (`--use-file-for-fake-audio-capture`) into the
web demo's Live tab; the page is read every 0.2 s until the recording has played, then Stop is pressed and the last
words settle. Printed: when the first word showed (seconds after recording started, and before the recording's end
or not), the words final at the end against the offline transcription of the same file (`long_audio="vad"`, or
`"sequential"` without silero-vad: what the live buffer is cut like; the same model) and against the reference, and
how long after Stop the text settled.

    python benchmarks/live_microphone.py MODEL [--seconds 45] [--chromium /usr/bin/chromium]

MODEL: a checkpoint that transcribes (the main job's `qwen-audio-demo/model` or `/chat`). Needs the `web` extra,
playwright and a Chromium (Debian's `chromium`).
"""

import argparse
import json
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).parent))
from long_form import RATE, build_recordings  # noqa: E402

from transformers_qwen_audio.data.tiny_multitask import ensure_tiny_multitask  # noqa: E402
from transformers_qwen_audio.evaluation.metrics import corpus_word_error_rate  # noqa: E402


def words_of(text: str) -> str:
    return " ".join("".join(c for c in word.lower() if c.isalnum() or c == "'") for word in text.split()).strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--seconds", type=float, default=45.0, help="length of the recording played")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--max-new-tokens", type=int, default=320, help="per window, as the offline transcription")
    parser.add_argument("--settle-seconds", type=float, default=60.0, help="how long to wait after Stop")
    args = parser.parse_args(argv)
    if args.chromium is None:
        parser.error("no Chromium found: --chromium PATH")

    from playwright.sync_api import sync_playwright
    from transformers import pipeline

    import transformers_qwen_audio  # noqa: F401  (registers "audio-chat")
    from transformers_qwen_audio.voice_activity import vad_available
    from transformers_qwen_audio.web_demo import build_demo, launch

    waveform, utterances = build_recordings(ensure_tiny_multitask(), 1, args.seconds / 60)[0]
    reference = " ".join(utterance["text"] for utterance in utterances)
    generate_kwargs = {"do_sample": False, "max_new_tokens": args.max_new_tokens}
    pipe = pipeline("audio-chat", model=args.model)
    offline_method = "vad" if vad_available() else "sequential"
    offline = pipe(waveform, task="transcribe", language="en", long_audio=offline_method, **generate_kwargs)["text"]

    with tempfile.TemporaryDirectory() as scratch:
        # Chromium loops the file: a second of silence at its end, and Stop once it has played.
        microphone_file = Path(scratch) / "microphone.wav"
        soundfile.write(microphone_file, np.concatenate([waveform, np.zeros(RATE, np.float32)]), RATE, subtype="PCM_16")
        demo = build_demo(pipe, generate_kwargs=generate_kwargs)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        launch(demo, port=port, prevent_thread_lock=True, quiet=True)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=[
                    "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-audio-capture={microphone_file}"])
                page = browser.new_page(permissions=["microphone"])
                page.set_default_timeout(60_000)
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_role("tab", name="Live").click()
                microphone = page.locator("#live-microphone")

                def read():
                    return (page.locator("#live-final textarea").input_value(),
                            page.locator("#live-partial textarea").input_value())

                microphone.get_by_role("button", name="Record").click()
                started, first_words_at, timeline = time.monotonic(), None, []
                while time.monotonic() - started < len(waveform) / RATE + 0.5:
                    final, partial = read()
                    if first_words_at is None and (final.strip() or partial.strip()):
                        first_words_at = time.monotonic() - started
                    timeline.append((round(time.monotonic() - started, 2), final, partial))
                    time.sleep(0.2)
                microphone.get_by_role("button", name="Stop").click()
                stopped, settled_at, last = time.monotonic(), None, read()
                while time.monotonic() - stopped < args.settle_seconds:
                    time.sleep(0.5)
                    now = read()
                    if now != last:
                        last, settled_at = now, time.monotonic() - stopped
                    elif settled_at is not None and time.monotonic() - stopped - settled_at > 5 and not now[1].strip():
                        break
                browser.close()
        finally:
            demo.close()
            demo.web_demo.close()
    live_text = " ".join(part for part in last if part.strip())
    finals_grew = all(later[1].startswith(earlier[1]) for earlier, later in zip(timeline, timeline[1:]))
    result = {
        "recording_seconds": round(len(waveform) / RATE, 2),
        "first_words_shown_after_s": None if first_words_at is None else round(first_words_at, 2),
        "first_words_before_the_end": first_words_at is not None and first_words_at < len(waveform) / RATE,
        "settled_after_stop_s": None if settled_at is None else round(settled_at, 2),
        "finals_only_grew": finals_grew,
        "offline_method": offline_method,
        "live_equals_offline": words_of(live_text) == words_of(offline),
        "wer_live_vs_offline": corpus_word_error_rate([words_of(offline)], [words_of(live_text)]),
        "wer_live_vs_reference": corpus_word_error_rate([reference], [words_of(live_text)]),
        "wer_offline_vs_reference": corpus_word_error_rate([reference], [words_of(offline)]),
        "live": live_text, "offline": offline, "reference": reference,
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
