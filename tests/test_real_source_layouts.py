"""Every source of the pre-training recipe (and the SFT recipe's data) through the mixtures, on tiny copies of the
real layouts (`real_source_layouts`) with only the data roots rewritten; the source options a real mixture needs:
ClassLabel names, text normalisation, alignment clean-up, unreadable clips skipped and counted."""

import json
import logging
from collections import Counter
from pathlib import Path

import pytest
import yaml
from datasets import Audio, Dataset, Features, List, Value

from real_source_layouts import build_real_source_layouts, class_label_parquet, clip_bytes, write_clip
from transformers_qwen_audio.training import AudioMixtureArguments, load_audio_mixture
from transformers_qwen_audio.training.chat_mixture import ChatMixtureArguments, load_chat_mixture


REPO_ROOT = Path(__file__).resolve().parent.parent
FULL_RECIPE = REPO_ROOT / "recipes/qwen-audio/pretrain/config_full.yaml"
SFT_RECIPE = REPO_ROOT / "recipes/qwen-audio-chat/sft/config_lora.yaml"


@pytest.fixture(scope="module")
def data_roots(tmp_path_factory):
    return build_real_source_layouts(tmp_path_factory.mktemp("real-layouts"))


@pytest.fixture(scope="module")
def full_recipe_data(data_roots):
    sources = yaml.safe_load(FULL_RECIPE.read_text())["datasets"]
    return load_audio_mixture(AudioMixtureArguments(datasets=sources, data_roots=data_roots), seed=0)


def rows_by_source(rows) -> dict[str, list[dict]]:
    grouped = {}
    for row in rows:
        grouped.setdefault(row["source"], []).append(row)
    return {name: sorted(group, key=lambda row: row["row"]) for name, group in grouped.items()}


def test_every_source_of_the_full_recipe_loads_from_its_published_layout(full_recipe_data):
    train, test = rows_by_source(full_recipe_data["train"]), rows_by_source(full_recipe_data["test"])
    names = [source["source_name"] for source in yaml.safe_load(FULL_RECIPE.read_text())["datasets"]]
    assert set(train) == set(names) and set(test) == set(names) - {"librispeech_other_500"}
    assert Counter({name: len({row["row"] for row in rows}) for name, rows in train.items()}) == Counter({
        "librispeech_clean_360": 2, "librispeech_other_500": 2, "librispeech_alignments_clean_100": 2, "aishell1": 2,
        "covost2_fr_en": 2, "covost2_zh_en": 2, "covost2_en_zh": 2, "clotho": 2, "cochlscene": 3, "vocalsound": 3,
        "clotho_aqa": 3,
    })
    first = {name: rows[0] for name, rows in test.items()}
    # LibriSpeech is upper case; the released model writes lower case.
    assert first["librispeech_clean_360"]["completion"] == "mister quilter is the apostle"
    assert first["librispeech_clean_360"]["transcript"] == "mister quilter is the apostle"
    # MFA alignments: the empty words are silences, the <unk> is dropped; gaps become <|sil|>.
    assert first["librispeech_alignments_clean_100"]["completion"] == (
        "<|sil|><|0.03|> he<|0.09|><|sil|><|0.12|> hoped<|0.16|><|sil|><|0.20|>")
    assert first["librispeech_alignments_clean_100"]["transcript"] == "he hoped"
    # AISHELL-1: the transcript file's word segmentation is not in the speech.
    assert first["aishell1"]["completion"] == "甚至出现交易几乎停滞的情况"
    assert first["aishell1"]["prompt"] == "<|startoftranscript|><|zh|><|transcribe|><|zh|><|notimestamps|><|wo_itn|>"
    # CoVoST 2's zh-CN is Qwen-Audio's zh, both ways.
    assert first["covost2_zh_en"]["prompt"] == "<|startoftranscript|><|zh|><|translate|><|en|><|notimestamps|><|itn|>"
    assert (first["covost2_en_zh"]["prompt"], first["covost2_en_zh"]["completion"]) == (
        "<|startoftranscript|><|en|><|translate|><|zh|><|notimestamps|><|itn|>", "早上好。")
    assert first["clotho"]["completion"] == "birds caption 1"
    assert [row["completion"] for row in test["cochlscene"]] == ["Bus", "Park", "SubwayStation"]
    assert [row["completion"] for row in train["vocalsound"][:3]] == ["cough", "laughter", "throatclearing"]
    assert [row["completion"] for row in test["vocalsound"]] == ["sniff"]
    assert first["clotho_aqa"]["prompt"] == "<|startofanalysis|><|en|><|question|>Are there waves?<|answer|>"
    assert [row["completion"] for row in test["clotho_aqa"]] == ["yes", "yes", "no"]
    for row in full_recipe_data["test"]:
        assert row["duration"] == pytest.approx(0.2) and (row["audio"]["bytes"] or Path(row["audio"]["path"]).is_file())


