# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Where a training run starts (a checkpoint, a `model_config` from scratch, optionally a Whisper encoder) and which
parts of the model it trains.
"""

import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoProcessor
from transformers.utils import logging

from ..configuration_qwen_audio import QwenAudioConfig
from ..modeling_qwen_audio import QwenAudioForConditionalGeneration
from ..processing_qwen_audio import QwenAudioProcessor
from ..tiny_checkpoint import write_byte_level_tiktoken
from ..tokenization_qwen_audio import QwenAudioTokenizerFast
from ..word_timestamps import timestamp_token
from .whisper_init import init_audio_encoder_from_whisper


logger = logging.get_logger(__name__)

# Parameter groups by name prefix. The audio encoder of the original is the Whisper tower, its output projection
# (`audio.proj`) and the learned <audio>/</audio> embeddings (`audio.audio_bos_eos_token`).
AUDIO_ENCODER_PREFIXES = ("model.audio_tower.", "model.multi_modal_projector.", "model.audio_boundary_embeddings.")
LANGUAGE_MODEL_PREFIXES = ("model.language_model.", "lm_head.")
TRAIN_MODULES = {
    # The paper's multitask pre-training: the language model stays frozen, the encoder learns.
    "audio_encoder": AUDIO_ENCODER_PREFIXES,
    # Its supervised fine-tuning: the encoder stays frozen, the language model learns.
    "language_model": LANGUAGE_MODEL_PREFIXES,
    "all": AUDIO_ENCODER_PREFIXES + LANGUAGE_MODEL_PREFIXES,
}


@dataclass
class QwenAudioModelArguments:
    """Where the model comes from and what of it is trained."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A released (`Qwen/Qwen-Audio`) or native checkpoint, Hub id or local folder. Leave unset "
                  "and give `model_config` to train from scratch."},
    )
    model_config: dict | None = field(
        default=None,
        metadata={"help": "`QwenAudioConfig` arguments (`audio_config`, `text_config`, ...) for a model trained "
                  "from scratch; vocabulary size and audio token ids are taken from the processor."},
    )
    tokenizer_words: list[str] | None = field(
        default=None,
        metadata={"help": "From scratch without a processor: words that get one token each (alone and after a space) "
                  "in the byte-level tokenizer, as a BPE trained on the corpus would have them; a word is then one "
                  "prediction instead of one per letter."},
    )
    processor_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Processor (tokenizer + feature extractor) folder or Hub id; default: the model's. From "
                  "scratch without one: a byte-level tokenizer (256 byte tokens + Qwen-Audio's special tokens)."},
    )
    whisper_encoder_path: str | None = field(
        default=None,
        metadata={"help": "Local `WhisperModel`/`WhisperForConditionalGeneration` checkpoint whose encoder "
                  "initialises the audio encoder (the paper starts from Whisper-large-v2)."},
    )
    train_modules: str = field(
        default="audio_encoder",
        metadata={"help": "What is trained: `audio_encoder` (Whisper tower + projection; the paper's pre-training), "
                  "`language_model` (the reverse) or `all`.", "choices": list(TRAIN_MODULES)},
    )
    model_revision: str = field(default="main", metadata={"help": "Hub revision of the checkpoint."})
    dtype: str | None = field(
        default="float32",
        metadata={"help": "Weights' dtype: `float32` (use `bf16: true` for mixed precision), `bfloat16`, `auto`."},
    )
    attn_implementation: str | None = field(default=None, metadata={"help": "`sdpa`, `eager`, `flash_attention_2`."})
    audio_base_dir: str | None = field(
        default=None, metadata={"help": "Folder that relative audio paths are resolved against."}
    )

    def __post_init__(self):
        if (self.model_name_or_path is None) == (self.model_config is None):
            raise ValueError("Set exactly one of `model_name_or_path` (start from a checkpoint) and `model_config` "
                             "(train from scratch).")
        trained_prefixes(self.train_modules)  # a clear error for an unknown name, before any data is read


def byte_level_processor(words=()) -> QwenAudioProcessor:
    """A processor whose tokenizer has the 256 byte tokens, one token per word of `words` (alone and after a space)
    and Qwen-Audio's special tokens: enough for a model trained from scratch on a small corpus, and written out with
    the checkpoint like any other."""
    with tempfile.TemporaryDirectory() as folder:
        vocab_file = Path(folder) / "qwen.tiktoken"
        write_byte_level_tiktoken(vocab_file, words)
        tokenizer = QwenAudioTokenizerFast(vocab_file=str(vocab_file))
    return QwenAudioProcessor(tokenizer=tokenizer)


