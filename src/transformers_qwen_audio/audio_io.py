# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Audio decoding for Qwen-Audio: whatever a user passes (array, tensor, list, `datasets` dict, path, bytes, URL) becomes
a mono float32 waveform at 16 kHz.

Files are decoded with `soundfile` (libsndfile: WAV, FLAC, OGG, MP3) and resampled with `soxr`. transformers'
`audio_utils.load_audio` needs torchcodec/ffmpeg or librosa, which this package does not depend on, and does not
validate its input; hence this module.

The package's one download policy lives here, and every part of it (processor, pipeline, CLI, server, collator)
decodes through `load_audio`: an http(s) URL is fetched only when the caller opts in (`allow_urls=True`, the CLI's
`--allow-urls`), streamed with a connect/read timeout and an overall deadline (`URL_TIMEOUT_SECONDS`), and abandoned
as soon as it exceeds `URL_MAX_BYTES`. Only regular files are opened: a FIFO, a device or a socket given as a path
is refused before it is opened (reading one could block forever or never end). A WAV whose header announces more
audio than the file holds (a truncated download or copy) is decoded with a warning.

The work is bounded before a sample is decoded, so a small hostile file cannot cost gigabytes: the duration is read
from the container's header (`soundfile.info`) and checked against the caller's `max_seconds` (by default
`DEFAULT_MAX_SECONDS`), rates below `MIN_SAMPLING_RATE` are refused (a 50 KB WAV whose header says 1 Hz would
otherwise resample to 14 hours of 16 kHz audio), channels are averaged block by block as they are read, and the
decoded length is checked again while reading in case the header lied. What libsndfile cannot read (M4A, WebM, MP4,
AAC, ...) is decoded by ffmpeg when one is available (the `imageio-ffmpeg` wheel of the `web`/`serve` extras, or
`ffmpeg` on the PATH), asked for at most `max_seconds` plus a little, at 16 kHz mono: a bounded probe.
"""

import io
import numbers
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np


QWEN_AUDIO_SAMPLING_RATE = 16000
# "VHQ" is soxr's best setting; the cost is negligible next to the log-mel and the encoder.
RESAMPLING_QUALITY = "VHQ"
AUDIO_FILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf")
# Beyond this many channels a 2-D array is far more likely a batch or a mistake than a multichannel recording.
MAX_CHANNELS = 16
URL_TIMEOUT_SECONDS = 60
# Largest download accepted with `allow_urls=True`: ~10 minutes of 44.1 kHz 16-bit stereo WAV, far more as FLAC/MP3.
URL_MAX_BYTES = 100 * 1024 * 1024
# libsndfile's log line for a WAV data chunk longer than the file: "data : 64000 (should be 21304)".
TRUNCATED_CHUNK_LOG = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Telephone audio is 8 kHz; below 4 kHz nothing of speech is left, and a tiny rate in a header is how a small file
# claims hours of audio.
MIN_SAMPLING_RATE = 4000
# Above the highest studio rates: a larger header value is a forgery, and it would multiply the decoded size.
MAX_SAMPLING_RATE = 384000
# What `load_audio` decodes when the caller sets no limit: 4 h of 16 kHz float32 is 0.9 GB. Callers that serve
# untrusted input pass their own, much smaller `max_seconds`; `float("inf")` lifts it.
DEFAULT_MAX_SECONDS = 4 * 3600
# Frames read (and averaged to mono) at a time, so a many-channel file never sits in memory whole.
DECODE_BLOCK_FRAMES = 1 << 16
# ffmpeg is asked for this much more than the limit, so "longer than the limit" can be told from "exactly the limit".
FFMPEG_PROBE_MARGIN_SECONDS = 1.0
FFMPEG_TIMEOUT_SECONDS = 120
# Containers libsndfile cannot read but ffmpeg can, by their first bytes: they need a decoder, they are not "not audio".
FFMPEG_ONLY_CONTAINERS = (
    (4, b"ftyp", "MP4/M4A"),
    (0, b"\x1a\x45\xdf\xa3", "WebM/Matroska"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "ASF/WMA"),
    (0, b"#!AMR", "AMR"),
    (0, b"\xff\xf1", "AAC"),
    (0, b"\xff\xf9", "AAC"),
)


class AudioTooLongError(ValueError):
    """The audio lasts longer than the caller's limit; raised before its samples are decoded."""

    def __init__(self, source: str, seconds: float, max_seconds: float):
        self.seconds, self.max_seconds = seconds, max_seconds
        super().__init__(f"Audio {source} lasts {seconds:.1f} s, over the limit of {max_seconds:g} s.")


