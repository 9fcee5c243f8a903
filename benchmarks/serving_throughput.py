"""
`qwen-audio serve` under concurrent load: the dynamic batcher against one request at a time, same model, same run.

    python benchmarks/serving_throughput.py [MODEL] [--requests 16] [--max-batch-size 8] [--max-tokens 32]

MODEL defaults to the embedded tiny Qwen-Audio-Chat (`tiny_checkpoint.build_released_checkpoint`, random weights,
built in a temporary folder). Two servers run in this process on 127.0.0.1 over the same pipeline: one with
`--max-batch-size N`, one with 1. Each gets the same `--requests` greedy chat requests (a 2.5 s clip or text only,
different lengths) sent at once through the official `openai` client; the script checks that both give the same
replies, then prints the wall time of each and the throughput ratio, with the batch sizes the batcher ran.
"""

import argparse
import base64
import io
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
from openai import OpenAI
from transformers import pipeline

from transformers_qwen_audio import register_pipeline
from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint, chirp
from transformers_qwen_audio.serving.app import BackgroundServer, build_app
from transformers_qwen_audio.serving.protocol import ServerLimits


def requests(count: int) -> list[list[dict]]:
    buffer = io.BytesIO()
    soundfile.write(buffer, chirp(), 16000, format="WAV")
    audio = {"type": "input_audio", "input_audio": {"data": base64.b64encode(buffer.getvalue()).decode(),
                                                    "format": "wav"}}
    conversations = []
    for index in range(count):
        question = "What is that sound?" + " Tell me more." * (index % 4)
        content = [audio, {"type": "text", "text": question}] if index % 2 == 0 else question
        conversations.append([{"role": "user", "content": content}])
    return conversations


def run_load(pipe, max_batch_size: int, conversations, max_tokens: int) -> tuple[float, list[str], dict]:
    app = build_app(pipe, "model", ServerLimits(), max_batch_size=max_batch_size, batch_wait_s=0.01)
    server = BackgroundServer(app)
    try:
        client = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=600)

        def ask(messages):
            reply = client.chat.completions.create(model="model", messages=messages, max_tokens=max_tokens,
                                                   temperature=0)
            return reply.choices[0].message.content

        ask(conversations[0])  # warm-up
        app.state.batcher.stats.batch_sizes.clear()
        started = time.perf_counter()
        with ThreadPoolExecutor(len(conversations)) as pool:
            replies = list(pool.map(ask, conversations))
        seconds = time.perf_counter() - started
        return seconds, replies, dict(sorted(app.state.batcher.stats.batch_sizes.items()))
    finally:
        server.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="checkpoint folder (default: the embedded tiny model)")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    register_pipeline()
    with tempfile.TemporaryDirectory(prefix="qwen-audio-serving-bench-") as workdir:
        model = args.model or str(build_released_checkpoint(Path(workdir) / "tiny"))
        pipe = pipeline("audio-chat", model=model, device=args.device)
        conversations = requests(args.requests)
        alone_s, alone_replies, alone_sizes = run_load(pipe, 1, conversations, args.max_tokens)
        batched_s, batched_replies, batched_sizes = run_load(pipe, args.max_batch_size, conversations, args.max_tokens)

    same = batched_replies == alone_replies
    print(f"model: {args.model or 'embedded tiny (random weights)'}; {args.requests} concurrent requests, "
          f"{args.max_tokens} new tokens each, device {pipe.device}")
    print(f"one at a time:        {alone_s:7.2f} s  ({args.requests / alone_s:6.2f} req/s)  batch sizes {alone_sizes}")
    print(f"batched (max {args.max_batch_size:>2}):    {batched_s:7.2f} s  ({args.requests / batched_s:6.2f} req/s)  "
          f"batch sizes {batched_sizes}")
    print(f"throughput ratio batched / one at a time: {alone_s / batched_s:.2f}x; replies identical: {same}")
    return 0 if same and np.isfinite(alone_s / batched_s) else 1


if __name__ == "__main__":
    sys.exit(main())
