"""Tiny copies of the real sources the recipes name, with their published schema and file layout (a few rows each,
0.2 s clips): Hub parquet files named as the repositories name theirs (under `hub/<owner>/<name>/`, what
`hf://datasets/` is rewritten to), and the manual-download releases as they unpack (under `downloads/`, what
`data/` is rewritten to). Sources: recipes/qwen-audio/pretrain/DATA.md."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import soundfile
from datasets import Audio, ClassLabel, Dataset, Features, List, Value


CLIP_SECONDS = 0.2


def clip(frequency: float = 440.0, sampling_rate: int = 16000) -> np.ndarray:
    time_axis = np.arange(int(CLIP_SECONDS * sampling_rate)) / sampling_rate
    return (0.3 * np.sin(2 * np.pi * frequency * time_axis)).astype(np.float32)


def clip_bytes(frequency: float = 440.0, file_format: str = "FLAC") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, clip(frequency), 16000, format=file_format)
    return buffer.getvalue()


def write_clip(path: Path, frequency: float = 440.0, sampling_rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, clip(frequency, sampling_rate), sampling_rate)


def write_parquet(path: Path, rows: list[dict], features: dict, audio: Audio) -> None:
    """Rows with `{"bytes", "path"}` clips stored under an `Audio` feature, as the Hub's parquet files have it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = Features({**features, "audio": {"bytes": Value("binary"), "path": Value("string")}})
    Dataset.from_list(rows, features=stored).cast_column("audio", audio).to_parquet(str(path))


def librispeech(hub: Path) -> None:
    """openslr/librispeech_asr: `{config}/{split}/NNNN.parquet`; upper-case text."""
    features = {"file": Value("string"), "text": Value("string"), "speaker_id": Value("int64"),
                "chapter_id": Value("int64"), "id": Value("string")}
    for folder, texts in (("clean/train.360", ["HE HOPED THERE WOULD BE STEW", "AND THE OLD MAN SAID"]),
                          ("clean/validation", ["MISTER QUILTER IS THE APOSTLE"]),
                          ("other/train.500", ["THE CHAPTER ENDS HERE", "STUFF IT INTO YOU"])):
        rows = [{"file": f"{index}.flac", "audio": {"bytes": clip_bytes(300 + 100 * index), "path": f"{index}.flac"},
                 "text": text, "speaker_id": 100 + index, "chapter_id": 7, "id": f"100-7-{index:04d}"}
                for index, text in enumerate(texts)]
        write_parquet(hub / "openslr/librispeech_asr" / folder / "0000.parquet", rows, features, Audio(sampling_rate=16000))
    # The loading script the repository still holds: never run.
    (hub / "openslr/librispeech_asr/librispeech_asr.py").write_text("raise RuntimeError('a loading script ran')\n")


def librispeech_alignments(hub: Path) -> None:
    """gilkeyio/librispeech-alignments: `data/<split>-NNNNN-of-NNNNN.parquet`; MFA words, with an empty word (a
    silence) and an `<unk>`."""
    timed = {"end": Value("float64"), "start": Value("float64")}
    features = {"sex": Value("string"), "subset": Value("string"), "id": Value("string"), "transcript": Value("string"),
                "words": List({**timed, "word": Value("string")}), "phonemes": List({**timed, "phoneme": Value("string")})}
    words = [{"start": 0.0, "end": 0.03, "word": ""}, {"start": 0.03, "end": 0.09, "word": "he"},
             {"start": 0.09, "end": 0.12, "word": ""}, {"start": 0.12, "end": 0.16, "word": "hoped"},
             {"start": 0.16, "end": 0.19, "word": "<unk>"}]
    for split in ("train_clean_100", "dev_clean"):
        rows = [{"sex": "M", "subset": split, "id": f"103-1240-000{index}", "transcript": "he hoped stew",
                 "audio": {"bytes": clip_bytes(400 + index * 50), "path": None}, "words": words,
                 "phonemes": [{"start": 0.03, "end": 0.06, "phoneme": "HH"}]} for index in range(2)]
        write_parquet(hub / "gilkeyio/librispeech-alignments/data" / f"{split}-00000-of-00001.parquet", rows, features,
                      Audio())


def covost2(hub: Path) -> None:
    """fixie-ai/covost2: `<config>/<split>-NNNNN-of-NNNNN.parquet` with the facebook/covost2 columns."""
    features = {"client_id": Value("string"), "file": Value("string"), "sentence": Value("string"),
                "translation": Value("string"), "id": Value("string")}
    pairs = {"fr_en": ("Bonjour à tous.", "Hello everyone."), "zh-CN_en": ("你好。", "Hello."),
             "en_zh-CN": ("Good morning.", "早上好。")}
    for config, (sentence, translation) in pairs.items():
        for split in ("train", "validation"):
            rows = [{"client_id": "c0", "file": f"common_voice_{index}.mp3", "sentence": sentence,
                     "translation": translation, "id": f"common_voice_{index}",
                     "audio": {"bytes": clip_bytes(500 + index * 70), "path": f"common_voice_{index}.mp3"}}
                    for index in range(2)]
            write_parquet(hub / "fixie-ai/covost2" / config / f"{split}-00000-of-00001.parquet", rows, features,
                          Audio(sampling_rate=16000))