class NotAudioError(ValueError):
    """The input is not audio any available decoder can read."""


class DecoderMissingError(ValueError):
    """The input looks like audio in a container that only ffmpeg decodes, and no ffmpeg is available."""



def is_single_clip(audio) -> bool:
    """One clip (a path, bytes, an array or tensor, a `datasets` audio dict, a list of samples or of channels)
    rather than a list of clips. Shared by the processor, the pipeline and the training collator."""
    if isinstance(audio, (str, bytes, bytearray, memoryview, os.PathLike, Mapping, np.ndarray)):
        return True
    if hasattr(audio, "dim") and hasattr(audio, "shape"):  # torch.Tensor, without importing torch here
        return True
    if isinstance(audio, Sequence) and len(audio) > 0:
        # A list of numbers (or of lists of numbers: channels) is one waveform.
        first = audio[0]
        if isinstance(first, Sequence) and not isinstance(first, (str, bytes)) and len(first) > 0:
            first = first[0]
        return isinstance(first, numbers.Number)
    return False

def validate_sampling_rate(sampling_rate) -> float:
    """Returns `sampling_rate` as a float, or raises if it is not a positive finite number."""
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, numbers.Real):
        raise TypeError(f"`sampling_rate` must be a number of samples per second, got {sampling_rate!r}.")
    if not np.isfinite(sampling_rate) or sampling_rate <= 0:
        raise ValueError(f"`sampling_rate` must be a positive finite number, got {sampling_rate!r}.")
    return float(sampling_rate)


def _to_mono_float32(waveform: np.ndarray, source: str) -> np.ndarray:
    """Validates a decoded or user-given waveform and averages its channels."""
    if waveform.dtype == object:
        raise TypeError(f"Audio {source} has dtype object; pass a numeric array of samples.")
    if np.iscomplexobj(waveform):
        raise TypeError(f"Audio {source} is complex-valued; pass real-valued samples.")
    if waveform.dtype.kind == "b" or waveform.dtype.kind not in "iuf":
        raise TypeError(f"Audio {source} has non-numeric dtype {waveform.dtype}; pass real-valued samples.")
    if waveform.ndim == 0 or waveform.ndim > 2:
        raise ValueError(
            f"Audio {source} must be 1-D (samples) or 2-D (channels x samples or samples x channels), "
            f"got shape {tuple(waveform.shape)}."
        )
    if waveform.size == 0:
        raise ValueError(f"Audio {source} is empty (shape {tuple(waveform.shape)}).")
    if waveform.dtype.kind in "iu":
        # Integer PCM: scale to [-1, 1] like every decoder does.
        info = np.iinfo(waveform.dtype)
        offset = (int(info.max) + 1) / 2 if waveform.dtype.kind == "u" else 0.0
        scale = (int(info.max) + 1) / 2 if waveform.dtype.kind == "u" else float(-int(info.min))
        waveform = (waveform.astype(np.float64) - offset) / scale
    if not np.all(np.isfinite(waveform)):
        raise ValueError(f"Audio {source} contains NaN or infinite samples.")
    if waveform.ndim == 2:
        channel_axis = int(np.argmin(waveform.shape))
        if waveform.shape[channel_axis] > MAX_CHANNELS:
            raise ValueError(
                f"Audio {source} has shape {tuple(waveform.shape)}: a 2-D array must have one axis of at most "
                f"{MAX_CHANNELS} channels. Pass one clip at a time (a list of clips for a batch)."
            )
        waveform = waveform.mean(axis=channel_axis)
    return np.ascontiguousarray(waveform, dtype=np.float32)


