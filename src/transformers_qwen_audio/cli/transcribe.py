# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
`qwen-audio transcribe MODEL AUDIO... --language en [--timestamps] [--output srt|vtt|json|txt] [--output-dir DIR]
[--long-audio chunk|sequential|vad] [--window-seconds S]`: speech to text (or translation), optionally with word
timestamps, as text, subtitles or JSON. Recordings over 30 s are heard as back-to-back windows (`chunk`, the
fastest), as windows that start after the last whole word (`sequential`) or as windows cut in pauses (`vad`), with a
progress bar in audio seconds. It goes on past files that fail (one line each) and exits with status 1 when some
failed, 2 when all did.
"""

import argparse
import os
import sys
import tempfile

from ..feature_extraction_qwen_audio import MAX_AUDIO_SECONDS
from ..long_form import LONG_FORM_METHODS, check_window_seconds, default_long_audio

from .common import (
    EXIT_OK,
    EXIT_SOME_INPUTS_FAILED,
    EXIT_USAGE_ERROR,
    CliError,
    add_generation_arguments,
    check_audio_files,
    check_model,
    decode_clip,
    generation_kwargs,
    load_pipeline,
    one_line,
)


def add_parser(subcommands) -> argparse.ArgumentParser:
    # "resolve": --long-audio below replaces the shared one, which chat also has (without the long-form methods).
    transcribe = subcommands.add_parser("transcribe", help="speech to text, optionally with word timestamps",
                                        conflict_handler="resolve")
    add_generation_arguments(transcribe)
    transcribe.add_argument("--long-audio", choices=("truncate", "chunk") + LONG_FORM_METHODS, default=None,
                            help="recordings over 30 s: the first 30 s (truncate), back-to-back 30 s windows (chunk, "
                                 "the fastest), windows that start after the last whole word (sequential) or end "
                                 "in pauses (vad, needs the vad extra); default: vad (else sequential) for a "
                                 "checkpoint that declares a long_form_window_seconds, else truncate")
    transcribe.add_argument("--window-seconds", type=float, default=None,
                            help="windows of --long-audio sequential / vad (default: the checkpoint's "
                                 "long_form_window_seconds, else 30 s); shorter for a model trained on short clips")
    transcribe.add_argument("audio", nargs="+", help="audio files")
    transcribe.add_argument("--language", "-l", default="en", help="spoken language: en, zh, de, es, ko, fr, ja, it")
    transcribe.add_argument("--task", default="transcribe", choices=("transcribe", "translate"))
    transcribe.add_argument("--output-language", help="language of a translation")
    transcribe.add_argument("--timestamps", action="store_true", help="word-level timestamps")
    transcribe.add_argument("--output", "-o", choices=("txt", "srt", "vtt", "json"), default="txt",
                            help="output format (srt/vtt imply --timestamps)")
    transcribe.add_argument("--output-dir", help="write one file per input here (NAME.FORMAT; NAME.EXT.FORMAT when "
                                                 "inputs share a name) instead of printing")
    transcribe.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    transcribe.add_argument("--batch-size", type=int, default=1, help="files transcribed together")
    transcribe.add_argument("--chat-format", choices=("chatml", "raw"),
                            help="force a chat (chatml) or base (raw) prompt; default: from the checkpoint")
    transcribe.add_argument("--no-progress", action="store_true", help="no progress bar")
    transcribe.set_defaults(run=run_transcribe)
    return transcribe


def output_paths(inputs: list[str], output_dir: str, output_format: str, overwrite: bool) -> list[str]:
    """One output file per input: NAME.FORMAT, or NAME.EXT.FORMAT for inputs whose NAME.FORMAT would be shared (names
    compared case-insensitively, as many file systems do). Refuses inputs that would still share a file, and
    existing files unless `overwrite`."""
    def short(path):
        return os.path.splitext(os.path.basename(path.rstrip("/")))[0] + f".{output_format}"

    def long(path):
        return os.path.basename(path.rstrip("/")) + f".{output_format}"

    shared = _collisions([short(path) for path in inputs])
    names = [long(path) if short(path).casefold() in shared else short(path) for path in inputs]
    still_shared = _collisions(names)
    if still_shared:
        clashing = [path for path, name in zip(inputs, names) if name.casefold() in still_shared]
        raise CliError(f"inputs {', '.join(clashing[:4])} would write the same file in {output_dir}: "
                       "transcribe them into different --output-dir folders")
    targets = [os.path.join(output_dir, name) for name in names]
    existing = [target for target in targets if os.path.exists(target)]
    if existing and not overwrite:
        raise CliError(f"{existing[0]} exists{f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''}: "
                       "pass --overwrite to replace")
    return targets


def _collisions(names: list[str]) -> set[str]:
    seen, shared = set(), set()
    for name in names:
        key = name.casefold()
        (shared if key in seen else seen).add(key)
    return shared


def write_atomically(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def run_transcribe(args, out=None) -> int:
    from tqdm.auto import tqdm

    from .. import subtitles

    out = out or sys.stdout
    if args.batch_size < 1:
        raise CliError("--batch-size must be at least 1")
    if args.window_seconds is not None:
        if args.long_audio not in LONG_FORM_METHODS:
            raise CliError("--window-seconds sets the windows of --long-audio sequential or vad")
        try:
            check_window_seconds(args.window_seconds, "--window-seconds")
        except ValueError as error:
            raise CliError(str(error)) from None
    check_model(args.model)
    timestamps = args.timestamps or args.output in ("srt", "vtt")
    _check_task_options(args.task, args.language, args.output_language, timestamps)
    failures = {}

    def fail(path, message):
        failures[path] = message
        # tqdm.write keeps the line apart from the progress bar.
        tqdm.write(f"qwen-audio transcribe: error: {message if path in message else f'{path}: {message}'}",
                   file=sys.stderr)

    pending = []
    for path in args.audio:
        try:
            check_audio_files([path])
            pending.append(path)
        except CliError as error:
            fail(path, str(error))
    targets = {}
    if args.output_dir:
        try:
            os.makedirs(args.output_dir, exist_ok=True)
        except OSError as error:
            raise CliError(f"cannot create --output-dir {args.output_dir}: {error.strerror}") from None
        targets = dict(zip(args.audio, output_paths(args.audio, args.output_dir, args.output, args.overwrite)))
    if not pending:
        return EXIT_USAGE_ERROR

    pipe = load_pipeline(args.model, device=args.device, dtype=args.dtype)
    if args.long_audio is None:  # a model trained on short clips declares its window: cut at pauses into it
        args.long_audio = default_long_audio(pipe.model.generation_config, otherwise=None)
    call_kwargs = {"task": args.task, "language": args.language, **generation_kwargs(args)}
    if args.output_language:
        call_kwargs["output_language"] = args.output_language
    if timestamps:
        call_kwargs["return_timestamps"] = "word"
    if args.chat_format:
        call_kwargs["chat_format"] = args.chat_format
    if args.window_seconds is not None:
        call_kwargs["window_seconds"] = args.window_seconds

    show_progress = not args.no_progress and len(args.audio) > 1
    progress = tqdm(total=len(pending), desc="transcribing", unit="file", disable=not show_progress, file=sys.stderr)
    for start in range(0, len(pending), args.batch_size):
        batch = {}
        for path in pending[start : start + args.batch_size]:
            try:
                batch[path] = decode_clip(path, args.allow_urls)
            except CliError as error:
                fail(path, str(error))
        with _SecondsProgress(batch, args, call_kwargs) as batch_kwargs:
            transcribed = list(_transcribe_batch(pipe, batch, args.batch_size, batch_kwargs, fail))
        for path, result in transcribed:
            rendered = subtitles.render(result, args.output)
            if args.output_dir:
                try:
                    write_atomically(targets[path], rendered)
                except OSError as error:
                    fail(path, f"cannot write {targets[path]}: {error.strerror or error}")
                    continue
                progress.write(targets[path], file=out)
            else:
                if len(args.audio) > 1:
                    print(f"==> {path} <==", file=out)
                print(rendered.rstrip("\n"), file=out)
        progress.update(len(pending[start : start + args.batch_size]))
    progress.close()
    if failures:
        print(f"qwen-audio transcribe: {len(failures)} of {len(args.audio)} files failed", file=sys.stderr)
        return EXIT_USAGE_ERROR if len(failures) == len(args.audio) else EXIT_SOME_INPUTS_FAILED
    return EXIT_OK


class _SecondsProgress:
    """A progress bar in audio seconds for a batch (`decode_clip` dicts) holding a recording longer than one window:
    the long-form methods report each settled window (`progress_callback`), `chunk` and `truncate` the whole batch
    once it is done. Entered, it gives the batch's pipeline keywords."""

    def __init__(self, clips: dict, args, call_kwargs: dict):
        from tqdm.auto import tqdm

        seconds = [len(clip["array"]) / clip["sampling_rate"] for clip in clips.values()]
        self.long_form = args.long_audio in LONG_FORM_METHODS
        self.call_kwargs = call_kwargs
        self.bar = tqdm(total=round(sum(seconds), 1), desc=f"transcribing {len(clips)} file(s)", unit="s",
                        file=sys.stderr, disable=args.no_progress or not any(s > MAX_AUDIO_SECONDS for s in seconds),
                        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]")

    def __enter__(self) -> dict:
        if self.long_form:
            return {**self.call_kwargs, "progress_callback": self.bar.update}
        return self.call_kwargs

    def __exit__(self, *exc_info):
        if not self.long_form:
            self.bar.update(self.bar.total)
        self.bar.close()


def _check_task_options(task, language, output_language, timestamps) -> None:
    """Options wrong for every file (an unknown language, ...) stop the run before the model loads."""
    from ..task_prompts import build_task_prompt

    try:
        build_task_prompt(task, audio_language=language, output_language=output_language, timestamps=timestamps)
    except (ValueError, TypeError) as error:
        raise CliError(one_line(error)) from None


def _transcribe_batch(pipe, clips: dict, batch_size: int, call_kwargs: dict, fail):
    """(path, result) for each clip that transcribes; a batch that fails is retried file by file, so that one bad
    input fails alone and is named."""
    if not clips:
        return
    try:
        results = pipe(list(clips.values()), batch_size=batch_size, **call_kwargs)
        yield from zip(clips, results)
        return
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        if len(clips) == 1:
            fail(next(iter(clips)), one_line(error))
            return
    for path, clip in clips.items():
        try:
            result = pipe(clip, **call_kwargs)
        except (OSError, ValueError, TypeError, RuntimeError) as error:
            fail(path, one_line(error))
            continue
        yield path, result
