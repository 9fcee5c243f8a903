"""Running `qwen-audio` as a user does: a separate process, its exit status, its stdout and stderr."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args, module="transformers_qwen_audio.cli", env=None, input=None, timeout=600):
    environment = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          env=environment, input=input, timeout=timeout)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if ": error: " in line or line.startswith("error: ")]


def assert_one_line_error(result, *fragments, status=2) -> str:
    """Exit `status`, no traceback, exactly one error line, holding every fragment. Returns that line."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.returncode == status, result.stderr[-3000:]
    return lines[0]


def folder_digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its SHA-256: equal digests mean an untouched folder."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(Path(folder).rglob("*")) if path.is_file()}
