"""Registration with transformers' Auto classes and checkpoint conversion mapping (run once on import)."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMultimodalLM,
    AutoModelForSeq2SeqLM,
)

from .configuration_qwen_audio import (
    QwenAudioConfig,
    QwenAudioEncoderConfig,
    QwenAudioTextConfig,
    QwenReleasedConfig,
)
from .modeling_qwen_audio import (
    QwenAudioEncoder,
    QwenAudioForConditionalGeneration,
    QwenAudioModel,
    QwenAudioTextModel,
)
from .weight_mapping import register_weight_mapping


def register_model_auto_classes() -> None:
    for config_class in (QwenAudioConfig, QwenAudioEncoderConfig, QwenAudioTextConfig, QwenReleasedConfig):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(QwenAudioConfig, QwenAudioModel, exist_ok=True)
    AutoModel.register(QwenAudioEncoderConfig, QwenAudioEncoder, exist_ok=True)
    AutoModel.register(QwenAudioTextConfig, QwenAudioTextModel, exist_ok=True)
    # `AutoModelForCausalLM` gives the full audio+text model, so code written for the original
    # (`AutoModelForCausalLM.from_pretrained("Qwen/Qwen-Audio-Chat")`) keeps working; transformers 5 lists
    # Qwen2-Audio under the multimodal and seq2seq auto classes, so do we.
    for auto_class in (AutoModelForCausalLM, AutoModelForMultimodalLM, AutoModelForSeq2SeqLM):
        auto_class.register(QwenAudioConfig, QwenAudioForConditionalGeneration, exist_ok=True)
    register_weight_mapping()