def resample(waveform: np.ndarray, orig_sampling_rate: float, target_sampling_rate: float) -> np.ndarray:
    """Resamples a mono waveform with soxr (very high quality); returns it unchanged when the rates match."""
    if orig_sampling_rate == target_sampling_rate:
        return waveform
    import soxr

    resampled = soxr.resample(waveform, orig_sampling_rate, target_sampling_rate, quality=RESAMPLING_QUALITY)
    return np.ascontiguousarray(resampled, dtype=np.float32)


def check_audio_rate(sampling_rate: float, source: str) -> None:
    """Refuses rates outside [MIN_SAMPLING_RATE, MAX_SAMPLING_RATE]: in a file header they are forgeries or damage."""
    if not MIN_SAMPLING_RATE <= sampling_rate <= MAX_SAMPLING_RATE:
        raise ValueError(
            f"Audio {source} is sampled at {sampling_rate:g} Hz; only rates from {MIN_SAMPLING_RATE} to "
            f"{MAX_SAMPLING_RATE} Hz are accepted."
        )


def check_duration(seconds: float, max_seconds: float, source: str) -> None:
    if seconds > max_seconds:
        raise AudioTooLongError(source, seconds, max_seconds)


def _decode_file_like(file_like, source: str, max_seconds: float) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate. libsndfile first: the header's rate and length are checked before any
    sample is read, and the length again while reading; then ffmpeg, when libsndfile cannot read the container."""
    import soundfile

    try:
        with soundfile.SoundFile(file_like) as sound_file:
            sampling_rate = sound_file.samplerate
            check_audio_rate(sampling_rate, source)
            check_duration(sound_file.frames / sampling_rate, max_seconds, source)
            _warn_if_truncated(sound_file, source)
            max_frames = int(max_seconds * sampling_rate) if np.isfinite(max_seconds) else None
            return _read_mono_blocks(sound_file, max_frames, source), sampling_rate
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        reason = getattr(error, "error_string", None) or error  # without soundfile's repr of the file object
    return _decode_with_ffmpeg(file_like, source, max_seconds, reason), QWEN_AUDIO_SAMPLING_RATE


def ffmpeg_executable() -> str | None:
    """The ffmpeg of the `imageio-ffmpeg` wheel (no system package needed), else one on the PATH, else None."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return shutil.which("ffmpeg")


def _container_name(file_like) -> str | None:
    file_like.seek(0)
    head = file_like.read(16)
    return next((name for offset, magic, name in FFMPEG_ONLY_CONTAINERS if head[offset:offset + len(magic)] == magic),
                None)


