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
