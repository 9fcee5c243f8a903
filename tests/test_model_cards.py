"""The model card templates of `model_cards/`: each renders with realistic data, its metadata survives a save and a
load, and bad input is refused before a card with holes is written."""

import configparser
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard import metadata_load

from transformers_qwen_audio.cards import render_card, template_names
from transformers_qwen_audio.convert import converted_by_us, render_model_card
from transformers_qwen_audio.evaluation import BenchmarkSpec, evaluate_checkpoint, markdown_table, model_card_data
from transformers_qwen_audio.evaluation import runner
from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint


REPOSITORY = Path(__file__).resolve().parents[1]
# Qwen-Audio-Chat's dimensions, as convert reads them from the loaded model.
RELEASED = SimpleNamespace(config=SimpleNamespace(
    audio_config=SimpleNamespace(encoder_layers=32, d_model=1280),
    text_config=SimpleNamespace(num_hidden_layers=32, hidden_size=4096, vocab_size=155947),
))
CONVERTED_FILES = ["README.md", "config.json", "generation_config.json", "model-00001-of-00002.safetensors",
                   "model-00002-of-00002.safetensors", "model.safetensors.index.json", "qwen.tiktoken"]
# Two benchmarks as the evaluation returns them (the tiny held-out split of the main job).
RESULTS = [
    {"benchmark": "tiny_srwt", "task": "srwt", "dataset": "data/tiny-multitask", "split": "test", "num_samples": 200,
     "metrics": {"wer": 0.068, "boundary_error": 0.071, "matched_words": 700, "reference_words": 720},
     "paper": {}},
    {"benchmark": "tiny_sounds", "task": "classification", "dataset": "data/tiny-multitask", "split": "test",
     "num_samples": 100, "metrics": {"accuracy": 1.0}, "paper": {}},
]


def test_the_shipped_templates_are_package_data():
    assert template_names() == ["converted", "evaluated"]
    setup = configparser.ConfigParser()
    setup.read(REPOSITORY / "setup.cfg")
    assert "model_cards/*.md" in setup["options.package_data"]["transformers_qwen_audio"]


@pytest.mark.parametrize("base_model", ["Qwen/Qwen-Audio-Chat", None])
def test_converted_card_metadata_round_trips_and_marks_the_folder_as_converts(tmp_path, base_model):
    command = "python -m transformers_qwen_audio.convert Qwen/Qwen-Audio-Chat out --dtype bfloat16"
    text = render_model_card(RELEASED, "Qwen-Audio-Chat-native", base_model=base_model, dtype="bfloat16",
                             command=command, files=CONVERTED_FILES)
    for name in CONVERTED_FILES:
        (tmp_path / name).write_text(text if name == "README.md" else "")

    metadata = metadata_load(tmp_path / "README.md")
    assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == "audio-text-to-text"
    assert metadata["license"] == "other" and metadata["license_name"] == "tongyi-qianwen"
    assert metadata["tags"] == ["audio", "qwen-audio", "transformers-qwen-audio"]
    assert metadata["converted_files"] == sorted(CONVERTED_FILES)
    assert metadata["converted_with"].startswith("transformers-qwen-audio ")
    assert metadata.get("base_model") == base_model  # absent when unknown: no made-up id
    assert converted_by_us(tmp_path) == (True, "")

    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.to_dict() == ModelCard(str(card)).data.to_dict()
    assert card.text.startswith("<!-- Written by `convert`")
    assert "# Qwen-Audio-Chat-native" in card.text and f"`{command}`" in card.text
    assert "(32 layers, width 1280)" in card.text and "(32 layers, hidden 4096, vocabulary 155947)" in card.text
    assert 'AutoModelForCausalLM.from_pretrained("Qwen-Audio-Chat-native")' in card.text
    assert '[{"role": "user", "content": [' in card.text  # the snippet's braces are text, not Jinja
    source = "[Qwen/Qwen-Audio-Chat](https://huggingface.co/Qwen/Qwen-Audio-Chat)" if base_model else "A released Qwen-Audio checkpoint"
    assert source in card.text and "{{" not in card.text and "{%" not in card.text
    assert str(card).endswith("see the original repository.\n")


