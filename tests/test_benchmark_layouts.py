"""Every paper benchmark YAML on small offline datasets with the exact layout and schema it reads (the original's
evaluation jsonl with its `source` values; LibriSpeech's and fixie-ai/covost2's parquet files under a local mirror of
`hf://datasets/`), only the data roots rewritten: scores per source, only the scored split read, undecodable clips
reported and skipped or stopping the benchmark, an interrupted run resumed."""

import dataclasses
import io
import json

import pytest
import soundfile
import yaml

from transformers_qwen_audio.evaluation import (
    BenchmarkSpec, TooManyBadClipsError, evaluate_checkpoint, resolve_benchmark,
)
from transformers_qwen_audio.evaluation import runner
from transformers_qwen_audio.evaluation.benchmarks import BENCHMARKS_DIR, load_benchmark_rows
from transformers_qwen_audio.recipes.evaluate import main
from transformers_qwen_audio.tiny_checkpoint import SAMPLING_RATE, build_released_checkpoint, chirp


PAPER_BENCHMARKS = sorted(path.stem for path in BENCHMARKS_DIR.glob("*.yaml") if not path.stem.startswith("tiny_"))
COVOST2_CONFIGS = {"covost2_de_en": "de_en", "covost2_en_de": "en_de", "covost2_en_zh": "en_zh-CN",
                   "covost2_es_en": "es_en", "covost2_fr_en": "fr_en", "covost2_it_en": "it_en",
                   "covost2_zh_en": "zh-CN_en"}
# The original's jsonl files (eval_audio/evaluate_*.py's ds_collections paths) and the sources each holds.
JSONL_SOURCES = {
    "data/asr/aishell1_eval.jsonl": {"aishell1_dev": 1, "aishell1_test": 2},
    "data/caption/clotho_eval.jsonl": {"clotho": 2},
    "data/st/clothoaqa_eval.jsonl": {"clothoaqa_val": 1, "clothoaqa_test": 2},
    "data/asc/cochlscene_eval.jsonl": {"cochlscene": 2},
    "data/asc/tut2017_eval.jsonl": {"tut2017": 2},
    "data/emotion/meld_eval.jsonl": {"meld": 2},
    "data/vsc/vocalsound_eval.jsonl": {"vocalsound": 2},
    "data/mna/nsynth_eval.jsonl": {"nsynth": 2},
}
NOT_PARQUET = b"these bytes are not parquet: a benchmark that reads this file fails"


def wav_bytes(seconds: float = 0.4) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, chirp(seconds), SAMPLING_RATE, format="WAV")
    return buffer.getvalue()


