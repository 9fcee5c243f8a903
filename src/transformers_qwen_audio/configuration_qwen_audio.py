"""Configuration of Qwen-Audio: a Whisper-style audio encoder feeding a Qwen-7B decoder.

`QwenAudioConfig` holds two sub-configs, as transformers' Qwen2-Audio and Voxtral do:

* `audio_config` (`QwenAudioEncoderConfig`): the Whisper-large-v2 encoder with 2x average pooling,
* `text_config` (`QwenAudioTextConfig`): the Qwen-7B decoder (a Qwen2 decoder with qkv bias, SwiGLU, RMSNorm,
  rotary) plus the original's inference-time `seq_length`, `use_dynamic_ntk` and `use_logn_attn`.

`QwenAudioConfig.from_released_config_dict` reads the released `config.json` (`model_type: "qwen"` with an `audio`
block); `QwenReleasedConfig` is registered with `AutoConfig` under `"qwen"` so that
`AutoConfig.from_pretrained(released_dir)` returns a `QwenAudioConfig` without running any file of that folder.
"""

from __future__ import annotations

import json

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.utils import cached_file
from transformers.models.qwen2.configuration_qwen2 import Qwen2Config
from transformers.models.qwen2_audio.configuration_qwen2_audio import Qwen2AudioEncoderConfig

# `[[[AUDIO:modality]]]` in the released tokenizer: the id that fills an audio span between <audio> and </audio>.
RELEASED_AUDIO_PLACEHOLDER_ID = 151851
RELEASED_AUDIO_START_ID = 155163
_RELEASED_DTYPE_FLAGS = (("bf16", "bfloat16"), ("fp16", "float16"), ("fp32", "float32"))
# The kind of checkpoint, as the released generation_config.json names it: "raw" for the base Qwen-Audio
# (hierarchical task tags after the audio), "chatml" for Qwen-Audio-Chat.
CHAT_FORMATS = ("raw", "chatml")
HUB_KWARGS = ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")