def load_processor(args: QwenAudioModelArguments) -> QwenAudioProcessor:
    source = args.processor_name_or_path or args.model_name_or_path
    if source is None:
        return byte_level_processor(args.tokenizer_words or ())
    return AutoProcessor.from_pretrained(source, revision=args.model_revision, trust_remote_code=False)


def model_from_config(model_config: dict, processor) -> QwenAudioForConditionalGeneration:
    """A randomly initialised model; its vocabulary and audio token ids follow the processor's tokenizer."""
    tokenizer = processor.tokenizer
    config_kwargs = dict(model_config)
    text_config = dict(config_kwargs.pop("text_config", None) or {})
    if text_config.get("vocab_size", len(tokenizer)) < len(tokenizer):
        raise ValueError(f"text_config.vocab_size={text_config['vocab_size']} is smaller than the tokenizer ({len(tokenizer)}).")
    text_config.setdefault("vocab_size", len(tokenizer))
    if "num_attention_heads" in text_config:
        # Qwen-Audio has no grouped-query attention: as many key/value heads as heads unless said otherwise.
        text_config.setdefault("num_key_value_heads", text_config["num_attention_heads"])
    config = QwenAudioConfig(
        text_config=text_config,
        audio_start_id=processor.audio_start_token_id,
        audio_token_id=processor.audio_token_id,
        **config_kwargs,
    )
    model = QwenAudioForConditionalGeneration(config)
    init_audio_front_end_for_training(model)
    init_timestamp_embeddings(model, tokenizer)
    generation_config = model.generation_config
    generation_config.eos_token_id = tokenizer.eos_token_id
    generation_config.pad_token_id = tokenizer.pad_token_id
    # A base model (task tags, no chat template): the pipeline builds raw prompts for it.
    generation_config.chat_format = "raw"
    return model


def init_audio_front_end_for_training(model) -> None:
    """
    He-initialises the encoder's two convolutions (GELU after each) for a model trained from scratch.

    transformers' initialisation (normal, std `init_std`=0.02, as for Whisper) shrinks the log-mel input about 6x per
    convolution: measured on the tiny recipe, the convolutions' output has std 0.02 where the fixed sinusoidal
    positions added to it have 0.62, so the encoder starts out reading positions and the audio's content is a 1/30
    perturbation it needs hundreds of steps to amplify. With `std = sqrt(2 / fan_in)` the content enters at the
    positions' scale. Pre-trained encoders (a checkpoint, `whisper_encoder_path`) overwrite this.
    """
    tower = model.model.audio_tower
    for conv in (tower.conv1, tower.conv2):
        torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        torch.nn.init.zeros_(conv.bias)


def encoder_position_sinusoids(positions: torch.Tensor, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's position table (`modeling_whisper.sinusoids`: log-spaced timescales, sines then cosines) at any,
    also fractional, positions; transformers' function takes a length only."""
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inverse_timescales = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float32))
    scaled = positions.to(torch.float32)[:, None] * inverse_timescales[None, :]
    table = torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)
    return torch.nn.functional.pad(table, (0, channels - table.shape[1]))  # an odd width: one zero column


def init_timestamp_embeddings(model, tokenizer) -> None:
    """
    Gives the timestamp tokens `<|0.00|>` ... `<|30.00|>` of a model trained from scratch the encoder's own position
    code of their time (input embeddings and `lm_head`), at the scale of the other rows.

    Independent random rows make the 3,001 timestamps unrelated classes, each learned from the few targets that name
    it; with rows that vary smoothly with time, what the model learns of `<|1.20|>` carries over to `<|1.21|>` and an
    output near the right time scores better than a far one, which is what word timestamps need. The rows are the
    encoder's sinusoids (Whisper's timescales, at `seconds` x its 50 frames/s after the convolutions), the position
    signal its audio tokens carry: with the same frequencies a linear map reads a token's time into a timestamp row;
    with other frequencies no linear map does.
    """
    seconds = torch.arange(3001, dtype=torch.float32) / 100
    ids = tokenizer.convert_tokens_to_ids([timestamp_token(index / 100) for index in range(3001)])
    if any(token_id is None or token_id == tokenizer.unk_token_id for token_id in ids):
        return  # a vocabulary without the released timestamp tokens: nothing to initialise
    ids = torch.tensor(ids)
    frames_per_second = 100 / 2  # 10 ms mel hop, stride-2 second convolution
    for matrix in {id(m): m for m in (model.get_input_embeddings().weight, model.get_output_embeddings().weight)}.values():
        table = encoder_position_sinusoids(seconds * frames_per_second, matrix.shape[1])
        with torch.no_grad():
            scale = matrix.std() / table.std()
            matrix[ids] = (table * scale).to(matrix.dtype)


