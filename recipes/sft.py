# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Supervised fine-tuning of Qwen-Audio / Qwen-Audio-Chat with TRL's `SFTTrainer`.

Follows alignment-handbook's `scripts/sft.py` and TRL's `trl/scripts/sft.py`: one YAML per recipe, any field
overridable on the command line. TRL has no audio support, so the dataset stays raw
(`remove_unused_columns: false`, `dataset_kwargs: {skip_prepare_dataset: true}`, both forced here) and
`QwenAudioChatCollator` decodes, renders, tokenizes and masks each batch.

Usage:

# LoRA on one GPU
python recipes/sft.py --config recipes/qwen-audio-chat/sft/config_lora.yaml

# Several GPUs
accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/sft.py \
    --config recipes/qwen-audio-chat/sft/config_lora.yaml --per_device_train_batch_size 4

# Tiny smoke run on CPU (see recipes/README.md to build the tiny checkpoint and audio)
python recipes/sft.py --config recipes/tiny/sft.yaml --model_name_or_path /tmp/tiny-qwen-audio-chat
"""

import logging
import os
import sys
from dataclasses import dataclass, field

import datasets
import transformers
from accelerate import PartialState
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoProcessor, set_seed
from transformers.trainer_utils import get_last_checkpoint
from trl import (
    ModelConfig,
    ScriptArguments,
    SFTConfig,
    SFTTrainer,
    TrlParser,
    get_peft_config,
    get_quantization_config,
)

import transformers_qwen_audio  # noqa: F401  registers the model and processor with the Auto classes
from transformers_qwen_audio.training import QwenAudioChatCollator, save_and_push
from transformers_qwen_audio.training.chat_mixture import ChatMixtureArguments, load_chat_mixture


logger = logging.getLogger(__name__)

# The original audio encoder: the Whisper tower and its output projection (`audio.proj` of the released weights).
AUDIO_ENCODER_MODULES = ("model.audio_tower", "model.multi_modal_projector")
LOCAL_DATA_EXTENSIONS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class AudioArguments:
    """Audio-specific options of the recipe."""

    audio_base_dir: str | None = field(
        default=None,
        metadata={"help": "Folder that relative audio paths are resolved against (default: the local dataset's folder)."},
    )
    freeze_audio_encoder: bool = field(
        default=True,
        metadata={"help": "Keep the audio encoder (Whisper tower + projection) frozen; with LoRA, put no adapter on it."},
    )
    allow_urls: bool = field(default=False, metadata={"help": "Allow downloading http(s) audio URLs."})


def load_sft_dataset(script_args: ScriptArguments) -> datasets.DatasetDict:
    """A local JSON/JSONL/CSV/Parquet file, a local folder, or a Hub dataset id."""
    name = script_args.dataset_name
    if name is None:
        raise ValueError("Set `dataset_name`: a local .json/.jsonl file or folder, or a Hub dataset id.")
    extension = os.path.splitext(name)[1].lower()
    if os.path.isfile(name) and extension in LOCAL_DATA_EXTENSIONS:
        return load_dataset(LOCAL_DATA_EXTENSIONS[extension], data_files={script_args.dataset_train_split: name})
    return load_dataset(name, name=script_args.dataset_config, streaming=script_args.dataset_streaming)


def default_audio_base_dir(script_args: ScriptArguments, audio_args: AudioArguments) -> str | None:
    if audio_args.audio_base_dir is not None:
        return audio_args.audio_base_dir
    name = script_args.dataset_name
    if name is not None and os.path.exists(name):
        # Relative paths in a local dataset are relative to it, wherever the script runs from.
        return os.path.dirname(os.path.abspath(name)) if os.path.isfile(name) else os.path.abspath(name)
    return None


def main(script_args, training_args, model_args, audio_args=None, mixture_args=None):
    audio_args = audio_args or AudioArguments()
    mixture_args = mixture_args or ChatMixtureArguments()
    set_seed(training_args.seed)

    ###############
    # Setup logging
    ###############
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.info(f"Model parameters {model_args}")
    logger.info(f"Script parameters {script_args}")
    logger.info(f"Audio parameters {audio_args}")
    logger.info(f"Training parameters {training_args}")

    # TRL cannot prepare audio datasets: keep every column for the collator, which builds the labels itself.
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {**(training_args.dataset_kwargs or {}), "skip_prepare_dataset": True}

    # Check for last checkpoint
    last_checkpoint = None
    if os.path.isdir(training_args.output_dir):
        last_checkpoint = get_last_checkpoint(training_args.output_dir)
    if last_checkpoint is not None and training_args.resume_from_checkpoint is None:
        logger.info(f"Checkpoint detected, resuming training at {last_checkpoint=}.")

    ################
    # Load datasets
    ################
    if mixture_args.chat_datasets:
        if script_args.dataset_name is not None:
            raise ValueError("Set either `dataset_name` or `chat_datasets` (a weighted mixture), not both.")
        with training_args.main_process_first(desc="building the chat mixture"):
            dataset = load_chat_mixture(mixture_args, seed=training_args.seed, streaming=script_args.dataset_streaming)
        train_split, test_split = "train", "test"
    else:
        dataset = load_sft_dataset(script_args)
        train_split, test_split = script_args.dataset_train_split, script_args.dataset_test_split

    ################
    # Load processor
    ################
    processor = AutoProcessor.from_pretrained(
        model_args.model_name_or_path, revision=model_args.model_revision, trust_remote_code=False
    )

    ############
    # Load model
    ############
    logger.info("*** Loading model ***")
    quantization_config = get_quantization_config(model_args)
    model = AutoModelForCausalLM.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        dtype=model_args.dtype,
        attn_implementation=model_args.attn_implementation,
        quantization_config=quantization_config,
        # k-bit weights cannot move after loading: put each process's copy on its own device.
        device_map={"": PartialState().local_process_index} if quantization_config is not None else None,
        # Never run the released checkpoints' remote code: this package implements the model.
        trust_remote_code=False,
    )
    model.config.use_cache = not training_args.gradient_checkpointing
    if audio_args.freeze_audio_encoder:
        for name, parameter in model.named_parameters():
            if name.startswith(AUDIO_ENCODER_MODULES):
                parameter.requires_grad_(False)

    peft_config = get_peft_config(model_args)
    if peft_config is not None and audio_args.freeze_audio_encoder:
        # The encoder's attention also has q/k/v_proj: keep adapters on the language model only.
        peft_config.exclude_modules = r".*\.(audio_tower|multi_modal_projector)\..*"

    # TRL's meanings: `assistant_only_loss` trains the assistant replies only (the {% generation %} blocks of the
    # chat template); `completion_only_loss` (None = decide from the dataset: on for prompt-completion rows) trains
    # the completion of prompt-completion rows only. With neither, every non-padding, non-audio token is trained.
    data_collator = QwenAudioChatCollator(
        processor=processor,
        completion_only_loss=training_args.completion_only_loss is not False,
        assistant_only_loss=training_args.assistant_only_loss,
        max_length=training_args.max_length,
        pad_to_multiple_of=training_args.pad_to_multiple_of,
        audio_base_dir=default_audio_base_dir(script_args, audio_args),
        allow_urls=audio_args.allow_urls,
    )

    ############################
    # Initialize the SFT Trainer
    ############################
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        data_collator=data_collator,
        train_dataset=dataset[train_split],
        eval_dataset=(dataset[test_split] if training_args.eval_strategy != "no" else None),
        processing_class=processor,
        peft_config=peft_config,
    )
    if trainer.accelerator.is_main_process and hasattr(trainer.model, "print_trainable_parameters"):
        trainer.model.print_trainable_parameters()

    ###############
    # Training loop
    ###############
    logger.info("*** Train ***")
    checkpoint = None
    if training_args.resume_from_checkpoint is not None:
        checkpoint = training_args.resume_from_checkpoint
    elif last_checkpoint is not None:
        checkpoint = last_checkpoint
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = train_result.metrics
    if not script_args.dataset_streaming:
        metrics["train_samples"] = len(dataset[train_split])
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()

    ##########
    # Evaluate
    ##########
    if training_args.do_eval and trainer.eval_dataset is not None:
        logger.info("*** Evaluate ***")
        metrics = trainer.evaluate()
        if not script_args.dataset_streaming:
            metrics["eval_samples"] = len(dataset[test_split])
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)

    ##################################
    # Save model, model card, push to hub
    ##################################
    logger.info("*** Save model ***")
    save_and_push(
        trainer,
        {
            "model_name": training_args.hub_model_id if training_args.push_to_hub else None,
            "dataset_name": script_args.dataset_name or ", ".join(source.path for source in mixture_args.chat_datasets),
            "tags": ["transformers-qwen-audio", "qwen-audio", "audio-text-to-text"],
        },
    )

    # Finish the trackers and destroy the process group
    if hasattr(trainer, "end"):
        trainer.end()
    return trainer


def make_parser() -> TrlParser:
    return TrlParser((ScriptArguments, SFTConfig, ModelConfig, AudioArguments, ChatMixtureArguments))


if __name__ == "__main__":
    parser = make_parser()
    main(*parser.parse_args_and_config())
