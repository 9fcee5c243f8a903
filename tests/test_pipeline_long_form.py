"""The pipeline's long-form modes (`long_audio="sequential"|"vad"`) on the tiny checkpoint: the driver over the
pipeline's window calls, with constructed word timestamps (as tests/test_long_form.py) and with the model itself."""

import numpy as np
import pytest
from transformers import pipeline

import transformers_qwen_audio  # noqa: F401  (registers "audio-chat")
from constructed_words import as_tuples, expected, make_timeline, words_heard
from transformers_qwen_audio import long_form
from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint

RATE = 16000
# Sample values encode which recording they belong to and their own time: the fake transcriber reads where a
# window lies from its first sample.
SCALE, OWNER_SECONDS = 10_000.0, 1000.0


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    folder = build_released_checkpoint(tmp_path_factory.mktemp("long_form") / "tiny")
    return pipeline("audio-chat", model=str(folder))


def recording(seconds: float, owner: int = 0) -> np.ndarray:
    return ((owner * OWNER_SECONDS + np.arange(int(seconds * RATE)) / RATE) / SCALE).astype(np.float32)


def fake_windows(timelines, calls):
    """Stands in for `_transcribe_windows`: the words inside each window, a word cut by its end garbled and open."""

    def transcribe(windows, batch_size, **kwargs):
        calls.append((len(windows), batch_size, kwargs))
        results = []
        for window in windows:
            owner, start = divmod(float(window[0]) * SCALE, OWNER_SECONDS)
            start = round(start, 3)
            results.append(words_heard(timelines[int(round(owner))], start, start + len(window) / RATE, open_end=True))
        return results

    return transcribe


def test_sequential_words_on_the_recording_time_line_batched_across_recordings(pipe, monkeypatch):
    timelines = [make_timeline(70.0, 0), make_timeline(40.0, 1)]
    calls, settled = [], []
    monkeypatch.setattr(pipe, "_transcribe_windows", fake_windows(timelines, calls))
    results = pipe([recording(70.0, 0), recording(40.0, 1)], task="transcribe", language="en",
                   return_timestamps="word", long_audio="sequential", batch_size=4,
                   progress_callback=settled.append, max_new_tokens=7)
    for words, result in zip(timelines, results):
        assert as_tuples(result["chunks"]) == expected(words)  # each word once, none garbled at an edge
        assert result["text"] == " ".join(text for text, _, _ in words)
    assert [(count, size) for count, size, _ in calls] == [(2, 2), (2, 2), (1, 1)]  # one batch a step
    assert calls[0][2]["max_new_tokens"] == 7 and calls[0][2]["language"] == "en"
    assert sum(settled) == pytest.approx(110.0, abs=0.01)


def test_sequential_segments_and_plain_text(pipe, monkeypatch):
    words = make_timeline(50.0, 2)
    monkeypatch.setattr(pipe, "_transcribe_windows", fake_windows([words], []))
    plain = pipe(recording(50.0), task="transcribe", language="en", long_audio="sequential")
    assert plain == {"text": " ".join(text for text, _, _ in words)}
    segments = pipe(recording(50.0), task="transcribe", language="en", long_audio="sequential",
                    return_timestamps=True)["chunks"]
    # Words with a gap between them are separate segments: here every word is one.
    assert as_tuples(segments) == expected(words)


def test_long_form_mode_given_when_the_pipeline_is_built(pipe, monkeypatch):
    words = make_timeline(40.0, 6)
    built = pipeline("audio-chat", model=pipe.model, processor=pipe.processor, long_audio="sequential",
                     language="en")
    monkeypatch.setattr(built, "_transcribe_windows", fake_windows([words], []))
    assert built(recording(40.0), task="transcribe") == {"text": " ".join(text for text, _, _ in words)}


