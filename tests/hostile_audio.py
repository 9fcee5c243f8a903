"""
Small audio files that claim (or hold) far more than their size: what a hostile client sends to make a server decode
gigabytes. Shared by the server and web demo tests and `benchmarks/hostile_audio_memory.py`.
"""

import io
import struct

import numpy as np
import soundfile

# The rate of the long silent FLACs: the lowest `audio_io` accepts, so that they are small and quick to encode (and
# a decoder that resamples them to 16 kHz makes four times as many samples).
SILENCE_RATE = 4000


def one_hertz_wav(size_bytes: int = 50_000) -> bytes:
    """A WAV of `size_bytes` whose header says 1 Hz: 25,000 samples that resample to 7 hours at 16 kHz."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros((size_bytes - 44) // 2, np.int16), 1, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def huge_rate_wav(rate: int = 2**31 - 1) -> bytes:
    """A short WAV whose header claims `rate` Hz (its byte rate patched to match)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(8000, np.int16), 16000, format="WAV", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    data[24:32] = struct.pack("<II", rate, min(rate * 2, 2**32 - 1))  # fmt chunk: sample rate, byte rate
    return bytes(data)


def many_channel_wav(channels: int = 256, frames: int = 16000) -> bytes:
    """A WAV of `channels` channels (one second at 16 kHz: 8 MB of samples at 256 channels)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros((frames, channels), np.int16), 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def silent_flac(hours: float, rate: int = SILENCE_RATE) -> bytes:
    """`hours` of real, encoded silence as FLAC: about 50 KB an hour at 4 kHz, one second of encoding an hour."""
    buffer = io.BytesIO()
    block = np.zeros(rate * 600, np.int16)
    with soundfile.SoundFile(buffer, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as sound:
        for _ in range(round(hours * 6)):
            sound.write(block)
    return buffer.getvalue()


def flac_claiming(hours: float, rate: int = 16000) -> bytes:
    """A one-second FLAC whose STREAMINFO header claims `hours`: the small form of a forged length."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(rate, np.int16), rate, format="FLAC", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    # STREAMINFO starts at byte 8; bytes 18-25 hold 20 bits of rate, 3 of channels, 5 of depth, 36 of total samples.
    (packed,) = struct.unpack(">Q", bytes(data[18:26]))
    packed = (packed & ~(2**36 - 1)) | int(hours * 3600 * rate)
    data[18:26] = struct.pack(">Q", packed)
    return bytes(data)


def hostile_files() -> dict[str, bytes]:
    """The set the memory tests and the benchmark send, by name."""
    return {
        "1 Hz WAV (50 KB)": one_hertz_wav(),
        "8 h silent FLAC": silent_flac(8),
        "3 h silent FLAC (under audio_io's 4 h default)": silent_flac(3),
        "FLAC header claiming 8 h": flac_claiming(8),
        "WAV header claiming 2^31 Hz": huge_rate_wav(),
        "256-channel WAV": many_channel_wav(),
    }