def load_checkpoint(args, **from_pretrained_kwargs):
    """`AutoModelForCausalLM` on `args.model_name_or_path` (released or native layout) with its revision, dtype and
    attention implementation: this recipe's model arguments or TRL's `ModelConfig`."""
    return AutoModelForCausalLM.from_pretrained(
        args.model_name_or_path,
        revision=args.model_revision,
        dtype=args.dtype,
        attn_implementation=args.attn_implementation,
        # Never run the released checkpoints' remote code: this package implements the model.
        trust_remote_code=False,
        **from_pretrained_kwargs,
    )


def load_model(args: QwenAudioModelArguments, processor, **from_pretrained_kwargs):
    """The model a run starts from: a checkpoint or `model_config`, then the Whisper encoder when asked."""
    if args.model_config is not None:
        model = model_from_config(args.model_config, processor)
        if args.dtype not in (None, "auto", "float32"):
            model = model.to(getattr(torch, args.dtype))
    else:
        model = load_checkpoint(args, **from_pretrained_kwargs)
    if args.attn_implementation is not None and args.model_config is not None:
        model.set_attn_implementation(args.attn_implementation)
    if args.whisper_encoder_path is not None:
        init_audio_encoder_from_whisper(model, args.whisper_encoder_path)
    return model


def trained_prefixes(train_modules: str) -> tuple[str, ...]:
    """The parameter-name prefixes `train_modules` trains (`TRAIN_MODULES`), with a clear error for another name."""
    if train_modules not in TRAIN_MODULES:
        raise ValueError(f"`train_modules` must be one of {list(TRAIN_MODULES)}, got {train_modules!r}.")
    return TRAIN_MODULES[train_modules]


def set_trainable_modules(model, train_modules: str) -> dict:
    """
    Freezes everything outside `TRAIN_MODULES[train_modules]` (`audio_encoder`, `language_model` or `all`): the one
    definition of what pre-training and fine-tuning (`freeze_audio_encoder`) train. Returns trainable / total
    parameter counts.
    """
    prefixes = trained_prefixes(train_modules)
    trainable = total = 0
    for name, parameter in model.named_parameters():
        # Whisper's sinusoidal position table is a constant, never trained; k-bit weights (a quantized model under
        # LoRA) cannot be: only floating-point tensors take gradients.
        wanted = name.startswith(prefixes) and "embed_positions" not in name and parameter.is_floating_point()
        parameter.requires_grad_(wanted)
        total += parameter.numel()
        trainable += parameter.numel() if wanted else 0
    if trainable == 0:
        raise ValueError(f"`train_modules={train_modules}` leaves no parameter to train.")
    return {"trainable_parameters": trainable, "total_parameters": total}


def frozen_modules_pattern(train_modules: str) -> str | None:
    """A regular expression (peft's `exclude_modules`) that matches the modules `set_trainable_modules` freezes, so
    that LoRA puts no adapter on them: the audio encoder's attention has `q/k/v_proj` too."""
    trained = trained_prefixes(train_modules)
    frozen = [prefix for prefix in AUDIO_ENCODER_PREFIXES + LANGUAGE_MODEL_PREFIXES if prefix not in trained]
    if not frozen:
        return None
    return r"(?:.*\.)?(?:" + "|".join(re.escape(prefix.rstrip(".")) for prefix in frozen) + r")(?:\..*)?"


__all__ = [
    "QwenAudioModelArguments",
    "TRAIN_MODULES",
    "byte_level_processor",
    "init_audio_front_end_for_training",
    "encoder_position_sinusoids",
    "frozen_modules_pattern",
    "init_timestamp_embeddings",
    "load_checkpoint",
    "load_model",
    "load_processor",
    "model_from_config",
    "set_trainable_modules",
]