def test_vad_windows_end_in_pauses_and_keep_every_word_once(pipe, monkeypatch):
    timelines = [make_timeline(100.0, 3), make_timeline(45.0, 4)]

    def speech(waveform, sampling_rate):
        owner = int(round(float(waveform[0]) * SCALE // OWNER_SECONDS))
        return [(int(start * RATE), int(end * RATE)) for _, start, end in timelines[owner]]

    monkeypatch.setattr(long_form, "speech_segments", speech)
    calls = []
    monkeypatch.setattr(pipe, "_transcribe_windows", fake_windows(timelines, calls))
    results = pipe([recording(100.0, 0), recording(45.0, 1)], task="transcribe", language="en",
                   return_timestamps="word", long_audio="vad", batch_size=3)
    for words, result in zip(timelines, results):
        assert as_tuples(result["chunks"]) == expected(words)
    assert all(count <= 3 for count, _, _ in calls) and calls[0][0] == 3  # windows of both recordings batched


def test_long_form_on_the_tiny_model_keeps_times_inside_the_recording(pipe):
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(41.0 * RATE))).astype(np.float32)
    settled = []
    result = pipe(audio, task="transcribe", language="en", return_timestamps="word", long_audio="sequential",
                  max_new_tokens=12, do_sample=False, progress_callback=settled.append)
    assert set(result) == {"text", "chunks"}
    assert all(0 <= chunk["timestamp"][0] <= chunk["timestamp"][1] <= 41.0 for chunk in result["chunks"])
    assert len(settled) >= 2 and sum(settled) == pytest.approx(41.0, abs=0.01)


def test_long_form_refuses_what_it_cannot_drive(pipe):
    messages = [{"role": "user", "content": [{"type": "audio", "audio": recording(2.0)},
                                             {"type": "text", "text": "What is it?"}]}]
    with pytest.raises(ValueError, match="transcribes clips"):
        pipe(messages, long_audio="sequential")
    with pytest.raises(ValueError, match="needs `task=`"):
        pipe(recording(2.0), prompt="What is it?", long_audio="vad")
    with pytest.raises(ValueError, match="long_audio"):
        pipe(recording(2.0), task="transcribe", long_audio="overlap")
    with pytest.raises(TypeError, match="takes a clip or a list of clips"):
        pipe((clip for clip in [recording(2.0)]), task="transcribe", long_audio="sequential")


def test_long_form_bad_inputs_are_named_or_returned(pipe, monkeypatch):
    monkeypatch.setattr(pipe, "_transcribe_windows", fake_windows([make_timeline(5.0, 5)], []))
    with pytest.raises(FileNotFoundError, match="Input 1: "):
        pipe([recording(5.0), "/no/such.wav"], task="transcribe", language="en", long_audio="sequential")
    results = pipe([recording(5.0), "/no/such.wav"], task="transcribe", language="en", long_audio="sequential",
                   errors="return")
    assert results[0]["text"].startswith("w0") and results[1]["error"].startswith("Input 1: ")


# --- the command line: --long-audio and the progress bar in audio seconds ---------------------------------------
@pytest.fixture
def long_wav(tmp_path):
    import soundfile

    path = tmp_path / "long.wav"
    rng = np.random.default_rng(1)
    soundfile.write(path, (0.1 * rng.standard_normal(int(45.0 * RATE))).astype(np.float32), RATE)
    return path


@pytest.mark.parametrize("method", ["sequential", "chunk"])
def test_cli_long_audio_option_and_progress_bar(pipe, long_wav, method, monkeypatch, capsys):
    import json

    from transformers_qwen_audio import cli
    from transformers_qwen_audio.cli import transcribe

    seen = []
    monkeypatch.setattr(transcribe, "load_pipeline", lambda model, **kwargs: pipe)
    original = type(pipe).__call__
    monkeypatch.setattr(type(pipe), "__call__", lambda self, *args, **kwargs: seen.append(kwargs.get("long_audio"))
                        or original(self, *args, **kwargs))
    folder = pipe.model.config._name_or_path
    code = cli.main(["transcribe", folder, str(long_wav), "--long-audio", method, "--output", "json", "--timestamps",
                     "--max-new-tokens", "6", "--greedy"])
    captured = capsys.readouterr()
    assert code == 0 and seen[0] == method
    result = json.loads(captured.out)
    assert set(result) == {"text", "chunks"}
    if method == "sequential":  # chunk's windows take the model's times as they come, past the end included
        assert all(chunk["timestamp"][1] <= 45.0 for chunk in result["chunks"])
    assert "45.0/45.0 s" in captured.err  # the bar in audio seconds, for a file longer than one window