def _decode_with_ffmpeg(file_like, source: str, max_seconds: float, libsndfile_reason) -> np.ndarray:
    """16 kHz mono float32 through ffmpeg, asked for at most `max_seconds` + a margin, so the work is bounded whatever
    the container claims."""
    container = _container_name(file_like)
    executable = ffmpeg_executable()
    if executable is None:
        if container is not None:
            raise DecoderMissingError(
                f"Audio {source} is {container}, which needs ffmpeg to decode: `pip install imageio-ffmpeg` (part of "
                "the web and serve extras) or install ffmpeg. WAV, FLAC, OGG/Vorbis/Opus, MP3 and AIFF need nothing."
            )
        raise NotAudioError(
            f"Could not decode {source} as audio: not an audio file (libsndfile: {libsndfile_reason}). Supported "
            "formats: WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF (and M4A, WebM, MP4, AAC, ... with ffmpeg)."
        )
    file_like.seek(0)
    limit = [] if not np.isfinite(max_seconds) else ["-t", f"{max_seconds + FFMPEG_PROBE_MARGIN_SECONDS:.3f}"]
    # A temporary file rather than a pipe: MP4 keeps its index at the end, which ffmpeg must seek to.
    with tempfile.NamedTemporaryFile(suffix=".audio") as copy:
        shutil.copyfileobj(file_like, copy)
        copy.flush()
        command = [executable, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", copy.name, "-map", "0:a:0",
                   *limit, "-ac", "1", "-ar", str(QWEN_AUDIO_SAMPLING_RATE), "-f", "f32le", "pipe:1"]
        try:
            result = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise ValueError(f"Decoding {source} with ffmpeg took over {FFMPEG_TIMEOUT_SECONDS} s.") from None
    if result.returncode != 0 or not result.stdout:
        what = "" if container is None else f" ({container} without a decodable audio stream)"
        raise NotAudioError(f"Could not decode {source} as audio: not an audio file{what}; neither libsndfile nor "
                            "ffmpeg could read an audio stream from it.")
    waveform = np.frombuffer(result.stdout[: len(result.stdout) // 4 * 4], dtype="<f4").astype(np.float32)
    check_duration(len(waveform) / QWEN_AUDIO_SAMPLING_RATE, max_seconds, source)
    return waveform


def _read_mono_blocks(sound_file, max_frames: int | None, source: str) -> np.ndarray:
    """Reads block by block, averaging the channels of each block as it goes (row by row, the same float32 average
    as over the whole array), and stops as soon as more than `max_frames` frames arrived."""
    if sound_file.channels > MAX_CHANNELS:
        raise ValueError(f"Audio {source} has {sound_file.channels} channels; at most {MAX_CHANNELS} are accepted.")
    blocks, frames = [], 0
    while True:
        block = sound_file.read(DECODE_BLOCK_FRAMES, dtype="float32", always_2d=True)
        if block.shape[0] == 0:
            break
        frames += block.shape[0]
        if max_frames is not None and frames > max_frames:
            check_duration(frames / sound_file.samplerate, max_frames / sound_file.samplerate, source)
        blocks.append(block[:, 0] if sound_file.channels == 1 else block.mean(axis=1, dtype=np.float32))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def _warn_if_truncated(sound_file, source: str) -> None:
    """libsndfile decodes a truncated WAV as a shorter clip; its log says by how much (other formats fail)."""
    match = TRUNCATED_CHUNK_LOG.search(sound_file.extra_info or "")
    if match and int(match.group(2)) < int(match.group(1)):
        announced, present = int(match.group(1)), int(match.group(2))
        warnings.warn(
            f"Audio {source} is truncated: its header announces {announced} bytes of audio but only {present} are "
            f"present; decoding the {sound_file.frames / sound_file.samplerate:.2f} s that are there.",
            TruncatedAudioWarning,
            stacklevel=4,
        )


class TruncatedAudioWarning(UserWarning):
    """A file holds less audio than its header announces."""


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _looks_like_path(text: str) -> bool:
    return (
        os.sep in text
        or "/" in text
        or text.lower().endswith(AUDIO_FILE_EXTENSIONS)
        or (os.path.splitext(text)[1] != "" and " " not in text and "\n" not in text)
    )


def _read_path(path: str, base_dir: str | os.PathLike | None, max_seconds: float) -> tuple[np.ndarray, int]:
    if base_dir is not None and not os.path.isabs(path):
        candidate = os.path.join(base_dir, path)
        if os.path.exists(candidate):
            path = candidate
    if not os.path.exists(path):
        raise FileNotFoundError(f"Audio file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"Audio path is a directory, not a file: {path}")
    # Checked on the opened descriptor (no race with a swapped path); O_NONBLOCK keeps a FIFO without writer from
    # blocking the open itself.
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
        raise ValueError(f"Audio path {path} is {kind}: only regular files are read.")
    if hasattr(os, "set_blocking"):
        os.set_blocking(descriptor, True)
    with os.fdopen(descriptor, "rb") as file:
        return _decode_file_like(file, f"file {path}", max_seconds)


def _read_url(url: str, max_seconds: float) -> tuple[np.ndarray, int]:
    # httpx (already required by huggingface_hub) streams the body, so the size cap holds without reading it whole,
    # and its timeouts cover connecting and each read; the overall deadline stops a server that trickles bytes.
    import httpx

    deadline = time.monotonic() + URL_TIMEOUT_SECONDS
    body = bytearray()
    try:
        with httpx.stream("GET", url, timeout=URL_TIMEOUT_SECONDS, follow_redirects=True) as response:
            response.raise_for_status()
            announced = response.headers.get("content-length")
            if announced is not None and announced.isdigit() and int(announced) > URL_MAX_BYTES:
                raise ValueError(f"Refusing to download audio from {url}: it is {int(announced)} bytes, over the "
                                 f"{URL_MAX_BYTES}-byte limit (audio_io.URL_MAX_BYTES).")
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > URL_MAX_BYTES:
                    raise ValueError(f"Stopped downloading audio from {url}: over the {URL_MAX_BYTES}-byte limit "
                                     "(audio_io.URL_MAX_BYTES).")
                if time.monotonic() > deadline:
                    raise ValueError(f"Stopped downloading audio from {url}: over {URL_TIMEOUT_SECONDS} s "
                                     "(audio_io.URL_TIMEOUT_SECONDS).")
    except httpx.HTTPError as error:
        raise ValueError(f"Could not download audio from {url}: {error}") from None
    if not body:
        raise ValueError(f"Downloaded audio from {url} is empty.")
    return _decode_file_like(io.BytesIO(bytes(body)), f"the content of {url}", max_seconds)


def load_audio(
    audio,
    sampling_rate: float | None = None,
    target_sampling_rate: int = QWEN_AUDIO_SAMPLING_RATE,
    allow_urls: bool = False,
    base_dir: str | os.PathLike | None = None,
    max_seconds: float | None = None,
) -> np.ndarray:
    """
    Decodes one audio clip to a mono float32 waveform at `target_sampling_rate` (16 kHz by default).

    Args:
        audio:
            One of
            - a 1-D (mono) or 2-D (channels x samples or samples x channels) `np.ndarray`, `torch.Tensor`, or list
              of numbers, sampled at `sampling_rate`; integer PCM is scaled to [-1, 1];
            - a dict `{"array": ..., "sampling_rate": ...}` (the `datasets` `Audio` feature) or `{"path": ...}`
              (optionally with `"bytes"`, which take precedence);
            - a path (`str` or `os.PathLike`) to a WAV/FLAC/OGG/MP3 file;
            - the bytes of such a file;
            - an `http(s)://` URL, only when `allow_urls=True`.
        sampling_rate (`float`, *optional*):
            Sampling rate of an array input. Arrays without one are taken to be at `target_sampling_rate`.
            Ignored (but validated) for files, which carry their own rate.
        target_sampling_rate (`int`, *optional*, defaults to 16000):
            Output rate.
        allow_urls (`bool`, *optional*, defaults to `False`):
            Whether `http(s)://` URLs may be fetched. Off by default so that text from untrusted sources cannot make
            the processor issue network requests. Downloads are capped at `URL_MAX_BYTES` and `URL_TIMEOUT_SECONDS`.
        base_dir (`str`, *optional*):
            Folder that relative paths are resolved against first.
        max_seconds (`float`, *optional*, defaults to `DEFAULT_MAX_SECONDS`, 4 hours):
            Longest audio accepted. Checked against the file's header before any sample is decoded (and against the
            samples as they are read), so a small file that claims hours costs nothing. `float("inf")` lifts it.

    Returns:
        `np.ndarray`: float32, shape `(num_samples,)`.

    Raises:
        `TypeError`: unsupported input type, object/complex/non-numeric arrays, non-numeric sampling rate.
        `ValueError`: empty, non-finite or wrongly shaped audio, undecodable files (`NotAudioError`; a container
            only ffmpeg reads, without ffmpeg: `DecoderMissingError`), bad sampling rates (and rates under
            `MIN_SAMPLING_RATE`), audio over `max_seconds` (`AudioTooLongError`), strings that are neither paths nor
            URLs, URLs without `allow_urls=True`.
        `FileNotFoundError`: a path that does not exist.

    Warns (`TruncatedAudioWarning`) when a WAV file holds less audio than its header announces.
    """
    target_sampling_rate = validate_sampling_rate(target_sampling_rate)
    if sampling_rate is not None:
        sampling_rate = validate_sampling_rate(sampling_rate)
    max_seconds = _validate_max_seconds(max_seconds)

    if isinstance(audio, Mapping):
        if "array" in audio:
            if "sampling_rate" not in audio:
                raise ValueError("An audio dict with an `array` must also give its `sampling_rate`.")
            return load_audio(audio["array"], audio["sampling_rate"], target_sampling_rate, allow_urls, base_dir,
                              max_seconds)
        if audio.get("bytes") is not None:
            return load_audio(bytes(audio["bytes"]), None, target_sampling_rate, allow_urls, base_dir, max_seconds)
        for key in ("path", "url", "audio", "audio_url"):
            if audio.get(key) is not None:
                return load_audio(audio[key], None, target_sampling_rate, allow_urls, base_dir, max_seconds)
        raise ValueError(
            f"Audio dict must have `array` and `sampling_rate`, `bytes`, or `path`; got keys {sorted(audio)}."
        )

    if isinstance(audio, (str, os.PathLike)):
        text = os.fspath(audio)
        if isinstance(text, bytes):
            text = os.fsdecode(text)
        if _is_url(text):
            if not allow_urls:
                raise ValueError(
                    f"Refusing to download audio from {text}: pass `allow_urls=True` (command line: --allow-urls) to fetch "
                    "http(s) URLs."
                )
            waveform, file_sampling_rate = _read_url(text, max_seconds)
            source = text
        elif "://" in text:
            raise ValueError(f"Unsupported URL scheme in {text!r}: only http:// and https:// can be fetched.")
        elif isinstance(audio, os.PathLike) or os.path.exists(text) or _looks_like_path(text):
            waveform, file_sampling_rate = _read_path(text, base_dir, max_seconds)
            source = f"file {text}"
        else:
            raise ValueError(
                f"Audio string {text[:80]!r} is neither an existing file path nor an http(s) URL."
            )
        waveform = _to_mono_float32(waveform, source)
        return resample(waveform, float(file_sampling_rate), target_sampling_rate)

    if isinstance(audio, (bytes, bytearray, memoryview)):
        if len(audio) == 0:
            raise ValueError("Audio bytes are empty.")
        waveform, file_sampling_rate = _decode_file_like(io.BytesIO(bytes(audio)), "the given bytes", max_seconds)
        waveform = _to_mono_float32(waveform, "decoded from bytes")
        return resample(waveform, float(file_sampling_rate), target_sampling_rate)

    waveform = _as_numpy(audio)
    rate = sampling_rate or target_sampling_rate
    check_audio_rate(rate, "array")
    if waveform.ndim >= 1:  # the longest axis is the samples' whatever the layout: checked before any copy
        check_duration(max(waveform.shape) / rate, max_seconds, "array")
    waveform = _to_mono_float32(waveform, "array")
    return resample(waveform, rate, target_sampling_rate)


def _validate_max_seconds(max_seconds) -> float:
    if max_seconds is None:
        return float(DEFAULT_MAX_SECONDS)
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, numbers.Real) or not max_seconds > 0:
        raise ValueError(f"`max_seconds` must be a positive number of seconds, got {max_seconds!r}.")
    return float(max_seconds)


def _as_numpy(audio) -> np.ndarray:
    if isinstance(audio, np.ndarray):
        return audio
    try:
        import torch

        if isinstance(audio, torch.Tensor):
            if audio.is_complex():
                raise TypeError("Audio tensor is complex-valued; pass real-valued samples.")
            return audio.detach().to("cpu", torch.float32).numpy()
    except ImportError:
        pass
    if isinstance(audio, Sequence) and not isinstance(audio, (str, bytes)):
        try:
            return np.asarray(audio)
        except ValueError:
            # Ragged nested lists.
            return np.asarray(audio, dtype=object)
    if isinstance(audio, numbers.Number):
        return np.asarray(audio)
    raise TypeError(
        f"Unsupported audio input of type {type(audio).__name__}: pass an array, a tensor, a list of samples, "
        "a dict with `array`/`sampling_rate` or `path`, a file path, bytes, or an http(s) URL."
    )


__all__ = [
    "QWEN_AUDIO_SAMPLING_RATE",
    "AudioTooLongError",
    "DecoderMissingError",
    "NotAudioError",
    "TruncatedAudioWarning",
    "ffmpeg_executable",
    "load_audio",
    "resample",
    "validate_sampling_rate",
]
