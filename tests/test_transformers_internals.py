"""One test per entry of `transformers_internals.INTERNALS`: each fails naming its entry when a transformers release
removes it, changes the signature we call, or changes the behaviour we rely on."""

import inspect
import json

import numpy as np
import pytest
import torch
import transformers
from transformers import ProcessorMixin, Trainer
from transformers.generation.utils import GenerationMixin
from transformers.pipelines.base import Pipeline
from transformers.utils import cached_file

from transformers_qwen_audio import QwenAudioProcessor
from transformers_qwen_audio.tiny_checkpoint import chirp
from transformers_qwen_audio.transformers_internals import (
    INTERNALS,
    ChunkPipeline,
    PipelineChunkIterator,
    PipelineIterator,
    PipelinePackIterator,
    REGISTERED_FAST_ALIASES,
    REGISTERED_TOKENIZER_CLASSES,
    ReturnType,
    _compute_mask_indices,
)


ENTRIES = {entry.name: entry for entry in INTERNALS}


def require(name: str, condition: bool, what: str) -> None:
    """Fails naming the table entry and transformers' version, so that the break is read from the test report."""
    assert name in ENTRIES, f"{name!r} is not an entry of transformers_internals.INTERNALS"
    if not condition:
        pytest.fail(f"transformers {transformers.__version__} changed {name} ({ENTRIES[name].used_in}): {what}")


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def accepts(name: str, function, *args, **kwargs) -> None:
    """The call we make binds to the function's signature."""
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError as error:
        require(name, False, f"the call we make no longer binds: {error}")


def test_every_entry_has_its_test():
    tested = {name for test, name in TESTED.items() if test in globals()}
    assert tested == set(ENTRIES), f"entries without a test: {sorted(set(ENTRIES) - tested)}"
    assert all(entry.used_in and entry.why for entry in INTERNALS)


def test_process_audio_hook(tiny_processor):
    name = "transformers.processing_utils.ProcessorMixin._process_audio"
    require(name, hasattr(ProcessorMixin, "_process_audio"), "the hook is gone")
    accepts(name, ProcessorMixin._process_audio, tiny_processor, [chirp(0.5)], sampling_rate=16000)
    calls = []
    original = type(tiny_processor)._process_audio

    def spy(self, audio, **kwargs):
        calls.append((audio, kwargs))
        return original(self, audio, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(tiny_processor), "_process_audio", spy)
        tiny_processor(text="<audio></audio>", audio=chirp(0.5), allow_urls=False)
    require(name, len(calls) == 1, "`__call__` no longer calls `_process_audio` once per call")
    clips, audio_kwargs = calls[0]
    require(name, isinstance(clips, list) and len(clips) == 1, "the clips are no longer passed as laid out")
    require(name, audio_kwargs.get("allow_urls") is False, "the merged audio kwargs are no longer passed on")


def test_unused_input_names(tiny_processor):
    name = "transformers.processing_utils.ProcessorMixin.unused_input_names"
    require(name, isinstance(inspect.getattr_static(ProcessorMixin, "unused_input_names"), property), "not a property")
    inputs = tiny_processor(text="<audio></audio>", audio=chirp(0.5))
    require(name, "audio_span_lengths" not in inputs, "`__call__` no longer drops the unused input names")