@strict
class QwenAudioEncoderConfig(Qwen2AudioEncoderConfig):
    r"""Whisper-style audio encoder of Qwen-Audio (defaults: Whisper-large-v2, 80 mel bins).

    Same fields as [`Qwen2AudioEncoderConfig`]; the projection to the decoder width and the audio bos/eos
    embeddings live in [`QwenAudioModel`]. Plus [`WhisperConfig`]'s SpecAugment options (same names, same defaults:
    off), applied to the log-mel features in training only:

    apply_spec_augment (`bool`, defaults to `False`):
        Mask spans of the input features during training ([SpecAugment](https://huggingface.co/papers/1904.08779)).
    mask_time_prob (`float`, defaults to 0.05):
        About this share of each clip's frames is masked, in spans of `mask_time_length` frames (10 ms each).
    mask_time_length (`int`, defaults to 10):
        Length of a time mask, in mel frames.
    mask_time_min_masks (`int`, defaults to 2):
        Time masks per clip at least (fewer on a clip too short for them).
    mask_feature_prob (`float`, defaults to 0.0):
        About this share of the mel bins is masked, in spans of `mask_feature_length` bins.
    mask_feature_length (`int`, defaults to 10):
        Length of a frequency mask, in mel bins.
    mask_feature_min_masks (`int`, defaults to 0):
        Frequency masks per clip at least.
    """

    model_type = "qwen_audio_encoder"

    num_mel_bins: int = 80
    encoder_layers: int = 32
    encoder_attention_heads: int = 20
    encoder_ffn_dim: int = 5120
    d_model: int = 1280
    max_source_positions: int = 1500
    apply_spec_augment: bool = False
    mask_time_prob: float = 0.05
    mask_time_length: int = 10
    mask_time_min_masks: int = 2
    mask_feature_prob: float = 0.0
    mask_feature_length: int = 10
    mask_feature_min_masks: int = 0

    def validate_architecture(self):
        super().validate_architecture()
        for name in ("mask_time_prob", "mask_feature_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"`{name}` must be in [0, 1], got {getattr(self, name)}.")
        for name in ("mask_time_length", "mask_feature_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}.")


@strict
class QwenAudioTextConfig(Qwen2Config):
    r"""Qwen-7B decoder of Qwen-Audio: a Qwen2 decoder plus the original's long-context tricks.

    seq_length (`int`, defaults to 2048):
        Training context length. At inference (eval mode) and only past this length, the original rescales the
        rotary base (dynamic NTK, alpha from the prompt length) and scales queries by log_seq_length(position).
    use_dynamic_ntk (`bool`, defaults to `True`):
        Apply the original's dynamic NTK rotary scaling in eval mode.
    use_logn_attn (`bool`, defaults to `True`):
        Apply the original's log-n query scaling in eval mode.
    """

    model_type = "qwen_audio_text"

    vocab_size: int = 155947
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int | None = 32
    max_position_embeddings: int = 8192
    rms_norm_eps: float = 1e-6
    seq_length: int = 2048
    use_dynamic_ntk: bool = True
    use_logn_attn: bool = True


@strict
class QwenAudioConfig(PreTrainedConfig):
    r"""Configuration of [`QwenAudioForConditionalGeneration`].

    audio_config (`dict` or `QwenAudioEncoderConfig`): the audio encoder.
    text_config (`dict` or `QwenAudioTextConfig`): the decoder.
    audio_start_id (`int`, defaults to 155163): id of `<audio>`; `</audio>` is `audio_start_id + 1`. The whole span
        from `<audio>` to `</audio>` inclusive is replaced by [audio-bos, encoder outputs, audio-eos].
    audio_token_id (`int`, defaults to 151851): the placeholder id the processor writes inside a span
        (`[[[AUDIO:modality]]]`); the model does not rely on it, as the original did not.

    Example:

    ```python
    >>> from transformers_qwen_audio import QwenAudioConfig, QwenAudioForConditionalGeneration
    >>> config = QwenAudioConfig()  # Qwen-Audio (Whisper-large-v2 encoder + Qwen-7B)
    >>> model = QwenAudioForConditionalGeneration(config)
    ```
    """

    model_type = "qwen_audio"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=QwenAudioTextConfig, model_type="qwen_audio_text"),
        "audio_config": SubConfigSpec(config_class=QwenAudioEncoderConfig, model_type="qwen_audio_encoder"),
    }

    audio_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    audio_start_id: int = RELEASED_AUDIO_START_ID
    audio_token_id: int | None = RELEASED_AUDIO_PLACEHOLDER_ID
    tie_word_embeddings: bool = False

    @property
    def audio_end_id(self) -> int:
        return self.audio_start_id + 1

    def validate_architecture(self):
        super().validate_architecture()
        vocab_size = self.text_config.vocab_size
        if not 0 <= self.audio_start_id < vocab_size - 1:
            raise ValueError(
                f"audio_start_id={self.audio_start_id} must leave room for </audio> (audio_start_id + 1) inside "
                f"the vocabulary of {vocab_size} tokens"
            )

    @classmethod
    def from_released_config_dict(cls, config_dict: dict, **kwargs) -> "QwenAudioConfig":
        """Build a `QwenAudioConfig` from the released `config.json` of Qwen/Qwen-Audio(-Chat) (`model_type: "qwen"`)."""
        if "audio" not in config_dict or not isinstance(config_dict["audio"], dict):
            raise ValueError(
                "This `qwen` config has no `audio` block: it is a text-only Qwen (v1) checkpoint, not Qwen-Audio. "
                "transformers-qwen-audio only reads Qwen-Audio / Qwen-Audio-Chat checkpoints."
            )
        audio = config_dict["audio"]
        hidden_size = config_dict["hidden_size"]
        num_heads = config_dict["num_attention_heads"]
        kv_channels = config_dict.get("kv_channels", hidden_size // num_heads)
        if kv_channels * num_heads != hidden_size:
            raise ValueError(f"kv_channels={kv_channels} x {num_heads} heads must equal hidden_size={hidden_size}")
        if config_dict.get("rotary_pct", 1.0) != 1.0:
            raise ValueError(f"rotary_pct={config_dict['rotary_pct']} is not supported (Qwen-Audio uses 1.0)")
        if not audio.get("avg_pool", True) or not audio.get("add_audio_bos_eos_token", True):
            raise ValueError("Qwen-Audio checkpoints without avg_pool or audio bos/eos tokens are not supported")
        if audio.get("output_dim", hidden_size) != hidden_size:
            raise ValueError(f"audio output_dim={audio['output_dim']} must equal the decoder hidden_size={hidden_size}")
        for flag in ("use_dynamic_ntk", "use_logn_attn"):
            if not isinstance(config_dict.get(flag, True), bool):
                raise TypeError(f"{flag} must be a boolean, got {config_dict[flag]!r}")

        # The released flags say which dtype the original ran in (fp32 for the tiny checkpoints).
        dtype = next((name for flag, name in _RELEASED_DTYPE_FLAGS if config_dict.get(flag)), None)
        vocab_size = config_dict["vocab_size"]
        audio_start_id = audio.get("audio_start_id", RELEASED_AUDIO_START_ID)
        text_config = dict(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            # The original's MLP is `intermediate_size // 2` wide (w1 and w2 each take half).
            intermediate_size=config_dict["intermediate_size"] // 2,
            num_hidden_layers=config_dict["num_hidden_layers"],
            num_attention_heads=num_heads,
            num_key_value_heads=num_heads,
            max_position_embeddings=config_dict.get("max_position_embeddings", 8192),
            rms_norm_eps=config_dict.get("layer_norm_epsilon", 1e-6),
            rope_parameters={"rope_type": "default", "rope_theta": float(config_dict.get("rotary_emb_base", 10000))},
            initializer_range=config_dict.get("initializer_range", 0.02),
            seq_length=config_dict.get("seq_length", 2048),
            use_dynamic_ntk=config_dict.get("use_dynamic_ntk", True),
            use_logn_attn=config_dict.get("use_logn_attn", True),
            use_cache=config_dict.get("use_cache", True),
            tie_word_embeddings=config_dict.get("tie_word_embeddings", False),
        )
        audio_config = dict(
            num_mel_bins=audio["n_mels"],
            max_source_positions=audio["n_ctx"],
            d_model=audio["n_state"],
            encoder_attention_heads=audio["n_head"],
            encoder_layers=audio["n_layer"],
            encoder_ffn_dim=4 * audio["n_state"],
        )
        # Tiny test checkpoints have no room for the released placeholder id; their processor writes start - 1.
        audio_token_id = RELEASED_AUDIO_PLACEHOLDER_ID if vocab_size > RELEASED_AUDIO_PLACEHOLDER_ID else audio_start_id - 1
        config_kwargs = dict(
            audio_config=audio_config,
            text_config=text_config,
            audio_start_id=audio_start_id,
            audio_token_id=audio_token_id,
            tie_word_embeddings=config_dict.get("tie_word_embeddings", False),
            architectures=["QwenAudioForConditionalGeneration"],
            eos_token_id=151643 if vocab_size > 151643 else None,
            pad_token_id=151643 if vocab_size > 151643 else None,
        )
        if dtype is not None:
            config_kwargs["dtype"] = dtype
        config_kwargs.update(kwargs)
        return cls(**config_kwargs)


@strict
class QwenReleasedConfig(QwenAudioConfig):
    """Reader for the released layout: `AutoConfig` maps `model_type: "qwen"` here, and `from_dict` answers with a
    plain `QwenAudioConfig` (the released `auto_map` to remote code is dropped, nothing of the folder runs)."""

    model_type = "qwen"

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        return_unused_kwargs = kwargs.pop("return_unused_kwargs", False)
        kwargs.pop("name_or_path", None)
        # Loading kwargs that only concern the hub are not config attributes.
        for key in ("_from_auto", "_from_pipeline", "_commit_hash", "trust_remote_code", "token", "revision"):
            kwargs.pop(key, None)
        if kwargs.get("dtype") == "auto":  # a loading instruction ("as stored"), not a config value
            kwargs.pop("dtype")
        config_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in QwenAudioConfig.__dataclass_fields__}
        config = QwenAudioConfig.from_released_config_dict(dict(config_dict), **config_kwargs)
        if return_unused_kwargs:
            return config, kwargs
        return config


def hub_kwargs(kwargs: dict) -> dict:
    """The `from_pretrained` arguments that say where and how files are fetched."""
    return {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}


def declared_chat_format(pretrained_model_name_or_path, **hub_kwargs) -> str | None:
    """The `chat_format` a checkpoint's generation_config.json declares (the released ones do), else None."""
    path = cached_file(
        pretrained_model_name_or_path,
        "generation_config.json",
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        **hub_kwargs,
    )
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            declared = json.load(handle).get("chat_format")
    except (OSError, ValueError, AttributeError):
        return None
    return declared if declared in CHAT_FORMATS else None


__all__ = ["QwenAudioConfig", "QwenAudioEncoderConfig", "QwenAudioTextConfig", "QwenReleasedConfig"]
