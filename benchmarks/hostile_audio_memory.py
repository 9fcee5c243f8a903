"""
Peak memory of decoding small hostile audio files, before and after bounded decoding, measured in the same run.

    python benchmarks/hostile_audio_memory.py [--max-seconds 30] [--skip-before]

Each file of `tests/hostile_audio.py` (a 50 KB WAV whose header says 1 Hz, 8 h and 3 h of real encoded silence as
FLAC, a FLAC header claiming 8 h, a WAV header claiming 2^31 Hz, a 256-channel WAV) is decoded in a fresh process,
whose resident-memory high-water mark (VmHWM, /proc) is read before and after the call:

- before: what the server did until bounded decoding (soundfile reads the whole file, channels averaged, soxr
  resamples to 16 kHz, and only then is the length compared with the limit);
- after: `audio_io.load_audio(data, max_seconds=...)`, as the server and the web demo call it now (header checked
  before a sample is decoded).

`--skip-before` leaves out the old path (it peaks at about 2.3 GB on the 8 h FLAC).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hostile_audio import hostile_files  # noqa: E402


MEASURE = r"""
import io, json, sys, time
import numpy as np
import soundfile, soxr
from transformers_qwen_audio.audio_io import load_audio

def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

def before(data, max_seconds):
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    samples = soxr.resample(samples, rate, 16000, quality="VHQ")
    if len(samples) / 16000 > max_seconds:
        raise ValueError("too long")

def after(data, max_seconds):
    load_audio(data, max_seconds=max_seconds)

path, way, max_seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
data = open(path, "rb").read()
start_mb, started = peak_mb(), time.perf_counter()
try:
    (before if way == "before" else after)(data, max_seconds)
    outcome = "decoded"
except Exception as error:
    outcome = type(error).__name__
print(json.dumps({"extra_mb": peak_mb() - start_mb, "seconds": time.perf_counter() - started, "outcome": outcome}))
"""


def measure(path: Path, way: str, max_seconds: float) -> dict:
    result = subprocess.run([sys.executable, "-c", MEASURE, str(path), way, str(max_seconds)], capture_output=True,
                            text=True, timeout=600)
    if result.returncode != 0:
        return {"extra_mb": float("nan"), "seconds": float("nan"), "outcome": f"crashed ({result.returncode})"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-seconds", type=float, default=30.0, help="the limit passed (the server's default)")
    parser.add_argument("--skip-before", action="store_true", help="measure only the bounded decoding")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    files = hostile_files()
    print(f"built {len(files)} files in {time.perf_counter() - started:.1f} s; limit {args.max_seconds:g} s")
    print(f"{'file':48} {'size':>9} {'before: peak MB, s':>22} {'after: peak MB, s':>22} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            path = Path(folder) / "clip"
            path.write_bytes(data)
            after = measure(path, "after", args.max_seconds)
            old = None if args.skip_before else measure(path, "before", args.max_seconds)
            before_text = "-" if old is None else f"{old['extra_mb']:8.0f} {old['seconds']:6.2f} ({old['outcome']})"
            ratio = "-" if old is None else f"{old['extra_mb'] / max(after['extra_mb'], 1):6.0f}x"
            print(f"{name:48} {len(data) / 1024:7.0f}KB {before_text:>22} "
                  f"{after['extra_mb']:8.0f} {after['seconds']:6.2f} ({after['outcome']}) {ratio:>7}")


if __name__ == "__main__":
    main()
