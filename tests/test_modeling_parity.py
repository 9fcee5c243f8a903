"""The native model reproduces the original implementation: logits, greedy tokens, train-mode loss."""

import pytest
import torch
from transformers import AutoModelForCausalLM

import transformers_qwen_audio  # noqa: F401  (registers the Auto classes)
from reference_cases import (
    checkpoint_for_case,
    clip_inputs,
    left_pad,
    manifest,
    model_outputs,
    require_reference,
    run_chat_case,
    run_model_case,
)

MODEL_CASES = ["tiny.one_audio", "tiny.two_audios", "tiny.text_only", "tiny.short_audio", "tiny_seq48.long"]


@pytest.fixture(scope="module")
def load():
    cache = {}

    def _load(path):
        if path not in cache:
            cache[path] = AutoModelForCausalLM.from_pretrained(path).eval()
        return cache[path]

    return _load


def test_every_reference_case_is_covered():
    assert sorted(manifest()["model_cases"]) == sorted(MODEL_CASES)


@pytest.mark.parametrize("case_name", MODEL_CASES)
def test_logits_greedy_and_train_loss_match_original(load, case_name):
    figures = run_model_case(load(checkpoint_for_case(case_name)), case_name)
    assert figures["logits_error"] <= 1e-4
    assert figures["generated"] == figures["expected_generated"]
    assert figures["loss"] == pytest.approx(figures["expected_loss"], rel=1e-5)


def test_seq48_case_exercises_dynamic_ntk_and_logn(load):
    """Turning the original's long-context tricks off must change the logits of the long case: they are in play."""
    model = load(checkpoint_for_case("tiny_seq48.long"))
    case = manifest()["model_cases"]["tiny_seq48.long"]
    input_ids = model_outputs()["tiny_seq48.long.input_ids"].long()[None]
    assert input_ids.shape[1] > model.config.text_config.seq_length
    expected = model_outputs()["tiny_seq48.long.logits"]
    for flag in ("use_dynamic_ntk", "use_logn_attn"):
        setattr(model.config.text_config, flag, False)
        try:
            with torch.no_grad():
                logits = model(input_ids, **clip_inputs(case["audios"])).logits[0]
        finally:
            setattr(model.config.text_config, flag, True)
        assert (logits - expected).abs().max().item() > 1e-3, flag


def test_left_padded_batch_equals_each_sequence_alone(load):
    cases = ["tiny.one_audio", "tiny.two_audios", "tiny.text_only", "tiny.short_audio"]
    model = load(checkpoint_for_case(cases[0]))
    sequences = [model_outputs()[f"{name}.input_ids"].long() for name in cases]
    input_ids, attention_mask = left_pad(sequences)
    audio = clip_inputs([key for name in cases for key in manifest()["model_cases"][name]["audios"]])
    with torch.no_grad():
        logits = model(input_ids, attention_mask=attention_mask, **audio).logits
        generated = model.generate(
            input_ids, attention_mask=attention_mask, max_new_tokens=12, min_new_tokens=12, do_sample=False, **audio
        )[:, input_ids.shape[1] :]
    for row, name in enumerate(cases):
        length = len(sequences[row])
        assert (logits[row, -length:] - model_outputs()[f"{name}.logits"]).abs().max().item() <= 1e-4, name
        assert generated[row].tolist() == model_outputs()[f"{name}.generated"].tolist(), name


def test_batch_across_seq_length_keeps_each_sequence_alone(load):
    """On the seq_length=48 checkpoint, rows shorter and longer than 48 get their own NTK alpha and log-n scale."""
    model = load(checkpoint_for_case("tiny_seq48.long"))
    long_ids = model_outputs()["tiny_seq48.long.input_ids"].long()
    text_ids = model_outputs()["tiny.text_only.input_ids"].long()
    audio_keys = manifest()["model_cases"]["tiny_seq48.long"]["audios"]
    input_ids, attention_mask = left_pad([text_ids, long_ids])
    with torch.no_grad():
        batch = model.generate(
            input_ids, attention_mask=attention_mask, max_new_tokens=12, min_new_tokens=12, do_sample=False,
            **clip_inputs(audio_keys),
        )[:, input_ids.shape[1] :]
        alone = model.generate(text_ids[None], max_new_tokens=12, min_new_tokens=12, do_sample=False)
    assert batch[1].tolist() == model_outputs()["tiny_seq48.long.generated"].tolist()
    assert batch[0].tolist() == alone[0, len(text_ids) :].tolist()


def test_real_vocabulary_chat_cases(load):
    model = load(require_reference() / "tiny_real_vocab_original_layout")
    for index in range(len(manifest()["chat_cases"])):
        figures = run_chat_case(model, index)
        assert figures["last_logits_error"] <= 1e-4
        assert figures["generated"] == figures["expected_generated"]


def test_beam_search_copies_each_rows_clips_together(load):
    """num_beams copies rows; the clips of a two-clip row must follow their row, in a batch as alone."""
    cases = ["tiny.two_audios", "tiny.short_audio"]
    model = load(checkpoint_for_case(cases[0]))
    sequences = [model_outputs()[f"{name}.input_ids"].long() for name in cases]
    input_ids, attention_mask = left_pad(sequences)
    audio_keys = [key for name in cases for key in manifest()["model_cases"][name]["audios"]]
    settings = dict(max_new_tokens=6, num_beams=3, num_return_sequences=2, do_sample=False)
    with torch.no_grad():
        batch = model.generate(input_ids, attention_mask=attention_mask, **clip_inputs(audio_keys), **settings)
        for row, name in enumerate(cases):
            alone = model.generate(sequences[row][None], attention_mask=torch.ones_like(sequences[row][None]),
                                   **clip_inputs(manifest()["model_cases"][name]["audios"]), **settings)
            assert batch[2 * row : 2 * row + 2, input_ids.shape[1] :].tolist() == alone[:, len(sequences[row]) :].tolist()


@pytest.mark.parametrize("generation_settings", [{"cache_implementation": "static"}, {"use_cache": False}])
def test_static_cache_and_no_cache_generation_match_original(load, generation_settings):
    for name in ("tiny.two_audios", "tiny_seq48.long"):
        model = load(checkpoint_for_case(name))
        input_ids = model_outputs()[f"{name}.input_ids"].long()[None]
        with torch.no_grad():
            generated = model.generate(
                input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=12, min_new_tokens=12,
                do_sample=False, **clip_inputs(manifest()["model_cases"][name]["audios"]), **generation_settings,
            )[0, input_ids.shape[1] :]
        assert generated.tolist() == model_outputs()[f"{name}.generated"].tolist(), name