def test_cli_long_audio_choices_and_no_bar_for_short_files(pipe, tmp_path, monkeypatch, capsys):
    import soundfile

    from transformers_qwen_audio import cli
    from transformers_qwen_audio.cli import transcribe

    with pytest.raises(SystemExit) as exited:
        cli.main(["transcribe", "model", "a.wav", "--long-audio", "overlap"])
    assert exited.value.code == 2 and "invalid choice: 'overlap'" in capsys.readouterr().err
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(RATE * 2, np.float32) + 0.01, RATE)
    monkeypatch.setattr(transcribe, "load_pipeline", lambda model, **kwargs: pipe)
    code = cli.main(["transcribe", pipe.model.config._name_or_path, str(short), "--long-audio", "sequential",
                     "--max-new-tokens", "4"])
    assert code == 0 and " s [" not in capsys.readouterr().err


def test_window_seconds_shortens_the_windows_and_keeps_every_word_once(pipe, monkeypatch):
    """`window_seconds` (Whisper's `chunk_length_s`): windows of at most that length, the same words on the
    recording's time line; a bad value, or one given to a mode with fixed 30 s windows, is refused by name."""
    timelines = [make_timeline(40.0, 0)]
    calls, lengths = [], []
    transcribe = fake_windows(timelines, calls)

    def measured(windows, batch_size, **kwargs):
        lengths.extend(len(window) / RATE for window in windows)
        return transcribe(windows, batch_size, **kwargs)

    monkeypatch.setattr(pipe, "_transcribe_windows", measured)
    monkeypatch.setattr(long_form, "speech_segments", lambda waveform, sampling_rate: [
        (int(start * RATE), int(end * RATE)) for _, start, end in timelines[0]])
    for method in ("sequential", "vad"):
        lengths.clear()
        result = pipe(recording(40.0, 0), task="transcribe", language="en", return_timestamps="word",
                      long_audio=method, window_seconds=6)
        assert as_tuples(result["chunks"]) == expected(timelines[0]), method
        assert max(lengths) <= 6.0 + 1e-6 and len(lengths) >= 40 / 6, (method, lengths)
    for bad in (0, 1.5, 31, "8", True):
        with pytest.raises(ValueError, match="`window_seconds` must be"):
            pipe(recording(40.0), task="transcribe", long_audio="sequential", window_seconds=bad)
    with pytest.raises(ValueError, match="sets the windows of long_audio='sequential' or 'vad'"):
        pipe(recording(40.0), task="transcribe", long_audio="chunk", window_seconds=8)


def test_the_checkpoint_sets_the_default_window(pipe, monkeypatch):
    """`generation_config.long_form_window_seconds` (the main job writes it for its tiny models) is the default
    window; `window_seconds=` still wins, and a bad value in the checkpoint is refused by name."""
    timelines = [make_timeline(40.0, 0)]
    lengths = []
    transcribe = fake_windows(timelines, [])

    def measured(windows, batch_size, **kwargs):
        lengths.extend(len(window) / RATE for window in windows)
        return transcribe(windows, batch_size, **kwargs)

    monkeypatch.setattr(pipe, "_transcribe_windows", measured)
    monkeypatch.setattr(pipe.model.generation_config, "long_form_window_seconds", 5.0, raising=False)
    result = pipe(recording(40.0, 0), task="transcribe", language="en", return_timestamps="word",
                  long_audio="sequential")
    assert as_tuples(result["chunks"]) == expected(timelines[0])
    assert max(lengths) <= 5.0 + 1e-6 and len(lengths) >= 8
    lengths.clear()
    pipe(recording(40.0, 0), task="transcribe", language="en", long_audio="sequential", window_seconds=10)
    assert max(lengths) > 5.0
    monkeypatch.setattr(pipe.model.generation_config, "long_form_window_seconds", 45.0, raising=False)
    with pytest.raises(ValueError, match="generation_config.long_form_window_seconds` must be"):
        pipe(recording(40.0), task="transcribe", long_audio="sequential")


