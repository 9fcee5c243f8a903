"""The original evaluation's normalisation and metrics, on hand-checked examples."""

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
        paper.update({f"{name}/{metric}": value for metric, value in spec.paper.items()})
    assert paper["librispeech_test_clean/wer"] == 0.020 and paper["librispeech_test_other/wer"] == 0.042
    assert paper["clothoaqa/accuracy"] == 0.579 and paper["covost2_en_zh/bleu"] == 41.5
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


def test_table_and_model_index():
    results = [{"benchmark": "librispeech_test_clean", "task": "asr", "dataset": "openslr/librispeech_asr",
                "split": "test", "num_samples": 3, "metrics": {"wer": 0.05}, "paper": {"wer": 0.02}}]
    table = markdown_table(results)
    assert "| librispeech_test_clean | wer ↓ | 0.05 | 0.02 | 3 |" in table
    card = model_card_data(results, "tiny")
    assert card.eval_results[0].metric_value == 0.05 and card.eval_results[0].task_type == "automatic-speech-recognition"
    assert "model-index" in card.to_yaml()


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
