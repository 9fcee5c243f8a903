"""The original evaluation's normalisation and metrics, on hand-checked examples."""

import dataclasses
import math

import pytest

from transformers_qwen_audio.evaluation import BenchmarkSpec, markdown_table, model_card_data, resolve_benchmark
from transformers_qwen_audio.evaluation import metrics
from transformers_qwen_audio.evaluation.benchmarks import BENCHMARKS_DIR


def test_remove_special_tokens_as_the_original():
    assert metrics.remove_special_tokens("<|en|>hello <|0.50|>world , ok .") == "hello world, ok."
    assert metrics.remove_special_tokens("你 好<|sil|>世界", language="zh") == "你好世界"


def test_corpus_wer_is_total_edits_over_total_reference_words():
    # 1 substitution in 4 words + 1 deletion in 2 words = 2 / 6; case and special tokens do not count.
    wer = metrics.corpus_word_error_rate(["go left now please", "red door"], ["Go right now please<|endoftext|>", "red"])
    assert wer == pytest.approx(2 / 6)
    assert metrics.corpus_word_error_rate(["a b"], [""]) == 1.0
    # Chinese by character: 1 wrong character of 4.
    assert metrics.corpus_word_error_rate(["你好世界"], ["你好世介"], language="zh") == pytest.approx(0.25)
    with pytest.raises(ValueError, match="references"):
        metrics.corpus_word_error_rate(["a"], ["a", "b"])


def test_english_normalizer_wer_is_the_open_asr_leaderboards():
    # Whisper's English normaliser with its spelling mapping: British spellings, numbers and currency agree; the
    # original's normalisation and the basic one count them as errors.
    references = ["The colour of the theatre is grey.", "he paid twenty five dollars"]
    hypotheses = ["the color of the theater is gray", "he paid $25"]
    assert metrics.english_normalizer_word_error_rate(references, hypotheses) == 0.0
    assert metrics.whisper_basic_word_error_rate(references, hypotheses) > 0.3
    assert metrics.corpus_word_error_rate(references, hypotheses) > 0.3


def test_bleu_tokenizer_follows_the_output_language():
    assert metrics.corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    assert metrics.corpus_bleu(["我爱北京天安门"], ["我爱北京天安门"], output_language="zh") == pytest.approx(100.0)
    assert metrics.corpus_bleu(["the cat sat on the mat"], ["a dog ran"]) < 10


def test_accuracy_is_exact_match_of_the_stripped_reply():
    assert metrics.exact_match_accuracy(["tone", "chirp", "white noise"], [" tone", "chirp ", "white"]) == pytest.approx(2 / 3)
    assert metrics.yes_no_accuracy(["yes", "dog", "no"], ["yes", "dog", "yes"]) == 0.5
    assert metrics.instrument_accuracy(["<|instrument|>guitar<|sonic|>bright"], ["<|instrument|>guitar"]) == 1.0


def test_word_boundary_errors_on_matched_words():
    reference = [[{"word": "go", "start": 0.5, "end": 0.8}, {"word": "left", "start": 1.0, "end": 1.4}]]
    # "go" is 0.02 s late at both ends; "left" is misrecognised and does not count.
    errors = metrics.word_boundary_errors(reference, ["<|0.00|><|sil|><|0.52|>go<|0.82|><|sil|><|1.00|>right<|1.40|>"])
    assert errors["matched_words"] == 1 and errors["reference_words"] == 2
    assert errors["average_shift"] == pytest.approx(0.04) and errors["boundary_mae"] == pytest.approx(0.02)
    assert math.isnan(metrics.word_boundary_errors(reference, ["nothing timed"])["boundary_mae"])


def test_every_shipped_benchmark_parses_and_names_the_papers_figure():
    names = sorted(path.stem for path in BENCHMARKS_DIR.glob("*.yaml"))
    assert {"tiny_asr", "tiny_srwt", "tiny_sounds", "librispeech_test_clean", "clothoaqa", "covost2_en_de"} <= set(names)
    paper = {}
    for name in names:
        spec = BenchmarkSpec.from_yaml(resolve_benchmark(name))
        paper.update({f"{spec.result_key}/{metric}": value for metric, value in spec.paper_figures.items()})
    assert paper["librispeech_test_clean/wer"] == 0.020 and paper["librispeech_test_other/wer"] == 0.042
    assert paper["clothoaqa.clothoaqa_test/accuracy"] == 0.579 and paper["covost2_en_zh/bleu"] == 41.5
    assert paper["aishell1_test/wer"] == 0.013  # the test source of the jsonl that also holds dev
    assert BenchmarkSpec.from_yaml(resolve_benchmark("clothoaqa")).max_new_tokens == 4
    assert BenchmarkSpec.from_yaml(resolve_benchmark("clotho")).prompt.endswith("<|caption_clotho|>")


