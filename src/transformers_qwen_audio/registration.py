"""
Everything Qwen-Audio registers with transformers, in one place: `register_qwen_audio()` runs once when the package
is imported (and is the vLLM plugin entry point), and each part can be re-run on its own (safe to call again).

- config classes with `AutoConfig` (`QwenReleasedConfig` reads the released `model_type: "qwen"` folders);
- models with `AutoModel`, and the full audio+text model with `AutoModelForCausalLM` (so that code written for the
  original, `AutoModelForCausalLM.from_pretrained("Qwen/Qwen-Audio-Chat")`, keeps working),
  `AutoModelForMultimodalLM` and `AutoModelForSeq2SeqLM` (where transformers 5 lists Qwen2-Audio);
- the released key names with transformers' checkpoint conversion mapping (`weight_mapping.py`);
- the tokenizer, feature extractor and processor with `AutoTokenizer`, `AutoFeatureExtractor` and `AutoProcessor`;
- the `audio-chat` task of `transformers.pipeline`.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMultimodalLM,
    AutoModelForSeq2SeqLM,
    AutoProcessor,
    AutoTokenizer,
    WhisperFeatureExtractor,
)
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_qwen_audio import QwenAudioConfig, QwenAudioEncoderConfig, QwenAudioTextConfig, QwenReleasedConfig
from .modeling_qwen_audio import QwenAudioEncoder, QwenAudioForConditionalGeneration, QwenAudioModel, QwenAudioTextModel
from .pipeline_audio_chat import AudioChatPipeline, DefaultCheckpoint
from .processing_qwen_audio import QwenAudioProcessor
from .tokenization_qwen_audio import QwenAudioTokenizerFast
from .transformers_internals import REGISTERED_FAST_ALIASES, REGISTERED_TOKENIZER_CLASSES
from .weight_mapping import released_checkpoint_conversions, released_decoder_conversions


def register_model_auto_classes() -> None:
    """The configs and models with the Auto classes, and the checkpoint conversion mapping of the released keys."""
    for config_class in (QwenAudioConfig, QwenAudioEncoderConfig, QwenAudioTextConfig, QwenReleasedConfig):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(QwenAudioConfig, QwenAudioModel, exist_ok=True)
    AutoModel.register(QwenAudioEncoderConfig, QwenAudioEncoder, exist_ok=True)
    AutoModel.register(QwenAudioTextConfig, QwenAudioTextModel, exist_ok=True)
    for auto_class in (AutoModelForCausalLM, AutoModelForMultimodalLM, AutoModelForSeq2SeqLM):
        auto_class.register(QwenAudioConfig, QwenAudioForConditionalGeneration, exist_ok=True)
    # The fused qkv split is registered for the decoder sub-model, so that it is scoped to `model.language_model`.
    register_checkpoint_conversion_mapping("qwen_audio", released_checkpoint_conversions(), overwrite=True)
    register_checkpoint_conversion_mapping("qwen_audio_text", released_decoder_conversions(), overwrite=True)


def register_processor_auto_classes() -> None:
    """
    The tokenizer, feature extractor and processor, for `QwenAudioConfig` and for `QwenReleasedConfig` (what
    `AutoConfig` gives for a released folder, so that `AutoProcessor.from_pretrained(released_dir)` finds this
    processor). `AutoTokenizer` also resolves the class names that `tokenizer_config.json` gives: "QwenAudioTokenizer
    (Fast)" in native folders, "QWenTokenizer" in the released ones, so that `AutoTokenizer.from_pretrained(
    "Qwen/Qwen-Audio")` builds `QwenAudioTokenizerFast` from `qwen.tiktoken` without `trust_remote_code` (a locally
    registered class wins over the folder's `auto_map`).
    """
    # `AutoTokenizer.register` records slow->fast aliases in these tables; there is no slow class to pass it.
    REGISTERED_TOKENIZER_CLASSES[QwenAudioTokenizerFast.__name__] = QwenAudioTokenizerFast
    REGISTERED_FAST_ALIASES["QWenTokenizer"] = QwenAudioTokenizerFast
    REGISTERED_FAST_ALIASES["QwenAudioTokenizer"] = QwenAudioTokenizerFast
    for config_class in (QwenAudioConfig, QwenReleasedConfig):
        AutoTokenizer.register(config_class, tokenizer_class=QwenAudioTokenizerFast, exist_ok=True)
        AutoFeatureExtractor.register(config_class, WhisperFeatureExtractor, exist_ok=True)
        AutoProcessor.register(config_class, QwenAudioProcessor, exist_ok=True)


def register_pipeline() -> None:
    """`AudioChatPipeline` as the `audio-chat` task of `transformers.pipeline`."""
    if PIPELINE_REGISTRY.supported_tasks.get("audio-chat", {}).get("impl") is AudioChatPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        "audio-chat", pipeline_class=AudioChatPipeline, pt_model=AutoModelForCausalLM,
        default={"model": (DefaultCheckpoint(), None)}, type="multimodal",
    )


def register_qwen_audio() -> None:
    """Everything above: configs, models, checkpoint conversion mapping, tokenizer, processor, pipeline task."""
    register_model_auto_classes()
    register_processor_auto_classes()
    register_pipeline()


__all__ = ["register_model_auto_classes", "register_pipeline", "register_processor_auto_classes", "register_qwen_audio"]
