"""Qwen-Audio and Qwen-Audio-Chat as native Hugging Face transformers models.

Importing this package registers the model, the processor and the ``audio-chat`` pipeline with
transformers' ``Auto*`` classes, and the released checkpoints' key names with transformers' checkpoint
conversion mapping, so that ``AutoModelForCausalLM.from_pretrained("Qwen/Qwen-Audio-Chat")`` works without
``trust_remote_code``.
"""

__version__ = "0.1.0.dev0"

# --- model (configuration, modeling, weight mapping) ---
from .configuration_qwen_audio import (  # noqa: E402
    QwenAudioConfig,
    QwenAudioEncoderConfig,
    QwenAudioTextConfig,
    QwenReleasedConfig,
)
from .modeling_qwen_audio import (  # noqa: E402
    QwenAudioEncoder,
    QwenAudioForConditionalGeneration,
    QwenAudioModel,
    QwenAudioPreTrainedModel,
    QwenAudioTextModel,
)
from .registration import register_model_auto_classes  # noqa: E402

register_model_auto_classes()

# --- processor (tokenizer, feature extractor, processor, task prompts) ---
from .audio_io import load_audio  # noqa: E402
from .processing_qwen_audio import QwenAudioProcessor, register_processor_auto_classes  # noqa: E402
from .task_prompts import build_task_prompt  # noqa: E402
from .word_timestamps import format_word_timestamps, parse_word_timestamps  # noqa: E402
from .tokenization_qwen_audio import QwenAudioTokenizerFast  # noqa: E402

register_processor_auto_classes()

# --- pipeline ("audio-chat") ---
from .pipeline_audio_chat import AudioChatPipeline, register_pipeline  # noqa: E402

register_pipeline()
