"""The decoding step reads no device value and compiles as one graph; static-cache generation gives the eager tokens.

Tiny configs on CPU. `seq_length=8` puts the prompts past the training length, so dynamic NTK and log-n are active.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import CompileConfig, DynamicCache, StaticCache

from transformers_qwen_audio import QwenAudioForConditionalGeneration
from test_modeling_inputs import clips, prompt, tiny_config

# The aten ops behind `.item()`, `int(tensor)`, `bool(tensor)`, `.tolist()` and `nonzero()`: each waits for the device.
HOST_SYNC_OPS = {"_local_scalar_dense", "nonzero", "item", "is_nonzero", "equal"}


class HostSyncCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in HOST_SYNC_OPS:
            self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def tiny_model(seq_length):
    torch.manual_seed(0)
    return QwenAudioForConditionalGeneration(tiny_config(seq_length=seq_length)).eval()


def decode_step_inputs(model, cache):
    """Prefill a prompt with one clip into `cache`, then build the next step's inputs as `generate` does."""
    features, mask = clips(16000)
    ids = prompt(16000)
    attention = torch.ones_like(ids)
    with torch.no_grad():
        inputs = model.prepare_inputs_for_generation(
            ids, cache=cache, attention_mask=attention, input_features=features, feature_attention_mask=mask,
            use_cache=True, is_first_iteration=True,
        )
        next_token = model(**inputs).logits[:, -1:].argmax(-1)
    ids = torch.cat([ids, next_token], 1)
    attention = torch.ones_like(ids)
    return model.prepare_inputs_for_generation(
        ids, cache=cache, attention_mask=attention, position_ids=attention.cumsum(-1)[:, -1:] - 1, use_cache=True,
        next_sequence_length=1,
    )


@pytest.mark.parametrize("seq_length", [8, 2048])
def test_static_cache_decode_step_reads_no_device_value(seq_length):
    model = tiny_model(seq_length)
    inputs = decode_step_inputs(model, StaticCache(config=model.config.text_config, max_cache_len=64))
    with torch.no_grad(), HostSyncCounter() as counter:
        model(**inputs)
    assert counter.ops == []


def test_dynamic_cache_decode_step_reads_no_device_value_of_ours():
    """With a DynamicCache only transformers' own mask shortcut (`padding_mask.all()`, Qwen2-Audio has it too) reads
    the device; with a static cache (above) nothing does."""
    model = tiny_model(8)
    inputs = decode_step_inputs(model, DynamicCache(config=model.config.text_config))
    with torch.no_grad(), HostSyncCounter() as counter:
        model(**inputs)
    assert len(counter.ops) <= 1


@pytest.mark.parametrize("seq_length", [8, 2048])
def test_decode_step_has_no_graph_break(seq_length):
    model = tiny_model(seq_length)
    inputs = decode_step_inputs(model, StaticCache(config=model.config.text_config, max_cache_len=64))
    torch._dynamo.reset()
    with torch.no_grad():
        explanation = torch._dynamo.explain(model)(**inputs)
    assert explanation.graph_break_count == 0, [str(reason) for reason in explanation.break_reasons]
    assert explanation.graph_count == 1


def batch_of_two():
    """A short clip (left padded) and a long one, as the processor pads them."""
    features, mask = clips(8000, 24000)
    short, long = prompt(8000)[0], prompt(24000)[0]
    ids = torch.zeros(2, len(long), dtype=torch.long)
    attention = torch.zeros_like(ids)
    ids[0, -len(short):], attention[0, -len(short):] = short, 1
    ids[1], attention[1] = long, 1
    return ids, attention, features, mask


def compiled_static(**kwargs):
    compile_config = CompileConfig(fullgraph=True, backend="eager")  # a graph break would raise; "eager" keeps CI fast
    compile_config._compile_all_devices = True  # transformers compiles on GPUs only unless asked
    return dict(cache_implementation="static", compile_config=compile_config, **kwargs)


def test_compiled_static_generation_equals_eager_and_batched_equals_alone():
    model = tiny_model(8)
    ids, attention, features, mask = batch_of_two()
    greedy = dict(max_new_tokens=6, do_sample=False)
    torch._dynamo.reset()
    eager = model.generate(ids, attention_mask=attention, input_features=features, feature_attention_mask=mask,
                           **greedy)
    compiled = model.generate(ids, attention_mask=attention, input_features=features, feature_attention_mask=mask,
                              **compiled_static(**greedy))
    assert torch.equal(compiled, eager)
    for row in range(2):
        keep = attention[row].bool()
        alone = model.generate(ids[row][keep][None], input_features=features[row:row + 1],
                               feature_attention_mask=mask[row:row + 1], **compiled_static(**greedy))
        assert torch.equal(alone[0, keep.sum():], compiled[row, ids.shape[1]:])


def test_reused_static_cache_starts_each_generation_afresh():
    """transformers keeps the static cache between `generate` calls: a short prompt after a long one (different
    NTK alpha) must give what it gives on a fresh model."""
    model = tiny_model(8)
    ids, attention, features, mask = batch_of_two()
    greedy = dict(max_new_tokens=4, do_sample=False, cache_implementation="static")
    short = prompt(8000)
    fresh = model.generate(short, input_features=features[:1], feature_attention_mask=mask[:1], **greedy)
    model.generate(ids[1:], input_features=features[1:], feature_attention_mask=mask[1:], **greedy)
    again = model.generate(short, input_features=features[:1], feature_attention_mask=mask[:1], **greedy)
    assert torch.equal(fresh, again)


def test_bad_input_is_still_refused_at_prefill_with_a_static_cache():
    model = tiny_model(8)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.generate(torch.tensor([[5, 500]]), max_new_tokens=2, cache_implementation="static")
    with pytest.raises(ValueError, match="no input_features"):
        model.generate(prompt(8000), max_new_tokens=2, cache_implementation="static")