def aishell(downloads: Path) -> None:
    """AISHELL-1: data_aishell/wav/<split>/<speaker>/<id>.wav and one word-segmented transcript file; one clip of
    the train folder has no transcript line, as a few in the release."""
    root = downloads / "data_aishell"
    clips = {"train": ["S0002/BAC009S0002W0122", "S0002/BAC009S0002W0123", "S0003/BAC009S0003W0121"],
             "dev": ["S0724/BAC009S0724W0121"]}
    transcripts = {"BAC009S0002W0122": "而 对 楼市 成交 抑制 作用 最 大 的 限 购", "BAC009S0002W0123": "也 成为 地方 政府 的 眼中 钉",
                   "BAC009S0724W0121": "甚至 出现 交易 几乎 停滞 的 情况"}
    for split, names in clips.items():
        for index, name in enumerate(names):
            write_clip(root / "wav" / split / f"{name}.wav", 600 + 40 * index)
    (root / "transcript").mkdir(parents=True)
    (root / "transcript/aishell_transcript_v0.8.txt").write_text(
        "".join(f"{utterance} {text}\n" for utterance, text in transcripts.items()), encoding="utf-8")


def clotho(downloads: Path) -> None:
    """Clotho v2.1: clotho_captions_<split>.csv (file_name, caption_1..caption_5) beside <split>/ clips, Freesound
    titles as file names (spaces, commas)."""
    for split, names in (("development", ["river_mouth3.wav", "Rain, on a tin roof.wav"]), ("validation", ["birds.wav"])):
        for index, name in enumerate(names):
            write_clip(downloads / "clotho" / split / name, 700 + 30 * index, sampling_rate=44100)
        with open(downloads / "clotho" / f"clotho_captions_{split}.csv", "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["file_name", *(f"caption_{index}" for index in range(1, 6))])
            for name in names:
                writer.writerow([name, *(f"{name[:-4]} caption {index}" for index in range(1, 6))])


def clotho_aqa(downloads: Path) -> None:
    """Clotho-AQA: clotho_aqa_<split>.csv (file_name, QuestionText, answer, confidence; a row per annotator answer)
    beside audio_files/."""
    root = downloads / "clotho_aqa"
    for split, name in (("train", "river_mouth3.wav"), ("val", "birds.wav")):
        write_clip(root / "audio_files" / name, 800, sampling_rate=44100)
        with open(root / f"clotho_aqa_{split}.csv", "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["file_name", "QuestionText", "answer", "confidence"])
            for answer, confidence in (("yes", "yes"), ("yes", "maybe"), ("no", "yes")):
                writer.writerow([name, "Are there waves?", answer, confidence])


def cochlscene(downloads: Path) -> None:
    """CochlScene: <Split>/<Class>/<Class>_userNNNN_<id>_<n>.wav (44.1 kHz)."""
    for split, user in (("Train", "user0009"), ("Val", "user0101")):
        for index, scene in enumerate(("Bus", "Park", "SubwayStation")):
            write_clip(downloads / "CochlScene" / split / scene / f"{scene}_{user}_14897252_00{index}.wav", 900,
                       sampling_rate=44100)


def vocalsound(downloads: Path) -> None:
    """VocalSound 16 kHz: audio_16k/<f|m><speaker>_<n>_<label>.wav, the splits listed by datafiles/*.json with the
    paths of the machine that wrote them."""
    root = downloads / "vocalsound"
    splits = {"tr": ["f0003_0_cough.wav", "f0003_1_laughter.wav", "m0012_0_throatclearing.wav"],
              "val": ["f0101_0_sniff.wav"]}
    for split, names in splits.items():
        for name in names:
            write_clip(root / "audio_16k" / name, 1000)
        listing = {"data": [{"wav": f"/data/sls/scratch/yuangong/vocalsound/data/audio_16k/{name}",
                             "labels": "/m/vs_" + name[:-4].rsplit("_", 1)[1]} for name in names]}
        (root / "datafiles").mkdir(exist_ok=True)
        (root / "datafiles" / f"{split}.json").write_text(json.dumps(listing, indent=1))


def class_label_parquet(path: Path) -> list[str]:
    """A Hub classification set as most store their labels: a `ClassLabel` id (0 included) beside an `Audio` column."""
    names = ["cough", "laughter", "sneeze"]
    rows = [{"audio": {"bytes": clip_bytes(1100 + 50 * index, "WAV"), "path": None}, "label": index % 3}
            for index in range(4)]
    write_parquet(path, rows, {"label": ClassLabel(names=names)}, Audio(sampling_rate=16000))
    return names


def build_real_source_layouts(root: Path) -> dict[str, str]:
    """Every layout under `root`; returns the `data_roots` that point the recipes at it."""
    hub, downloads = root / "hub", root / "downloads"
    for build in (librispeech, librispeech_alignments, covost2):
        build(hub)
    for build in (aishell, clotho, clotho_aqa, cochlscene, vocalsound):
        build(downloads)
    return {"hf://datasets/": f"{hub}/", "data/": f"{downloads}/"}