def write_parquet(path, columns: dict, num_rows: int) -> None:
    """A parquet file as the Hub's datasets write them: audio as a `{bytes, path}` struct, the features in the
    schema's `huggingface` metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, features = {}, {}
    for name, kind in columns.items():
        if name == "audio":
            arrays[name] = pa.array([{"bytes": wav_bytes(), "path": f"{index}.flac"} for index in range(num_rows)],
                                    pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
            features[name] = {"_type": "Audio", "sampling_rate": 16000}
        else:
            arrays[name] = pa.array([index if kind == "int64" else f"{name} {index}" for index in range(num_rows)])
            features[name] = {"_type": "Value", "dtype": kind}
    table = pa.table(arrays)
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def build_hub_mirror(root) -> None:
    """`ROOT/<owner>/<name>/...` as the Hub repositories name their files; the splits not scored are not parquet."""
    librispeech = root / "openslr" / "librispeech_asr"
    for config in ("clean", "other"):
        write_parquet(librispeech / config / "test" / "0000.parquet", {"file": "string", "audio": None,
                      "text": "string", "speaker_id": "int64", "chapter_id": "int64", "id": "string"}, num_rows=2)
        (librispeech / config / "validation").mkdir(parents=True)
        (librispeech / config / "validation" / "0000.parquet").write_bytes(NOT_PARQUET)
    (librispeech / "clean" / "train.100").mkdir()
    (librispeech / "clean" / "train.100" / "0000.parquet").write_bytes(NOT_PARQUET)
    for config in COVOST2_CONFIGS.values():
        folder = root / "fixie-ai" / "covost2" / config
        write_parquet(folder / "test-00000-of-00001.parquet", {"client_id": "string", "file": "string", "audio": None,
                      "sentence": "string", "translation": "string", "id": "string"}, num_rows=2)
        for split in ("train", "validation"):
            (folder / f"{split}-00000-of-00001.parquet").write_bytes(NOT_PARQUET)


def build_original_jsonl(root) -> None:
    """The original's jsonl lines (`audio` relative to the working directory, `gt`, `source`; AQA adds `question`)."""
    for relative, sources in JSONL_SOURCES.items():
        jsonl = root / relative
        audio_dir = jsonl.parent / jsonl.stem.removesuffix("_eval")
        audio_dir.mkdir(parents=True, exist_ok=True)
        lines = []
        for source, count in sources.items():
            for index in range(count):
                clip = audio_dir / f"{source}_{index}.wav"
                clip.write_bytes(wav_bytes())
                line = {"audio": str(clip.relative_to(root)), "gt": "yes" if "aqa" in source else f"label {index}",
                        "source": source}
                if "clothoaqa" in source:
                    line["question"] = f"Is it loud {index}?"
                if "nsynth" in source:
                    line["gt"] = "<|pitch|><|midi_pitch_60|><|velocity|><|midi_velocity_100|><|instrument|>keyboard"
                lines.append(json.dumps(line))
        jsonl.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    build_hub_mirror(root / "hub")
    build_original_jsonl(root / "work")
    return root, build_released_checkpoint(root / "model")


@pytest.fixture
def in_work_dir(layout, monkeypatch):
    root, model = layout
    monkeypatch.chdir(root / "work")  # the original's jsonl paths are relative to the working directory
    return root, model


def spec(name: str, **changes) -> BenchmarkSpec:
    return dataclasses.replace(BenchmarkSpec.from_yaml(resolve_benchmark(name)), **changes)


def test_every_paper_benchmark_runs_on_its_layout_per_source_next_to_the_papers_figure(in_work_dir, tmp_path):
    pytest.importorskip("pycocoevalcap", reason="clotho's caption metrics are the optional [captions] extra")
    root, model = in_work_dir
    # The YAMLs as shipped but for the reply length: the tiny random model rarely stops before 256 tokens.
    specs = [spec(name, max_new_tokens=min(8, spec(name).max_new_tokens)) for name in PAPER_BENCHMARKS]
    results = evaluate_checkpoint(str(model), specs, output_dir=str(tmp_path), progress=False,
                                  hub_datasets_root=str(root / "hub"))
    by_label = {(result["benchmark"], result["source"]): result for result in results}
    assert len(results) == len(PAPER_BENCHMARKS)  # each scores one source or split
    # The jsonl of two sources: only the paper's, with its figure; the other source's rows are not scored.
    assert by_label["clothoaqa", "clothoaqa_test"]["num_samples"] == 2
    assert by_label["clothoaqa", "clothoaqa_test"]["paper"] == {"accuracy": 0.579}
    assert by_label["aishell1_test", "aishell1_test"]["num_samples"] == 2
    assert by_label["aishell1_test", "aishell1_test"]["paper"] == {"wer": 0.013}
    for name in ("librispeech_test_clean", "librispeech_test_other", *COVOST2_CONFIGS):
        assert by_label[name, None]["num_samples"] == 2 and by_label[name, None]["split"] == "test"
    assert set(by_label["librispeech_test_clean", None]["metrics"]) == {"wer", "wer_whisper_basic",
                                                                         "wer_english_normalizer"}
    assert by_label["covost2_en_zh", None]["dataset_config"] == "en_zh-CN"

    table = (tmp_path / "results.md").read_text()
    assert "| clothoaqa (clothoaqa_test) | accuracy |" in table and "| 0.579 | 2 |" in table
    assert "| librispeech_test_clean | wer_english_normalizer ↓ |" in table
    index = yaml.safe_load((tmp_path / "model_index.yaml").read_text())["model-index"][0]["results"]
    splits = {(entry["dataset"]["name"], entry["dataset"]["split"]) for entry in index}
    assert {("clothoaqa", "clothoaqa_test"), ("librispeech_test_clean", "test")} <= splits
    lines = (tmp_path / "predictions" / "clothoaqa.clothoaqa_test.jsonl").read_text().splitlines()
    assert len(lines) == 3 and {json.loads(line)["source"] for line in lines[1:]} == {"clothoaqa_test"}