def test_bad_benchmark_yaml_is_refused_with_its_reason(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: asr\ndataset: x\nprompt: p\nmax_new_tokens: 0\ncolumns: {reference: text}\n")
    with pytest.raises(ValueError, match="max_new_tokens"):
        BenchmarkSpec.from_yaml(path)
    path.write_text("task: dance\ndataset: x\nprompt: p\nmax_new_tokens: 4\n")
    with pytest.raises(ValueError, match="unknown task"):
        BenchmarkSpec.from_yaml(path)
    path.write_text("task: asr\ndataset: x\nprompt: p\nmax_new_tokens: 4\ncolumns: {reference: t}\nspeed: 3\n")
    with pytest.raises(ValueError, match="unknown key"):
        BenchmarkSpec.from_yaml(path)
    with pytest.raises(FileNotFoundError, match="No benchmark"):
        resolve_benchmark("no_such_benchmark")
    path.write_text("task: asr\ndataset: x\nprompt: p\nmax_new_tokens: 4\ncolumns: {reference: t, speaker: s}\n")
    with pytest.raises(ValueError, match=r"unknown column role\(s\) \['speaker'\]"):
        BenchmarkSpec.from_yaml(path)
    path.write_text("task: asr\ndataset: x\nprompt: p\nmax_new_tokens: 4\ncolumns: {reference: t\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        BenchmarkSpec.from_yaml(path)
    base = dict(name="b", task="asr", dataset="x", prompt="p", max_new_tokens=4, columns={"reference": "gt"})
    with pytest.raises(ValueError, match="`sources` needs the column of a row's source"):
        BenchmarkSpec(**base, sources=["a_test"])
    with pytest.raises(ValueError, match="either per source in `sources` or once in `paper`"):
        BenchmarkSpec(**{**base, "columns": {"reference": "gt", "source": "source"}}, sources={"a": {"wer": 1.0}},
                      paper={"wer": 1.0})
    with pytest.raises(ValueError, match="not the scored split 'test'"):
        BenchmarkSpec(**base, data_files={"train": "train/*.parquet"})


def test_a_spec_of_several_sources_is_one_spec_per_source():
    spec = BenchmarkSpec(name="aishell1", task="asr", dataset="x.jsonl", prompt="p", max_new_tokens=4,
                         columns={"reference": "gt", "source": "source"},
                         sources={"aishell1_dev": None, "aishell1_test": {"wer": 0.013}})
    parts = spec.per_source()
    assert [(part.source, part.result_key, part.paper_figures) for part in parts] == [
        ("aishell1_dev", "aishell1.aishell1_dev", {}), ("aishell1_test", "aishell1.aishell1_test", {"wer": 0.013})]
    # What predictions depend on: not the paper's figures nor max_samples, but the source and the generation.
    assert parts[0].fingerprint() != parts[1].fingerprint()
    assert parts[1].fingerprint() == dataclasses.replace(parts[1], max_samples=3, paper_source="x").fingerprint()
    assert parts[1].fingerprint() != dataclasses.replace(parts[1], max_new_tokens=5).fingerprint()


def test_table_and_model_index():
    results = [{"benchmark": "librispeech_test_clean", "task": "asr", "dataset": "openslr/librispeech_asr",
                "split": "test", "num_samples": 3, "metrics": {"wer": 0.05}, "paper": {"wer": 0.02}}]
    table = markdown_table(results)
    assert "| librispeech_test_clean | wer ↓ | 0.05 | 0.02 | 3 |" in table
    card = model_card_data(results, "tiny")
    assert card.eval_results[0].metric_value == 0.05 and card.eval_results[0].task_type == "automatic-speech-recognition"
    assert "model-index" in card.to_yaml()
    # One row and one model-index dataset per source of the original's jsonl, each next to its own figure.
    per_source = [{"benchmark": "clothoaqa", "source": source, "task": "aqa", "dataset": "data/st/clothoaqa_eval.jsonl",
                   "split": "test", "num_samples": count, "metrics": {"accuracy": accuracy}, "paper": paper,
                   "skipped": skipped}
                  for source, count, accuracy, paper, skipped in [
                      ("clothoaqa_val", 4, 0.5, {}, []),
                      ("clothoaqa_test", 6, 0.25, {"accuracy": 0.579}, [{"row": 7, "error": "NotAudioError: x"}])]]
    table = markdown_table(per_source)
    assert "| clothoaqa (clothoaqa_val) | accuracy | 0.5 | – | 4 |" in table
    assert "| clothoaqa (clothoaqa_test) | accuracy | 0.25 | 0.579 | 6 |" in table
    assert "Skipped as undecodable in clothoaqa (clothoaqa_test): row 7 (NotAudioError: x)" in table
    assert [(entry.dataset_name, entry.dataset_split) for entry in model_card_data(per_source, "tiny").eval_results] == [
        ("clothoaqa", "clothoaqa_val"), ("clothoaqa", "clothoaqa_test")]


def test_caption_scores_offline():
    pytest.importorskip("pycocoevalcap", reason="caption metrics are the optional [captions] extra")
    references = [["a dog barks loudly.", "A dog is barking!"], ["rain falls on a roof", "heavy rain on the roof"]]
    perfect = metrics.caption_scores(references, ["a dog barks loudly", "heavy rain on the roof"])
    wrong = metrics.caption_scores(references, ["music plays", "a car passes by"])
    assert set(perfect) == {"BLEU_1", "BLEU_2", "BLEU_3", "BLEU_4", "ROUGE_L", "CIDEr"}
    assert perfect["CIDEr"] > wrong["CIDEr"] and perfect["BLEU_1"] == pytest.approx(1.0)
    assert wrong["ROUGE_L"] < 0.3


def test_evaluation_depends_on_no_training_module():
    # Evaluating a checkpoint needs neither TRL nor the training stack: the layers go data -> model -> evaluation.
    import ast
    from pathlib import Path

    import transformers_qwen_audio.evaluation as evaluation

    for path in Path(evaluation.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(("..training", "transformers_qwen_audio.training", "trl")), (path.name, name)
