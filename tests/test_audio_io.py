"""Audio decoding: every accepted input form, resampling against the original (ffmpeg) and each bad input."""

import io

import numpy as np
import pytest
import soundfile
import torch

from transformers_qwen_audio.audio_io import load_audio


def _snr_db(reference, estimate):
    return 10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / np.sum((estimate - reference).astype(np.float64) ** 2))


@pytest.mark.parametrize(
    "key, file_name, source_rate",
    [
        ("1089_134686_000007_000004_person_name", "1089_134686_000007_000004_person_name.wav", 24000),
        ("es", "es.mp3", 48000),
    ],
)
def test_soxr_resampling_close_to_original_ffmpeg(reference_dir, audio_features, key, file_name, source_rate):
    assert soundfile.info(reference_dir / "audio" / file_name).samplerate == source_rate
    reference = audio_features[f"{key}.waveform_16k"]
    waveform = load_audio(reference_dir / "audio" / file_name)
    assert waveform.shape == reference.shape and waveform.dtype == np.float32
    max_abs = float(np.abs(waveform - reference).max())
    snr = _snr_db(reference, waveform)
    print(f"{file_name} ({source_rate} Hz): soxr vs ffmpeg max-abs {max_abs:.3e}, SNR {snr:.1f} dB")
    # Measured: 24 kHz wav 3.1e-3 / 38.4 dB, 48 kHz mp3 1.4e-2 / 39.0 dB; the difference sits above 7 kHz
    # (anti-aliasing filters), below 4 kHz the SNR exceeds 70 dB.
    assert snr > 35 and max_abs < 3e-2


def test_16k_flac_is_bit_exact(reference_dir, audio_features):
    waveform = load_audio(str(reference_dir / "audio" / "1272-128104-0000.flac"))
    np.testing.assert_array_equal(waveform, audio_features["1272_128104_0000.waveform_16k"])


def test_all_input_forms_agree(reference_dir):
    path = reference_dir / "audio" / "1089_134686_000007_000004_person_name.wav"
    raw, rate = soundfile.read(path, dtype="float32")
    expected = load_audio(str(path))
    np.testing.assert_allclose(load_audio(path.read_bytes()), expected)
    np.testing.assert_allclose(load_audio({"path": str(path)}), expected)
    np.testing.assert_allclose(load_audio({"array": raw, "sampling_rate": rate}), expected)
    np.testing.assert_allclose(load_audio(torch.from_numpy(raw), sampling_rate=rate), expected)
    np.testing.assert_allclose(load_audio(raw.tolist(), sampling_rate=rate), expected, atol=1e-6)
    int16 = soundfile.read(path, dtype="int16")[0]
    np.testing.assert_allclose(load_audio(int16, sampling_rate=rate), expected, atol=1e-6)


def test_stereo_is_averaged_to_mono(reference_dir):
    stereo = load_audio(reference_dir / "audio" / "glass-breaking-151256.mp3")
    raw, rate = soundfile.read(reference_dir / "audio" / "glass-breaking-151256.mp3", dtype="float32")
    assert raw.ndim == 2 and stereo.ndim == 1
    np.testing.assert_allclose(stereo, load_audio(raw.mean(axis=1), sampling_rate=rate), atol=1e-6)
    channels_first = np.stack([np.ones(1000), np.zeros(1000)]).astype(np.float32)
    np.testing.assert_allclose(load_audio(channels_first), np.full(1000, 0.5, dtype=np.float32))


def test_ogg_is_decoded(tmp_path):
    tone = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    path = tmp_path / "tone.ogg"
    soundfile.write(path, tone, 8000, format="OGG")
    assert load_audio(path).shape == (16000,)


# --- one test per bad input -----------------------------------------------------------------------------------


def test_empty_array():
    with pytest.raises(ValueError, match="empty"):
        load_audio(np.zeros(0, dtype=np.float32))


def test_nan_samples():
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_audio(np.array([0.0, np.nan, 0.1], dtype=np.float32))


def test_infinite_samples():
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_audio(np.array([0.0, np.inf], dtype=np.float32))


def test_three_dimensional_array():
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        load_audio(np.zeros((1, 2, 100), dtype=np.float32))


def test_scalar_audio():
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        load_audio(np.float32(0.5))


def test_two_dimensional_batch_is_refused():
    with pytest.raises(ValueError, match="channels"):
        load_audio(np.zeros((32, 1000), dtype=np.float32))


def test_complex_array():
    with pytest.raises(TypeError, match="complex"):
        load_audio(np.zeros(100, dtype=np.complex64))


def test_complex_tensor():
    with pytest.raises(TypeError, match="complex"):
        load_audio(torch.zeros(100, dtype=torch.complex64))


