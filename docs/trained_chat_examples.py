"""
How the README's server reply and web screenshot of the trained tiny chat model were made: after the main job
(`python -m transformers_qwen_audio.demo`), this serves `qwen-audio-demo/chat` with `qwen-audio serve` and
`qwen-audio web`, sends the server one conversation with two held-out clips of the tiny dataset, and drives the web
page in Chromium (Debian's `chromium`, through Playwright) with the same clips, saving `docs/web_demo_trained_chat.png`.

    python docs/trained_chat_examples.py [--chat-dir qwen-audio-demo/chat] [--chromium /usr/bin/chromium]
"""

import argparse
import base64
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from transformers_qwen_audio.data import ensure_tiny_multitask


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: str, model: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "transformers_qwen_audio.cli", command, str(model),
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except urllib.error.HTTPError:
            return process  # listening (the root may be a 404)
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"qwen-audio {command} did not start on port {port}")


def held_out_clips() -> tuple[Path, Path, dict]:
    folder = ensure_tiny_multitask()
    speech = json.loads((folder / "speech" / "test.jsonl").read_text().splitlines()[1])
    sound = next(json.loads(line) for line in (folder / "sounds" / "test.jsonl").read_text().splitlines()
                 if json.loads(line)["label"] == "chirp")
    return folder / speech["audio"], folder / sound["audio"], {"speech": speech["text"], "sound": sound["label"]}


def audio_part(path: Path) -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(path.read_bytes()).decode(),
                                                   "format": path.suffix.lstrip(".")}}


def server_example(chat_dir: Path, speech: Path, sound: Path) -> list[dict]:
    port = free_port()
    process = start("serve", chat_dir, port)
    try:
        served = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30).read())
        model_name = served["data"][0]["id"]
        messages, exchanges = [], []
        for content in ([audio_part(speech), audio_part(sound), {"type": "text", "text": "Which clip is speech?"}],
                        [{"type": "text", "text": "What does the person say?"}]):
            messages.append({"role": "user", "content": content})
            body = json.dumps({"model": model_name, "max_tokens": 64, "temperature": 0, "messages": messages})
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body.encode(),
                                             headers={"Content-Type": "application/json"})
            reply = json.loads(urllib.request.urlopen(request, timeout=120).read())
            messages.append(reply["choices"][0]["message"])
            exchanges.append({"asked": content[-1]["text"], "reply": reply["choices"][0]["message"]["content"],
                              "usage": reply["usage"]})
        return exchanges
    finally:
        process.terminate()
        process.wait(30)


def web_example(chat_dir: Path, speech: Path, sound: Path, chromium: str, screenshot: Path) -> list[str]:
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    process = start("web", chat_dir, port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(120_000)
            expect.set_options(timeout=120_000)
            page.goto(f"http://127.0.0.1:{port}/")
            box = page.locator("#chat-box textarea")
            bot = page.locator("#conversation [data-testid=bot]")
            page.locator("#chat-box input[type=file]").set_input_files([str(speech), str(sound)])
            expect(page.locator("#chat-box [aria-label='File thumbnail']")).to_have_count(2)
            for turn, question in enumerate(("Which clip is speech?", "What does the person say?",
                                             "Back to the second clip: what sound is this?"), start=1):
                box.fill(question)
                box.press("Enter")
                expect(bot).to_have_count(turn)
                expect(box).to_be_editable()
            # The conversation scrolls inside its box: from the top, the clips and the first question show.
            page.locator("#conversation").evaluate(
                "box => box.querySelectorAll('*').forEach(element => { element.scrollTop = 0; })")
            page.screenshot(path=str(screenshot), full_page=True)
            Image.open(screenshot).convert("RGB").quantize(colors=256).save(screenshot, optimize=True)
            replies = [bot.nth(index).inner_text().strip() for index in range(3)]
            browser.close()
        return replies
    finally:
        process.terminate()
        process.wait(30)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chat-dir", type=Path, default=Path("qwen-audio-demo/chat"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--screenshot", type=Path, default=Path(__file__).parent / "web_demo_trained_chat.png")
    args = parser.parse_args(argv)
    if not (args.chat_dir / "config.json").is_file():
        parser.error(f"{args.chat_dir} holds no model: run the main job first (python -m transformers_qwen_audio.demo).")
    speech, sound, references = held_out_clips()
    print(json.dumps({"clips": {"speech": speech.name, "sound": sound.name}, "references": references}))
    print(json.dumps({"server": server_example(args.chat_dir, speech, sound)}, indent=1))
    if args.chromium:
        print(json.dumps({"web": web_example(args.chat_dir, speech, sound, args.chromium, args.screenshot)}, indent=1))
    else:
        print("no Chromium found (--chromium PATH): no screenshot")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