def test_only_the_scored_split_is_read(layout):
    root, _ = layout
    rows, _ = load_benchmark_rows(spec("librispeech_test_clean"), hub_datasets_root=root / "hub")
    assert len(rows) == 2 and isinstance(rows[0]["audio"]["bytes"], bytes)
    # The other splits' files are there and unreadable: reading them is what the test above did not do.
    for name, other in (("librispeech_test_clean", "validation/0000.parquet"), ("covost2_fr_en", "train-*.parquet")):
        prefix = "clean/" if name.startswith("librispeech") else "fr_en/"
        with pytest.raises(Exception):
            load_benchmark_rows(spec(name, split="validation", data_files={"validation": prefix + other}),
                                hub_datasets_root=root / "hub")


def test_every_named_source_is_its_own_result_and_sources_are_never_mixed(in_work_dir, tmp_path):
    root, model = in_work_dir
    both = spec("aishell1_test", sources={"aishell1_dev": {}, "aishell1_test": {"wer": 0.013}}, max_new_tokens=4)
    results = evaluate_checkpoint(str(model), [both], output_dir=str(tmp_path), progress=False)
    assert [(result["source"], result["num_samples"], result["paper"]) for result in results] == [
        ("aishell1_dev", 1, {}), ("aishell1_test", 2, {"wer": 0.013})]
    assert "| aishell1_test (aishell1_dev) | wer ↓ |" in (tmp_path / "results.md").read_text()
    with pytest.raises(ValueError, match=r"holds the sources \['clothoaqa_test', 'clothoaqa_val'\].*name the ones"):
        load_benchmark_rows(spec("clothoaqa", sources=None))
    with pytest.raises(ValueError, match=r"no rows of the source\(s\) \['clothoaqa_eval'\]"):
        load_benchmark_rows(spec("clothoaqa", sources=["clothoaqa_eval"]))


def add_bad_clip(root, count: int = 2) -> str:
    """MELD's jsonl with `count` good clips and one mp4 that nothing can decode."""
    jsonl = root / "work" / "data" / "emotion" / "meld_eval.jsonl"
    (jsonl.parent / "meld" / "dia7_utt3.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 but cut short")
    lines = jsonl.read_text().splitlines()[:count]
    lines.insert(1, json.dumps({"audio": "data/emotion/meld/dia7_utt3.mp4", "gt": "joy", "source": "meld"}))
    bad = root / "work" / "data" / "emotion" / "meld_bad_eval.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    return str(bad.relative_to(root / "work"))


def test_an_undecodable_clip_is_reported_and_skipped_or_stops_the_benchmark(in_work_dir, tmp_path):
    root, model = in_work_dir
    meld = spec("meld", dataset=add_bad_clip(root))
    results = evaluate_checkpoint(str(model), [meld], output_dir=str(tmp_path / "lenient"), progress=False,
                                  max_bad_clip_fraction=0.34)
    assert results[0]["num_samples"] == 2
    [skipped] = results[0]["skipped"]
    assert skipped["row"] == 1 and skipped["source"] == "meld" and "dia7_utt3.mp4" in skipped["error"]
    assert "Skipped as undecodable in meld: row 1" in (tmp_path / "lenient" / "results.md").read_text()

    with pytest.raises(TooManyBadClipsError, match=r"1 of 3 clips could not be decoded.*row 1 \(meld\): .*dia7_utt3"):
        evaluate_checkpoint(str(model), [meld], output_dir=str(tmp_path / "strict"), progress=False,
                            max_bad_clip_fraction=0.0, batch_size=1)
    written = (tmp_path / "strict" / "predictions" / "meld.jsonl").read_text().splitlines()
    assert [json.loads(line).get("row") for line in written[1:]] == [0, 1]  # kept what it did before stopping


