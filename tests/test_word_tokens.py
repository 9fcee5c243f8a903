"""Words given a token of their own before fine-tuning (`training.word_tokens`) and the tiny SFT recipe's list."""

import pytest
import torch
import yaml

from transformers_qwen_audio import QwenAudioConfig, QwenAudioForConditionalGeneration
from transformers_qwen_audio.data.sounds import SOUND_LABELS
from transformers_qwen_audio.data.tiny_multitask import WORDS
from transformers_qwen_audio.recipes import recipe_path
from transformers_qwen_audio.training.model_setup import byte_level_processor, model_from_config
from transformers_qwen_audio.training.word_tokens import add_word_tokens

TINY_MODEL = dict(
    text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
    audio_config=dict(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32),
)


def tiny_model_and_processor():
    torch.manual_seed(0)
    processor = byte_level_processor()
    return model_from_config(TINY_MODEL, processor), processor


def test_each_word_becomes_one_token_initialised_from_its_letters(tmp_path):
    model, processor = tiny_model_and_processor()
    tokenizer = processor.tokenizer
    old_size, timestamp_id = len(tokenizer), tokenizer.convert_tokens_to_ids("<|2.33|>")
    letters = {word: tokenizer(word, add_special_tokens=False)["input_ids"] for word in ("seconds", "helpful")}
    before_in = model.get_input_embeddings().weight.detach().clone()
    before_out = model.get_output_embeddings().weight.detach().clone()

    assert add_word_tokens(model, processor, ["seconds", "helpful", "a"]) == ["seconds", "helpful"]  # "a" is one
    assert len(tokenizer) == old_size + 2 == model.config.text_config.vocab_size
    assert tokenizer.convert_tokens_to_ids("<|2.33|>") == timestamp_id  # no id the model knew moved
    for offset, word in enumerate(("seconds", "helpful")):
        token_id = old_size + offset
        assert tokenizer(word, add_special_tokens=False)["input_ids"] == [token_id]
        torch.testing.assert_close(model.get_input_embeddings().weight[token_id], before_in[letters[word]].mean(0))
        torch.testing.assert_close(model.get_output_embeddings().weight[token_id], before_out[letters[word]].mean(0))
    torch.testing.assert_close(model.get_input_embeddings().weight[:old_size], before_in)

    text = 'It ends at <|2.33|> seconds, helpfully.'
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(tokenizer(text.replace("seconds", "s").replace("helpful", "h"),
                                     add_special_tokens=False)["input_ids"])
    assert tokenizer.decode(ids) == text

    # Saved and loaded again, the tokens and their rows stay.
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    from transformers import AutoProcessor

    reloaded = AutoProcessor.from_pretrained(tmp_path).tokenizer
    assert reloaded(text, add_special_tokens=False)["input_ids"] == ids
    weights = QwenAudioForConditionalGeneration.from_pretrained(tmp_path).get_input_embeddings().weight
    torch.testing.assert_close(weights, model.get_input_embeddings().weight)


@pytest.mark.parametrize("words, error, message", [
    ("seconds", TypeError, "a list of words"),
    (["two words"], ValueError, "one word, without spaces"),
    ([""], ValueError, "one word"),
    (["clip", "clip"], ValueError, "more than once"),
])
def test_bad_word_lists_are_refused(words, error, message):
    model, processor = tiny_model_and_processor()
    with pytest.raises(error, match=message):
        add_word_tokens(model, processor, words)


def test_the_tiny_recipe_words_leave_what_stage_1_writes_letter_by_letter():
    words = yaml.safe_load(recipe_path("tiny/sft.yaml").read_text())["add_word_tokens"]
    assert len(words) == len(set(words)) == 59
    written_by_stage_1 = set(WORDS) | {word for label in SOUND_LABELS for word in label.split()}
    assert not [(word, spoken) for word in words for spoken in written_by_stage_1 if word.lower() in spoken]

    model, processor = tiny_model_and_processor()
    tokenizer = processor.tokenizer
    transcript = " ".join(sorted(written_by_stage_1))
    srwt = "<|0.00|>left<|0.41|><|0.45|>brown<|0.90|>"
    before = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in (transcript, srwt)]
    assert add_word_tokens(model, processor, words) == words
    assert [tokenizer(text, add_special_tokens=False)["input_ids"] for text in (transcript, srwt)] == before
    reply = 'The word "house" starts at <|0.52|> seconds and ends at <|0.80|> seconds.'
    assert tokenizer.decode(tokenizer(reply, add_special_tokens=False)["input_ids"]) == reply