def _builds_the_sub_processors_once(name, tiny_checkpoint_dir):
    calls = []
    original = QwenAudioProcessor._get_arguments_from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        calls.append(args)
        return original(cls, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(QwenAudioProcessor, "_get_arguments_from_pretrained", classmethod(spy))
        QwenAudioProcessor.from_pretrained(tiny_checkpoint_dir)
    require(name, len(calls) == 1, "`from_pretrained` no longer builds the sub-processors through it")


def test_get_arguments_from_pretrained(tiny_checkpoint_dir):
    # transformers <= 5.24 builds the sub-processors here; 5.25 moved it to `_resolve_subprocessors` (next test).
    name = "transformers.processing_utils.ProcessorMixin._get_arguments_from_pretrained"
    if hasattr(ProcessorMixin, "_resolve_subprocessors"):
        return _builds_the_sub_processors_once(name, tiny_checkpoint_dir)  # through our `_resolve_subprocessors`
    require(name, inspect.ismethod(ProcessorMixin._get_arguments_from_pretrained), "no longer a classmethod")
    require(
        name,
        parameters(ProcessorMixin._get_arguments_from_pretrained)[:2] == ["pretrained_model_name_or_path", "processor_dict"],
        f"signature is now {parameters(ProcessorMixin._get_arguments_from_pretrained)}",
    )
    _builds_the_sub_processors_once(name, tiny_checkpoint_dir)


def test_resolve_subprocessors(tiny_checkpoint_dir):
    name = "transformers.processing_utils.ProcessorMixin._resolve_subprocessors"
    if not hasattr(ProcessorMixin, "_resolve_subprocessors"):
        require(name, hasattr(ProcessorMixin, "_get_arguments_from_pretrained"),
                "neither it nor `_get_arguments_from_pretrained` builds the sub-processors")
        return  # transformers <= 5.24: the previous test covers the hook
    require(name, inspect.ismethod(ProcessorMixin._resolve_subprocessors), "no longer a classmethod")
    require(name, parameters(ProcessorMixin._resolve_subprocessors)[:2] == [
        "pretrained_model_name_or_path", "processor_dict"],
        f"signature is now {parameters(ProcessorMixin._resolve_subprocessors)}")
    source = inspect.getsource(ProcessorMixin._resolve_subprocessors)
    require(name, "kwargs.pop(sub_processor_type" in source, "it no longer takes sub-processors passed in its keywords")
    require(name, "_resolve_subprocessors(" in inspect.getsource(ProcessorMixin.from_pretrained),
            "`from_pretrained` no longer calls it")
    processor = QwenAudioProcessor.from_pretrained(tiny_checkpoint_dir)
    require(name, type(processor.tokenizer).__name__ == "QwenAudioTokenizerFast", "our tokenizer was not used")


def test_resolve_audio_loading_params(tiny_processor):
    name = "transformers.processing_utils.ProcessorMixin._resolve_audio_loading_params"
    require(name, parameters(ProcessorMixin._resolve_audio_loading_params) == ["self", "processor_kwargs"],
            f"signature is now {parameters(ProcessorMixin._resolve_audio_loading_params)}")
    source = inspect.getsource(ProcessorMixin.apply_chat_template)
    require(name, "_resolve_audio_loading_params(processor_kwargs)" in source and
            'audio_loading_params["sampling_rate"]' in source,
            "`apply_chat_template` no longer takes the decoded clips' rate from it")


def test_multimodal_inputs_from_conversations(tiny_processor):
    name = "transformers.processing_utils.ProcessorMixin._multimodal_inputs_from_conversations"
    require(name, parameters(ProcessorMixin._multimodal_inputs_from_conversations)
            == ["self", "conversations", "audio_loading_params", "load_audio_from_video"],
            f"signature is now {parameters(ProcessorMixin._multimodal_inputs_from_conversations)}")
    messages = [{"role": "user", "content": [{"type": "audio", "audio": chirp(0.5)}, {"type": "text", "text": "?"}]}]
    inputs = tiny_processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    require(name, np.asarray(inputs["feature_attention_mask"]).sum() == 50,
            "`apply_chat_template` no longer takes the clips it returns (images, videos, audio, extra inputs)")


def test_adjust_assistant_masks_indices(tiny_processor):
    name = "transformers.processing_utils.ProcessorMixin._adjust_assistant_masks_indices"
    require(name, parameters(ProcessorMixin._adjust_assistant_masks_indices)
            == ["self", "processed_dict", "generation_indices"],
            f"signature is now {parameters(ProcessorMixin._adjust_assistant_masks_indices)}")
    text = "<audio></audio>reply"
    batch = tiny_processor(text=[text], audio=[chirp(0.5)], return_offsets_mapping=True,
                           return_text_replacement_offsets=True)
    start = text.index("reply")
    masked = tiny_processor._adjust_assistant_masks_indices(batch, [[(start, len(text))]])
    ids = [token for token, keep in zip(masked["input_ids"][0], masked["assistant_masks"][0]) if keep]
    require(name, tiny_processor.tokenizer.decode(ids) == "reply",
            "the character ranges no longer land on the tokens across the expanded audio span")


def test_cached_file_private_flags(tmp_path):
    name = ("transformers.utils.cached_file(_raise_exceptions_for_missing_entries, "
            "_raise_exceptions_for_connection_errors)")
    (tmp_path / "config.json").write_text(json.dumps({}), encoding="utf-8")
    missing = cached_file(tmp_path, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False,
                          _raise_exceptions_for_connection_errors=False)
    require(name, missing is None, "a missing file no longer gives None")
    present = cached_file(tmp_path, "config.json", _raise_exceptions_for_missing_entries=False,
                          _raise_exceptions_for_connection_errors=False)
    require(name, present is not None and present.endswith("config.json"), "a present file is no longer found")


def test_registered_tokenizer_tables():
    name = "transformers.models.auto.tokenization_auto.REGISTERED_TOKENIZER_CLASSES / REGISTERED_FAST_ALIASES"
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    from transformers_qwen_audio import QwenAudioTokenizerFast

    require(name, isinstance(REGISTERED_TOKENIZER_CLASSES, dict) and isinstance(REGISTERED_FAST_ALIASES, dict),
            "the tables are gone or no longer dicts")
    for class_name in ("QWenTokenizer", "QwenAudioTokenizer", "QwenAudioTokenizerFast"):
        require(name, tokenizer_class_from_name(class_name) is QwenAudioTokenizerFast,
                f"`AutoTokenizer` no longer resolves {class_name!r} through them")


def test_compute_mask_indices():
    name = "transformers.models.whisper.modeling_whisper._compute_mask_indices"
    accepts(name, _compute_mask_indices, (2, 100), mask_prob=0.5, mask_length=10, attention_mask=None, min_masks=2)
    frames = torch.zeros(2, 100, dtype=torch.long)
    frames[:, :40] = 1
    mask = _compute_mask_indices((2, 100), mask_prob=0.5, mask_length=10, attention_mask=frames, min_masks=2)
    require(name, isinstance(mask, np.ndarray) and mask.shape == (2, 100) and mask.dtype == bool,
            "no longer a boolean [batch, length] array")
    require(name, mask.any() and not mask[:, 40:].any(), "spans are no longer drawn within each row's own frames")


def test_expand_inputs_for_generation():
    name = "transformers.generation.utils.GenerationMixin._expand_inputs_for_generation"
    method = GenerationMixin._expand_inputs_for_generation
    accepts(name, method, None, expand_size=2, is_encoder_decoder=False, input_ids=None, attention_mask=None)
    ids = torch.tensor([[1, 2], [3, 4]])
    expanded, kwargs = method(GenerationMixin(), expand_size=2, is_encoder_decoder=False, input_ids=ids,
                              attention_mask=ids)
    require(name, expanded.tolist() == [[1, 2], [1, 2], [3, 4], [3, 4]] and kwargs["attention_mask"].shape[0] == 4,
            "rows (and their tensor kwargs) are no longer repeated in place")


def test_pipeline_iterators():
    name = "transformers.pipelines.pt_utils.PipelineChunkIterator / PipelinePackIterator / PipelineIterator"
    accepts(name, PipelineChunkIterator, [], lambda item: item, {})
    accepts(name, PipelinePackIterator, [], lambda item: item, {}, loader_batch_size=1)
    accepts(name, PipelineIterator, [], lambda item: item, {})

    def chunks(item, **params):
        yield from ({"value": item * 10 + index, "is_last": index == 1} for index in range(2))

    rows = PipelineChunkIterator([1, 2], chunks, {})
    packed = PipelinePackIterator(rows, lambda row, **params: row, {})
    outputs = list(PipelineIterator(packed, lambda group, **params: [row["value"] for row in group], {}))
    require(name, outputs == [[10, 11], [20, 21]], f"chunks are no longer packed per input until `is_last`: {outputs}")


def test_chunk_pipeline_generation_defaults(tiny_checkpoint_dir):
    name = "transformers.pipelines.base.ChunkPipeline / Pipeline._prepare_generate_kwargs"
    require(name, issubclass(ChunkPipeline, Pipeline) and "get_iterator" in vars(ChunkPipeline), "ChunkPipeline moved")
    for attribute in ("_load_processor", "_load_tokenizer", "_pipeline_calls_generate", "_default_generation_config"):
        require(name, hasattr(Pipeline, attribute), f"`Pipeline.{attribute}` is gone")
    accepts(name, Pipeline._prepare_generate_kwargs, None, {})
    pipe = transformers.pipeline("audio-chat", model=str(tiny_checkpoint_dir))
    defaults = getattr(pipe, "_generation_defaults", {})
    require(name, defaults.get("max_new_tokens") == 256 and defaults.get("pad_token_id") is not None,
            f"`_generation_defaults` no longer comes from `_default_generation_config`: {defaults}")
    merged = pipe._prepare_generate_kwargs({"max_new_tokens": 8})
    require(name, merged.get("max_new_tokens") == 8 and merged.get("pad_token_id") == defaults["pad_token_id"],
            f"the call's parameters no longer go on top of `_generation_defaults`: {merged}")


def test_return_type():
    name = "transformers.pipelines.image_text_to_text.ReturnType"
    require(name, {"TENSORS", "NEW_TEXT", "FULL_TEXT"} <= set(ReturnType.__members__), "members changed")


def test_trainer_get_train_sampler():
    name = "transformers.Trainer._get_train_sampler"
    require(name, parameters(Trainer._get_train_sampler) == ["self", "train_dataset"],
            f"signature is now {parameters(Trainer._get_train_sampler)}")
    from transformers.trainer_pt_utils import LengthGroupedSampler

    require(name, "lengths" in parameters(LengthGroupedSampler), "LengthGroupedSampler no longer takes `lengths`")
    require(name, "group_by_length" in inspect.getsource(Trainer._get_train_sampler),
            "the default sampler no longer follows `group_by_length`")


def test_trainer_created_lr_scheduler():
    name = "transformers.Trainer._created_lr_scheduler"
    source = inspect.getsource(Trainer)
    require(name, "self._created_lr_scheduler = True" in source and "if self._created_lr_scheduler:" in source,
            "`Trainer` no longer reads the flag to rebuild a scheduler it created")


# Each test and the entry it covers (`test_every_entry_has_its_test` keeps the table and the tests in step).
TESTED = {
    "test_process_audio_hook": "transformers.processing_utils.ProcessorMixin._process_audio",
    "test_unused_input_names": "transformers.processing_utils.ProcessorMixin.unused_input_names",
    "test_get_arguments_from_pretrained": "transformers.processing_utils.ProcessorMixin._get_arguments_from_pretrained",
    "test_resolve_subprocessors": "transformers.processing_utils.ProcessorMixin._resolve_subprocessors",
    "test_resolve_audio_loading_params": "transformers.processing_utils.ProcessorMixin._resolve_audio_loading_params",
    "test_multimodal_inputs_from_conversations":
        "transformers.processing_utils.ProcessorMixin._multimodal_inputs_from_conversations",
    "test_adjust_assistant_masks_indices": "transformers.processing_utils.ProcessorMixin._adjust_assistant_masks_indices",
    "test_cached_file_private_flags": ("transformers.utils.cached_file(_raise_exceptions_for_missing_entries, "
                                       "_raise_exceptions_for_connection_errors)"),
    "test_registered_tokenizer_tables":
        "transformers.models.auto.tokenization_auto.REGISTERED_TOKENIZER_CLASSES / REGISTERED_FAST_ALIASES",
    "test_compute_mask_indices": "transformers.models.whisper.modeling_whisper._compute_mask_indices",
    "test_expand_inputs_for_generation": "transformers.generation.utils.GenerationMixin._expand_inputs_for_generation",
    "test_pipeline_iterators":
        "transformers.pipelines.pt_utils.PipelineChunkIterator / PipelinePackIterator / PipelineIterator",
    "test_chunk_pipeline_generation_defaults": "transformers.pipelines.base.ChunkPipeline / Pipeline._prepare_generate_kwargs",
    "test_return_type": "transformers.pipelines.image_text_to_text.ReturnType",
    "test_trainer_get_train_sampler": "transformers.Trainer._get_train_sampler",
    "test_trainer_created_lr_scheduler": "transformers.Trainer._created_lr_scheduler",
}