def test_an_interrupted_run_resumes_and_a_changed_spec_or_model_starts_over(layout, tmp_path, monkeypatch, capsys):
    root, model = layout
    librispeech = spec("librispeech_test_clean", max_new_tokens=6)
    calls = []
    generate_batch = runner.generate_batch

    def counted(*args, **kwargs):
        calls.append(len(args[2]))
        if interrupt_at == len(calls):
            raise KeyboardInterrupt
        return generate_batch(*args, **kwargs)

    monkeypatch.setattr(runner, "generate_batch", counted)
    options = dict(output_dir=str(tmp_path / "eval"), progress=False, batch_size=1, hub_datasets_root=str(root / "hub"))
    interrupt_at = 2
    with pytest.raises(KeyboardInterrupt):
        evaluate_checkpoint(str(model), [librispeech], **options)
    interrupt_at, calls[:] = None, []
    resumed = evaluate_checkpoint(str(model), [librispeech], **options)
    assert calls == [1] and "resuming, 1 of 2 rows already done" in capsys.readouterr().out
    calls[:] = []
    fresh = evaluate_checkpoint(str(model), [librispeech], **{**options, "output_dir": str(tmp_path / "fresh")})
    assert resumed[0]["predictions"] == fresh[0]["predictions"] and resumed[0]["metrics"] == fresh[0]["metrics"]

    calls[:] = []
    evaluate_checkpoint(str(model), [dataclasses.replace(librispeech, max_new_tokens=5)], **options)
    assert calls == [1, 1] and "another checkpoint or benchmark spec: starting over" in capsys.readouterr().out
    calls[:] = []
    evaluate_checkpoint(str(model), [dataclasses.replace(librispeech, max_new_tokens=5)], dtype="float32", **options)
    assert calls == [1, 1] and "starting over" in capsys.readouterr().out


def one_line_exit(argv) -> str:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    message = str(stopped.value.code)
    assert message.startswith("evaluate: error: ") and "\n" not in message
    return message


def test_user_errors_are_one_line(in_work_dir, tmp_path):
    root, model = in_work_dir
    assert one_line_exit(["--model_name_or_path", str(tmp_path / "missing")]).endswith(
        f"The checkpoint folder {tmp_path / 'missing'} does not exist.")
    typo = tmp_path / "typo.yaml"
    typo.write_text(resolve_benchmark("meld").read_text().replace("max_new_tokens:", "max_new_token:"))
    assert "unknown key(s) ['max_new_token']" in one_line_exit(["--model_name_or_path", str(model), "--benchmarks",
                                                                 str(typo)])
    missing = tmp_path / "missing_data.yaml"
    missing.write_text(resolve_benchmark("meld").read_text().replace("data/emotion/meld_eval.jsonl", "data/no.jsonl"))
    assert "the dataset file data/no.jsonl does not exist" in one_line_exit(
        ["--model_name_or_path", str(model), "--benchmarks", str(missing), "--output_dir", str(tmp_path / "out")])
    empty = tmp_path / "empty.yaml"
    empty.write_text(resolve_benchmark("meld").read_text() + 'where: {gt: "no such label"}\n')
    assert "has no rows in split 'test'" in one_line_exit(
        ["--model_name_or_path", str(model), "--benchmarks", str(empty), "--output_dir", str(tmp_path / "out")])