def test_evaluated_card_holds_the_results_in_its_model_index(tmp_path):
    card = render_card("evaluated", model_card_data(RESULTS, "model"), model_name="model",
                       results_table=markdown_table(RESULTS))
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")

    assert loaded.data.model_name == "model" and loaded.data.library_name == "transformers"
    figures = {(result.dataset_name, result.metric_name): result.metric_value for result in loaded.data.eval_results}
    assert figures == {("tiny_srwt", "wer"): 0.068, ("tiny_srwt", "boundary_error"): 0.071,
                       ("tiny_sounds", "accuracy"): 1.0}
    assert {result.task_type for result in loaded.data.eval_results} == {"automatic-speech-recognition",
                                                                         "audio-classification"}
    assert "model-index" in metadata_load(tmp_path / "README.md")
    assert loaded.text.startswith("\n# model\n") and "| tiny_sounds | accuracy | 1 | – | 100 |" in loaded.text


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_released_checkpoint(tmp_path_factory.mktemp("cards") / "model")


@pytest.mark.parametrize("trained", [False, True], ids=["no card", "the trainer's card"])
def test_the_evaluation_writes_its_results_into_the_checkpoints_card(checkpoint, monkeypatch, trained):
    """What `evaluate_checkpoint(update_model_card=True)` does to a checkpoint (the main job's, after training)."""
    card_path = checkpoint / "README.md"
    card_path.unlink(missing_ok=True)
    trainer_text = "\n# model\n\nThis model was trained from scratch on the data/tiny-multitask/speech dataset.\n"
    if trained:
        card_path.write_text("---\nlibrary_name: transformers\ntags:\n- pretraining\n---\n" + trainer_text)
    by_name = {result["benchmark"]: {**result, "predictions": []} for result in RESULTS}
    monkeypatch.setattr(runner, "run_benchmark", lambda model, processor, spec, *args, **kwargs: by_name[spec.name])
    specs = [BenchmarkSpec(name=result["benchmark"], task=result["task"], dataset=result["dataset"], prompt="p",
                           max_new_tokens=4, columns={"reference": "label", "words": "words"}) for result in RESULTS]
    evaluate_checkpoint(str(checkpoint), specs, output_dir=str(checkpoint.parent / "eval"), update_model_card=True,
                        progress=False)

    card = ModelCard.load(card_path)
    assert card.data.model_name == "model" and card.data.library_name == "transformers"
    assert {(result.dataset_name, result.metric_name) for result in card.data.eval_results} == {
        ("tiny_srwt", "wer"), ("tiny_srwt", "boundary_error"), ("tiny_sounds", "accuracy")}
    if trained:
        assert card.text == trainer_text and card.data.tags == ["pretraining"]
    else:
        assert card.text.startswith("\n# model\n") and "| tiny_srwt | wer ↓ | 0.068 | – | 200 |" in card.text


def test_an_unknown_template_or_a_missing_field_is_refused():
    with pytest.raises(ValueError, match="No model card template 'trained'; the templates are: converted, evaluated"):
        render_card("trained", ModelCardData())
    with pytest.raises(ValueError, match="needs the fields: model_name, results_table"):
        render_card("evaluated", model_card_data(RESULTS, "model"))  # the model-index's name is no template field
    with pytest.raises(ValueError, match="needs the fields: audio_layers, audio_width, base_model, command"):
        render_card("converted", ModelCardData(), model_name="m", project_url="u", dtype="float32", text_layers=2,
                    text_hidden=8, vocab_size=10, package_version="0", transformers_version="5")
    with pytest.raises(TypeError, match="must be a huggingface_hub.ModelCardData, got dict"):
        render_card("evaluated", {"model_name": "model"}, model_name="model", results_table="")
