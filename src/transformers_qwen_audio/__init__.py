"""Qwen-Audio and Qwen-Audio-Chat as native Hugging Face transformers models.

Importing this package registers the model, the processor and the ``audio-chat`` pipeline with
transformers' ``Auto*`` classes, and the released checkpoints' key names with transformers' checkpoint
conversion mapping (``registration.py``), so that ``AutoModelForCausalLM.from_pretrained("Qwen/Qwen-Audio-Chat")``
works without ``trust_remote_code``.
"""

__version__ = "0.1.0.dev0"

from .audio_io import load_audio
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
    QwenAudioPreTrainedModel,
    QwenAudioTextModel,
)
from .pipeline_audio_chat import AudioChatPipeline
from .processing_qwen_audio import QwenAudioProcessor
from .registration import (
    register_model_auto_classes,
    register_pipeline,
    register_processor_auto_classes,
    register_qwen_audio,
)
from .task_prompts import build_task_prompt
from .tokenization_qwen_audio import QwenAudioTokenizerFast
from .word_timestamps import format_word_timestamps, parse_word_timestamps


register_qwen_audio()
