"""
Every private or non-public transformers API this package relies on, in one table: its name, where we use it, and
why. `tests/test_transformers_internals.py` has one test per entry (named after it) that fails, naming the entry,
when a transformers release removes it, changes the signature we call, or changes the behaviour we rely on.

The names our own layer imports come from here, so a release that moves one is mended in one place.
"""

from dataclasses import dataclass

from transformers.models.auto.tokenization_auto import REGISTERED_FAST_ALIASES, REGISTERED_TOKENIZER_CLASSES
from transformers.models.whisper.modeling_whisper import _compute_mask_indices
from transformers.pipelines.base import ChunkPipeline
from transformers.pipelines.image_text_to_text import ReturnType
from transformers.pipelines.pt_utils import PipelineChunkIterator, PipelineIterator, PipelinePackIterator


@dataclass(frozen=True)
class Internal:
    name: str
    used_in: str
    why: str


INTERNALS = (
    Internal(
        "transformers.processing_utils.ProcessorMixin._process_audio",
        "processing_qwen_audio.py (QwenAudioProcessor)",
        "The hook of `ProcessorMixin.__call__` that turns the laid-out clips and the merged audio kwargs into "
        "features and one replacement text per clip; ours decodes, windows and pads the clips.",
    ),
    Internal(
        "transformers.processing_utils.ProcessorMixin.unused_input_names",
        "processing_qwen_audio.py (QwenAudioProcessor)",
        "`__call__` drops these keys of `_process_audio`'s output (our per-window span lengths).",
    ),
    Internal(
        "transformers.processing_utils.ProcessorMixin._get_arguments_from_pretrained",
        "processing_qwen_audio.py (QwenAudioProcessor)",
        "Builds the sub-processors in `from_pretrained` up to transformers 5.24; ours reads released folders "
        "(qwen.tiktoken, no preprocessor_config.json) without the Auto classes and their remote-code `auto_map`.",
    ),
    Internal(
        "transformers.processing_utils.ProcessorMixin._resolve_subprocessors",
        "processing_qwen_audio.py (QwenAudioProcessor)",
        "Builds the sub-processors in `from_pretrained` from transformers 5.25 on, skipping those passed in its "
        "keywords: ours passes the ones `_get_arguments_from_pretrained` builds.",
    ),
    Internal(
        "transformers.processing_utils.ProcessorMixin._resolve_audio_loading_params",
        "processing_qwen_audio.py (QwenAudioProcessor)",
        "`apply_chat_template` passes its result to `_multimodal_inputs_from_conversations` and tells `__call__` "
        "the rate of the decoded clips from its `sampling_rate`.",
    ),
    Internal(
        "transformers.processing_utils.ProcessorMixin._multimodal_inputs_from_conversations",
        "processing_qwen_audio.py (QwenAudioProcessor)",
        "`apply_chat_template` takes the conversations' clips from it (a 4-tuple: images, videos, flat audio, "
        "extra inputs); ours decodes them with errors naming the message and part.",
    ),
    Internal(
        "transformers.processing_utils.ProcessorMixin._adjust_assistant_masks_indices",
        "training/collators.py (the SFT collator)",
        "Moves the character ranges of the assistant replies onto the tokens, across the expanded audio spans, "
        "as `apply_chat_template(return_assistant_tokens_mask=True)` does.",
    ),
    Internal(
        "transformers.utils.cached_file(_raise_exceptions_for_missing_entries, _raise_exceptions_for_connection_errors)",
        "processing_qwen_audio.py, configuration_qwen_audio.py (declared_chat_format)",
        "Returns None for a file a folder or Hub repo lacks (released checkpoints have no preprocessor_config.json) "
        "instead of raising.",
    ),
    Internal(
        "transformers.models.auto.tokenization_auto.REGISTERED_TOKENIZER_CLASSES / REGISTERED_FAST_ALIASES",
        "registration.py (register_processor_auto_classes)",
        "`AutoTokenizer` resolves the class names of tokenizer_config.json through them; `AutoTokenizer.register` "
        "has no way to alias a fast class without a slow one (the released `QWenTokenizer`).",
    ),
    Internal(
        "transformers.models.whisper.modeling_whisper._compute_mask_indices",
        "modeling_qwen_audio.py (QwenAudioEncoder SpecAugment)",
        "Whisper's SpecAugment span sampler, so our masking matches `WhisperModel._mask_input_features`.",
    ),
    Internal(
        "transformers.generation.utils.GenerationMixin._expand_inputs_for_generation",
        "modeling_qwen_audio.py (QwenAudioForConditionalGeneration)",
        "Copies each row for beam search / num_return_sequences; ours copies a row's clips as one block first.",
    ),
    Internal(
        "transformers.pipelines.pt_utils.PipelineChunkIterator / PipelinePackIterator / PipelineIterator",
        "pipeline_audio_chat.py (AudioChatPipeline.get_iterator)",
        "ChunkPipeline's iterators (non-public module): ours numbers the inputs and collates the clips itself.",
    ),
    Internal(
        "transformers.pipelines.base.ChunkPipeline / Pipeline._prepare_generate_kwargs",
        "pipeline_audio_chat.py (AudioChatPipeline)",
        "One input gives one model row per 30 s window; `_prepare_generate_kwargs` merges the pipeline's "
        "generation defaults (`_generation_defaults`, from `_default_generation_config`) under the call's.",
    ),
    Internal(
        "transformers.pipelines.image_text_to_text.ReturnType",
        "pipeline_audio_chat.py (AudioChatPipeline)",
        "The `return_full_text` / `return_tensors` modes of the image-text-to-text pipeline, which ours mirrors.",
    ),
    Internal(
        "transformers.Trainer._get_train_sampler",
        "training/pretrainer.py",
        "The sampler hook of `Trainer`; the pre-training trainer wraps the default one (a list of lengths for "
        "`LengthGroupedSampler`, from the non-public `transformers.trainer_pt_utils`).",
    ),
    Internal(
        "transformers.Trainer._created_lr_scheduler",
        "training/pretrainer.py (create_scheduler)",
        "Set when `create_scheduler` built the scheduler itself, so that `Trainer` rebuilds it with the optimizer "
        "once `num_training_steps` is known, as for its own schedules.",
    ),
)


__all__ = [
    "INTERNALS",
    "ChunkPipeline",
    "Internal",
    "PipelineChunkIterator",
    "PipelineIterator",
    "PipelinePackIterator",
    "REGISTERED_FAST_ALIASES",
    "REGISTERED_TOKENIZER_CLASSES",
    "ReturnType",
    "_compute_mask_indices",
]