def test_cli_window_seconds(pipe, monkeypatch, capsys, tmp_path):
    import soundfile

    from transformers_qwen_audio import cli
    from transformers_qwen_audio.cli import transcribe

    path = tmp_path / "long.wav"
    soundfile.write(path, np.zeros(35 * RATE, np.float32) + 0.01, RATE)
    monkeypatch.setattr(transcribe, "load_pipeline", lambda model, **kwargs: pipe)
    model = pipe.model.config._name_or_path
    assert cli.main(["transcribe", model, str(path), "--window-seconds", "5"]) == 2
    assert "--window-seconds sets the windows of --long-audio sequential or vad" in capsys.readouterr().err
    assert cli.main(["transcribe", model, str(path), "--long-audio", "vad", "--window-seconds", "40"]) == 2
    assert "--window-seconds must be above 2 and at most 30" in capsys.readouterr().err
    seen = {}
    monkeypatch.setattr(long_form, "sequential_long_form",
                        lambda waveforms, transcribe, **kwargs: seen.update(kwargs) or [[] for _ in waveforms])
    assert cli.main(["transcribe", model, str(path), "--long-audio", "sequential", "--window-seconds", "4",
                     "--no-progress"]) == 0
    assert seen["window_seconds"] == 4.0


def test_a_checkpoint_that_declares_its_window_is_cut_at_pauses_by_default(pipe, long_wav, monkeypatch, capsys):
    """The server's uploads, the web demo's Transcribe tab and `qwen-audio transcribe` without a long-audio choice:
    `vad` (`sequential` without silero-vad) for a checkpoint that declares `long_form_window_seconds`, their old
    defaults for any other."""
    import json

    from transformers import GenerationConfig

    from transformers_qwen_audio import cli
    from transformers_qwen_audio.cli import transcribe
    from transformers_qwen_audio.long_form import default_long_audio
    from transformers_qwen_audio.serving.app import InferenceEngine
    from transformers_qwen_audio.serving.protocol import ServerLimits

    declared = GenerationConfig(long_form_window_seconds=3.0)
    assert default_long_audio(GenerationConfig()) == "chunk" and default_long_audio(declared) == "vad"
    assert default_long_audio(GenerationConfig(), otherwise=None) is None
    monkeypatch.setattr(long_form, "vad_available", lambda: False)
    assert default_long_audio(declared) == "sequential"
    monkeypatch.setattr(long_form, "vad_available", lambda: True)

    assert InferenceEngine(pipe, ServerLimits(max_audio_seconds=120)).transcription_long_audio == "chunk"
    monkeypatch.setattr(pipe.model, "generation_config", declared)
    assert InferenceEngine(pipe, ServerLimits(max_audio_seconds=120)).transcription_long_audio == "vad"
    assert InferenceEngine(pipe, ServerLimits(max_audio_seconds=20)).transcription_long_audio == "vad"

    seen = []
    monkeypatch.setattr(transcribe, "load_pipeline", lambda model, **kwargs: pipe)
    original = type(pipe).__call__
    monkeypatch.setattr(type(pipe), "__call__", lambda self, *args, **kwargs: seen.append(kwargs.get("long_audio"))
                        or original(self, *args, **kwargs))
    monkeypatch.setattr(long_form, "speech_segments", lambda waveform, sampling_rate: [(RATE, 3 * RATE)])
    code = cli.main(["transcribe", pipe.model.config._name_or_path, str(long_wav), "--output", "json",
                     "--max-new-tokens", "4", "--greedy"])
    assert code == 0 and seen[0] == "vad" and set(json.loads(capsys.readouterr().out)) == {"text"}

    pytest.importorskip("gradio")
    from transformers_qwen_audio.web_demo import WebDemo

    demo = WebDemo(pipe)
    try:
        seen.clear()
        demo.transcribe(str(long_wav), "en", timestamps=False)
        assert seen[0] == "vad"
    finally:
        demo.close()