def test_object_array():
    with pytest.raises(TypeError, match="dtype object"):
        load_audio(np.array([0.1, "a", None], dtype=object))


def test_string_array():
    with pytest.raises(TypeError, match="non-numeric"):
        load_audio(np.array(["a", "b"]))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_audio(str(tmp_path / "missing.wav"))


def test_not_an_audio_file(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio")
    with pytest.raises(ValueError, match="Could not decode"):
        load_audio(path)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        load_audio(str(tmp_path) + "/")


def test_undecodable_bytes():
    with pytest.raises(ValueError, match="Could not decode"):
        load_audio(b"definitely not audio")


def test_empty_bytes():
    with pytest.raises(ValueError, match="empty"):
        load_audio(b"")


def test_zero_sampling_rate():
    with pytest.raises(ValueError, match="positive"):
        load_audio(np.zeros(100, dtype=np.float32), sampling_rate=0)


def test_negative_sampling_rate():
    with pytest.raises(ValueError, match="positive"):
        load_audio(np.zeros(100, dtype=np.float32), sampling_rate=-16000)


def test_nan_sampling_rate():
    with pytest.raises(ValueError, match="positive finite"):
        load_audio(np.zeros(100, dtype=np.float32), sampling_rate=float("nan"))


def test_non_numeric_sampling_rate():
    with pytest.raises(TypeError, match="sampling_rate"):
        load_audio(np.zeros(100, dtype=np.float32), sampling_rate="16k")


def test_boolean_sampling_rate():
    with pytest.raises(TypeError, match="sampling_rate"):
        load_audio(np.zeros(100, dtype=np.float32), sampling_rate=True)


def test_string_neither_path_nor_url():
    with pytest.raises(ValueError, match="neither an existing file path nor an http"):
        load_audio("hello there")


def test_url_without_opt_in():
    with pytest.raises(ValueError, match="allow_urls=True"):
        load_audio("https://example.com/audio.wav")


def test_unsupported_url_scheme():
    with pytest.raises(ValueError, match="Unsupported URL scheme"):
        load_audio("ftp://example.com/audio.wav")


def test_unsupported_type():
    with pytest.raises(TypeError, match="Unsupported audio input"):
        load_audio({1, 2, 3})


def test_dict_without_audio():
    with pytest.raises(ValueError, match="Audio dict"):
        load_audio({"sampling_rate": 16000})


def test_dict_array_without_sampling_rate():
    with pytest.raises(ValueError, match="sampling_rate"):
        load_audio({"array": np.zeros(10)})


# ----------------------------------------------------------------------------------------------------------------
# Bounded work before decoding: hostile headers cost nothing (tracemalloc follows numpy's allocations)
# ----------------------------------------------------------------------------------------------------------------
import struct  # noqa: E402
import tracemalloc  # noqa: E402

from transformers_qwen_audio import audio_io  # noqa: E402
from transformers_qwen_audio.audio_io import AudioTooLongError, DecoderMissingError, NotAudioError  # noqa: E402


def _peak_bytes(function, *args, **kwargs):
    tracemalloc.start()
    try:
        try:
            function(*args, **kwargs)
            outcome = None
        except Exception as error:  # noqa: BLE001 - returned to the test, which checks its kind
            outcome = error
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _wav_claiming_rate(rate: int, samples: int = 25_000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(samples, dtype=np.int16), 16000, format="WAV", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    data[24:32] = struct.pack("<II", rate, rate * 2)  # fmt chunk: sample rate, byte rate
    return bytes(data)


def test_wav_header_claiming_1_hz_is_refused_before_decoding(tmp_path):
    # 50 KB of 16-bit samples at "1 Hz" are 7 hours: resampled to 16 kHz that was 1.75 GB for one request.
    path = tmp_path / "one_hertz.wav"
    path.write_bytes(_wav_claiming_rate(1))
    error, peak = _peak_bytes(load_audio, path)
    assert isinstance(error, ValueError) and "1 Hz" in str(error) and "4000" in str(error)
    assert peak < 2 * 1024 * 1024, peak
    with pytest.raises(ValueError, match="1 Hz"):
        load_audio(_wav_claiming_rate(1))


def test_long_file_is_refused_from_its_header(tmp_path):
    # 10 minutes of silence compress to a few KB of FLAC; only the header is read before refusing.
    path = tmp_path / "silence.flac"
    with soundfile.SoundFile(path, "w", 16000, 1, format="FLAC") as sound_file:
        for _ in range(10):
            sound_file.write(np.zeros(16000 * 60, dtype=np.int16))
    assert path.stat().st_size < 200_000
    error, peak = _peak_bytes(load_audio, path, max_seconds=30)
    assert isinstance(error, AudioTooLongError), error
    assert (error.seconds, error.max_seconds) == (600, 30) and "600.0 s" in str(error)
    assert peak < 2 * 1024 * 1024, peak
    assert load_audio(path, max_seconds=600).shape == (16000 * 600,)


def test_default_limit_applies_without_max_seconds(tmp_path, monkeypatch):
    monkeypatch.setattr(audio_io, "DEFAULT_MAX_SECONDS", 1)
    path = tmp_path / "two_seconds.wav"
    soundfile.write(path, np.zeros(32000, dtype=np.float32), 16000)
    with pytest.raises(AudioTooLongError, match="over the limit of 1 s"):
        load_audio(path)
    assert load_audio(path, max_seconds=float("inf")).shape == (32000,)


def test_arrays_are_bounded_before_resampling():
    with pytest.raises(ValueError, match="1000 Hz"):
        load_audio(np.zeros(50_000, dtype=np.float32), sampling_rate=1000)
    error, peak = _peak_bytes(load_audio, np.zeros(48000 * 60, dtype=np.float32), sampling_rate=48000, max_seconds=30)
    assert isinstance(error, AudioTooLongError) and peak < 1024 * 1024


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "30", True])
def test_bad_max_seconds(bad):
    with pytest.raises(ValueError, match="max_seconds"):
        load_audio(np.zeros(16000, dtype=np.float32), max_seconds=bad)


