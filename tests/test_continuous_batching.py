"""transformers' continuous batching (`generate_batch`, the paged cache `transformers serve` uses) on Qwen-Audio:
exactly the tokens of `generate()` for text-only requests; audio there is refused in words until transformers hands
a model each request's clips."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoProcessor, GenerationConfig

import transformers_qwen_audio  # noqa: F401
from transformers_qwen_audio.modeling_qwen_audio import keeps_no_length
from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint


@pytest.fixture(scope="module")
def model_and_tokenizer(tmp_path_factory):
    folder = build_released_checkpoint(tmp_path_factory.mktemp("cb") / "model")
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder).tokenizer


def test_generate_batch_gives_the_tokens_of_generate(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = ["hello world", "the quick brown fox jumps over the lazy dog", "a", "twenty one, twenty two"]
    requests = [tokenizer(prompt)["input_ids"] for prompt in prompts]
    config = GenerationConfig(max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)
    expected = []
    for ids in requests:
        output = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                generation_config=config)
        expected.append(output[0, len(ids):].tolist())
    results = model.generate_batch(inputs=requests, generation_config=config)
    assert len(results) == len(requests)
    # Request ids are req_0, req_1, ... in the order given.
    got = [results[f"req_{index}"].generated_tokens for index in range(len(requests))]
    assert got == expected


class _PackedCache:
    """Stands for the paged cache: it keeps no length (no get_seq_length)."""


def test_audio_under_continuous_batching_is_refused_in_words(model_and_tokenizer):
    model, _ = model_and_tokenizer
    assert keeps_no_length(_PackedCache()) and not keeps_no_length(None)
    features, mask = torch.zeros(1, 80, 3000), torch.ones(1, 3000, dtype=torch.long)
    with pytest.raises(NotImplementedError, match="text-only requests"):
        model(input_ids=torch.tensor([[1, 2, 3]]), input_features=features, feature_attention_mask=mask,
              cache=_PackedCache(), position_ids=torch.tensor([[0, 1, 2]]))