def test_the_full_recipe_streams_the_same_rows(data_roots, full_recipe_data):
    sources = yaml.safe_load(FULL_RECIPE.read_text())["datasets"]
    streamed = load_audio_mixture(AudioMixtureArguments(datasets=sources, data_roots=data_roots, streaming=True))
    key = lambda row: (row["source"], row["row"], row["prompt"], row["completion"])  # noqa: E731
    assert sorted(map(key, streamed["test"])) == sorted(map(key, full_recipe_data["test"]))


def test_class_label_ids_become_their_names_id_zero_included(tmp_path):
    names = class_label_parquet(tmp_path / "labels/data/train-00000-of-00001.parquet")
    source = {"path": "owner/labels", "data_files": {"train": "data/train-*.parquet"}, "text_column": "label",
              "task": "vocal_classification"}
    data = load_audio_mixture(AudioMixtureArguments(datasets=[source], data_roots={"hf://datasets/owner/": f"{tmp_path}/"}))
    assert [row["completion"] for row in data["train"]] == [names[0], names[1], names[2], names[0]]
    assert data["train"][0]["source"] == "owner/labels"


def test_unreadable_clips_are_skipped_and_counted_and_too_many_stop_the_source(tmp_path, caplog):
    folder = tmp_path / "scenes/Train"
    for index in range(4):
        write_clip(folder / "Bus" / f"Bus_user0001_1_00{index}.wav")
    (folder / "Bus/Bus_user0001_1_009.wav").write_bytes(b"not a wav file")
    source = {"path": str(tmp_path / "scenes"), "audio_files": "Train/*/*.wav", "label_from": "folder",
              "text_column": "label", "task": "scene", "source_name": "scenes"}
    with caplog.at_level(logging.INFO, logger="transformers_qwen_audio.training.mixture"):
        data = load_audio_mixture(AudioMixtureArguments(datasets=[source], max_bad_row_share=0.25))
    assert len(data["train"]) == 4 and "1 unreadable clips skipped" in caplog.text
    with pytest.raises(ValueError, match=r"Source scenes: 1 of 5 clips cannot be read"):
        load_audio_mixture(AudioMixtureArguments(datasets=[source], max_bad_row_share=0.1))
    streamed = load_audio_mixture(AudioMixtureArguments(datasets=[source], streaming=True, max_bad_row_share=0.1))
    assert len(list(streamed["train"])) == 4  # 1 of the first 100 rows is within a 10 % share


@pytest.mark.parametrize(
    "options, message",
    [
        ({"text_normalization": "upper"}, "Unknown `text_normalization`"),
        ({"label_from": "parent"}, "label_from"),
        ({"transcripts": "t.txt"}, "audio_files"),
    ],
)
def test_bad_source_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        AudioMixtureArguments(datasets=[{"path": "x", **options}])


def test_sft_data_hub_audio_chat_parquet_loads_without_decoding(tmp_path):
    """A Hub audio-chat dataset: `messages` plus an `audios` list of `Audio` clips; read at decode=False (no
    torchcodec), from the repository's parquet files."""
    message = {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
    rows = [{"messages": [{"role": "user", "content": [{"type": "audio", "text": None},
                                                      {"type": "text", "text": "What is it?"}]},
                          {"role": "assistant", "content": [{"type": "text", "text": "A tone."}]}],
             "audios": [{"bytes": clip_bytes(440), "path": None}]}]
    stored = Features({"messages": List(message), "audios": List({"bytes": Value("binary"), "path": Value("string")})})
    path = tmp_path / "owner/audio-chat/data/train-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    Dataset.from_list(rows, features=stored).cast_column("audios", List(Audio(sampling_rate=16000))).to_parquet(str(path))
    mixture = ChatMixtureArguments(
        chat_datasets=[{"path": "owner/audio-chat", "data_files": {"train": "data/train-*.parquet"}, "audios_column": "audios"}],
        data_roots={"hf://datasets/": f"{tmp_path}/"},
    )
    example = load_chat_mixture(mixture)["train"][0]
    assert example["audios"][0]["bytes"][:4] == b"fLaC"
    assert example["messages"][1]["content"][0]["text"] == "A tone."


def test_sft_recipe_data_section_loads_as_a_chat_source():
    data_file = yaml.safe_load(SFT_RECIPE.read_text())["dataset_name"]
    data = load_chat_mixture(ChatMixtureArguments(chat_datasets=[{"path": str(REPO_ROOT / data_file)}]))
    lines = (REPO_ROOT / data_file).read_text().splitlines()
    assert len(data["train"]) == len(lines)
    assert [row["messages"] for row in data["train"]][0][0]["role"] == json.loads(lines[0])["messages"][0]["role"]