class _LyingSoundFile:
    """A decoder whose header said little and whose reads never end (as a damaged or forged stream can)."""

    samplerate, channels, frames_read = 16000, 2, 0

    def read(self, frames, dtype, always_2d):
        self.frames_read += frames
        return np.zeros((frames, self.channels), dtype=np.float32)


def test_reading_stops_when_the_samples_outrun_the_header():
    lying = _LyingSoundFile()
    with pytest.raises(AudioTooLongError):
        audio_io._read_mono_blocks(lying, max_frames=16000 * 30, source="test")
    assert lying.frames_read <= 16000 * 30 + audio_io.DECODE_BLOCK_FRAMES


def test_multichannel_files_are_averaged_block_by_block(tmp_path):
    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.5, 0.5, size=(audio_io.DECODE_BLOCK_FRAMES * 2 + 123, 2)).astype(np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path), stereo.mean(axis=1))


def _m4a_like_bytes() -> bytes:
    return b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00" + b"\x00" * 64


def test_container_that_needs_ffmpeg_says_so_without_one(monkeypatch):
    monkeypatch.setattr(audio_io, "ffmpeg_executable", lambda: None)
    with pytest.raises(DecoderMissingError, match="MP4/M4A, which needs ffmpeg.*imageio-ffmpeg"):
        load_audio(_m4a_like_bytes())
    with pytest.raises(NotAudioError, match="not an audio file"):
        load_audio(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)


def _ffmpeg_or_skip() -> str:
    executable = audio_io.ffmpeg_executable()
    if executable is None:
        pytest.skip("no ffmpeg: neither the imageio-ffmpeg wheel nor ffmpeg on the PATH")
    return executable


def _encode_with_ffmpeg(tmp_path, seconds: float, suffix: str) -> "os.PathLike":
    import subprocess

    source = tmp_path / "tone.wav"
    time = np.arange(int(16000 * seconds)) / 16000
    soundfile.write(source, (0.3 * np.sin(2 * np.pi * 440 * time)).astype(np.float32), 16000)
    encoded = tmp_path / f"tone{suffix}"
    subprocess.run([_ffmpeg_or_skip(), "-nostdin", "-loglevel", "error", "-i", str(source), "-c:a", "aac",
                    str(encoded)], check=True)
    return encoded


def test_m4a_is_decoded_through_ffmpeg_and_bounded(tmp_path):
    encoded = _encode_with_ffmpeg(tmp_path, 3.0, ".m4a")
    waveform = load_audio(encoded)
    assert abs(len(waveform) / 16000 - 3.0) < 0.1 and 0.1 < np.abs(waveform).max() < 0.5
    with pytest.raises(AudioTooLongError, match="over the limit of 1 s"):
        load_audio(encoded, max_seconds=1)
    assert abs(len(load_audio(encoded.read_bytes())) / 16000 - 3.0) < 0.1


def test_non_audio_is_called_that_with_ffmpeg(tmp_path):
    _ffmpeg_or_skip()
    with pytest.raises(NotAudioError, match="not an audio file"):
        load_audio(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n")
    with pytest.raises(NotAudioError, match="not an audio file"):
        load_audio(text)
