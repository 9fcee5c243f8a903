"""The pre-training data mixture: local layouts (audiofolder, Hub-like parquet folder with README configs, jsonl with
relative paths), filtering with counts, weights, streaming, and clear errors for bad YAML."""

import json
import logging
from collections import Counter

import numpy as np
import pytest
import soundfile

from transformers_qwen_audio.training import AudioMixtureArguments, load_audio_mixture
from transformers_qwen_audio.training.mixture import MIXTURE_FEATURES
from transformers_qwen_audio.training.toy_data import build_toy_pretraining_data


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    return build_toy_pretraining_data(tmp_path_factory.mktemp("toy") / "data")


@pytest.fixture(scope="module")
def jsonl_source(tmp_path_factory):
    """A jsonl file with relative clip paths: one normal clip, one over 30 s, one with an empty transcript."""
    folder = tmp_path_factory.mktemp("jsonl")
    (folder / "clips").mkdir()
    for name, seconds in (("short.wav", 1.0), ("long.wav", 31.0), ("silent.wav", 0.5)):
        soundfile.write(folder / "clips" / name, np.zeros(int(seconds * 16000), np.float32), 16000)
    rows = [
        {"file": "clips/short.wav", "sentence": "one"},
        {"file": "clips/long.wav", "sentence": "too long"},
        {"file": "clips/silent.wav", "sentence": "  "},
    ]
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder / "train.jsonl"


def tones(root, **overrides):
    return {"path": str(root / "tones"), "split": "train", "eval_split": "test", "task": "transcribe",
            "audio_language": "en", "itn": False, **overrides}


def chirps(root, **overrides):
    return {"path": str(root / "chirps"), "split": "train", "eval_split": "test", "text_column": "caption",
            "task": "caption", "caption_style": "clotho", **overrides}


def test_audiofolder_and_parquet_sources_become_released_format_rows(toy_root):
    mixture = AudioMixtureArguments(datasets=[
        tones(toy_root),
        tones(toy_root, words_column="words", text_column=None, timestamps=True, itn=None),
        chirps(toy_root),
    ])
    data = load_audio_mixture(mixture, seed=0)
    assert set(data) == {"train", "test"}
    assert len(data["test"]) == 12 + 12 + 8  # every source's held-out split, concatenated
    prompts = Counter(row["prompt"] for row in data["train"])
    assert set(prompts) == {
        "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>",
        "<|startoftranscript|><|en|><|transcribe|><|en|><|timestamps|><|0.00|>",
        "<|startofanalysis|><|unknown|><|caption|><|en|><|notimestamps|><|caption_clotho|>",
    }
    row = next(row for row in data["train"] if "<|timestamps|>" in row["prompt"])
    assert row["completion"].endswith("|>") and "<|" in row["completion"]
    assert row["audio"]["path"].startswith(str(toy_root))  # absolute: the collator needs no base folder
    parquet_row = next(row for row in data["train"] if "caption" in row["prompt"])
    assert parquet_row["audio"]["bytes"][:4] == b"RIFF" and parquet_row["completion"] in ("a rising chirp", "a falling chirp")
    assert all(row["length"] == round(row["duration"] * 100) > 0 for row in data["test"])
    # Each row names its source and its index in that source's split (what a failing batch reports).
    assert {row["source"] for row in data["test"]} == {str(toy_root / "tones"), str(toy_root / "chirps")}
    assert sorted(row["row"] for row in data["test"] if row["source"].endswith("chirps")) == list(range(8))


def test_long_clips_and_empty_targets_are_filtered_with_counts(jsonl_source, caplog):
    mixture = AudioMixtureArguments(datasets=[
        {"path": str(jsonl_source), "audio_column": "file", "text_column": "sentence", "audio_language": "en"}
    ])
    with caplog.at_level(logging.INFO, logger="transformers_qwen_audio.training.mixture"):
        data = load_audio_mixture(mixture)
    assert [row["completion"] for row in data["train"]] == ["one"]
    assert (data["train"][0]["source"], data["train"][0]["row"]) == (str(jsonl_source), 0)
    assert data["train"][0]["duration"] == pytest.approx(1.0)
    assert "1 of 3 rows kept; 1 clips over 30 s and 1 empty" in caplog.text


def test_weights_set_the_sampling_probabilities(toy_root):
    mixture = AudioMixtureArguments(
        datasets=[tones(toy_root, weight=3.0, eval_split=None), chirps(toy_root, weight=1.0, eval_split=None)],
        stopping_strategy="first_exhausted",
    )
    train = load_audio_mixture(mixture, seed=1)["train"]
    captions = sum("caption" in prompt for prompt in train["prompt"])
    # first_exhausted stops when the 48 tone rows run out: about 16 chirp rows are drawn alongside (1:3).
    assert 6 <= captions <= 28 and len(train) - captions == 48


def test_streaming_mixture_yields_the_same_kind_of_rows(toy_root):
    mixture = AudioMixtureArguments(datasets=[tones(toy_root, eval_split=None), chirps(toy_root, eval_split=None)],
                                    streaming=True)
    rows = list(load_audio_mixture(mixture, seed=0)["train"].take(6))
    assert len(rows) == 6
    assert all(set(row) == set(MIXTURE_FEATURES) == {"audio", "prompt", "completion", "transcript", "duration", "length",
                                                     "source", "row"} for row in rows)


def test_eval_split_size_holds_out_part_of_the_mixture(toy_root):
    mixture = AudioMixtureArguments(datasets=[chirps(toy_root, eval_split=None)], eval_split_size=0.25)
    data = load_audio_mixture(mixture)
    assert (len(data["train"]), len(data["test"])) == (18, 6)


@pytest.mark.parametrize(
    "source, message",
    [
        ({"path": "x", "colour": "red"}, "Unknown key"),
        ({"path": "x", "weight": 0}, "weight"),
        ({"path": "x", "timestamps": True}, "words_column"),
        ({"path": "x", "task": "question"}, "question_column"),
        ({"path": "x", "task": "translate", "audio_language": "en"}, "output_language"),
        ("openslr/librispeech_asr", "mapping"),
    ],
)
def test_bad_sources_are_refused_with_the_reason(source, message):
    with pytest.raises(ValueError, match=message):
        AudioMixtureArguments(datasets=[source])


def test_missing_columns_are_named(toy_root):
    mixture = AudioMixtureArguments(datasets=[chirps(toy_root, text_column="transcript")])
    with pytest.raises(ValueError, match=r"no column\(s\) \['transcript'\]"):
        load_audio_mixture(mixture)
