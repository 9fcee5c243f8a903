# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
A benchmark's predictions as a jsonl file written while it runs, so that a stopped run keeps what it scored and a
rerun resumes from it.

The first line names what the predictions depend on: `{"model": ..., "benchmark": ...}` (a fingerprint of the
checkpoint and one of the benchmark spec). Then one line per row, appended as each batch finishes, in one write:
`{"row": 3, "source": ..., "reference": ..., "prediction": ...}`, or `{"row": 3, "source": ..., "error": ...}` for a
clip that could not be decoded. A line cut short by a crash is ignored when the file is read back. Under `accelerate
launch`, process k > 0 appends to `NAME.partK.jsonl`; the main process merges them into `NAME.jsonl` (in row order)
when the benchmark is done.
"""

import json
import os
from pathlib import Path

from .results import atomic_write_text


class PredictionsFile:
    def __init__(self, path: str | os.PathLike, header: dict, rank: int = 0):
        self.path = Path(path)
        self.header = header
        self.own = self.path if rank == 0 else self.path.with_name(f"{self.path.stem}.part{rank}.jsonl")

    def _files(self) -> list[Path]:
        return [self.path, *sorted(self.path.parent.glob(f"{self.path.stem}.part*.jsonl"))]

    def _read(self, path: Path) -> list[dict] | None:
        """The row lines of `path`, or None when it is absent or its header is not ours."""
        if not path.is_file():
            return None
        lines = []
        with path.open(encoding="utf-8") as stream:
            for number, text in enumerate(stream):
                try:
                    line = json.loads(text)
                except json.JSONDecodeError:
                    continue  # cut short by a crash: the row is predicted again
                if number == 0:
                    if line != self.header:
                        return None
                elif isinstance(line, dict) and isinstance(line.get("row"), int):
                    lines.append(line)
        return lines

    def done(self) -> tuple[dict[int, dict], bool]:
        """The lines already written for this model and spec, by row, and whether a file of another model or spec
        was found (it is started over)."""
        done, stale = {}, False
        for path in self._files():
            lines = self._read(path)
            if lines is None:
                stale = stale or path.is_file()
                continue
            done.update((line["row"], line) for line in lines)
        return done, stale

    def open(self) -> None:
        """Starts this process's file over unless it holds our header (then lines are appended to it)."""
        if self._read(self.own) is None:
            self.own.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.own, json.dumps(self.header) + "\n")

    def append(self, lines: list[dict]) -> None:
        with self.own.open("a", encoding="utf-8") as stream:
            for line in lines:
                stream.write(json.dumps(line, ensure_ascii=False) + "\n")  # one write per line
            stream.flush()
            os.fsync(stream.fileno())

    def merge(self, lines: list[dict]) -> None:
        """The main process, when the benchmark is done: every line in row order in NAME.jsonl, no part files."""
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in [self.header, *lines])
        atomic_write_text(self.path, text)
        for path in self._files()[1:]:
            path.unlink(missing_ok=True)
