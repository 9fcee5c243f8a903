# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Multitask pre-training of Qwen-Audio (the base model) with transformers' `Trainer`.

Each example is `<audio>...</audio>` + the hierarchical task tags of its source + the target + `<|endoftext|>`,
and only the target and `<|endoftext|>` are learned. The data is a weighted mixture of audio datasets described in
the recipe YAML (`datasets:`, see recipes/README.md); the logic lives in `transformers_qwen_audio.training`.

Usage:

# Tiny run on CPU from a fresh checkout (builds its small dataset on first use)
python recipes/pretrain.py --config recipes/tiny/pretrain.yaml

# The paper's schedule on GPUs: Whisper-initialised encoder trained, language model frozen
accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/pretrain.py \
    --config recipes/qwen-audio/pretrain/config_full.yaml

# Two CPU processes (gloo), e.g. to check a recipe before renting GPUs. `--multi_gpu` makes accelerate start them
# with torchrun; without GPUs they run on CPU (`--cpu --num_processes 2` alone starts one process, or needs mpirun).
CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 recipes/pretrain.py --config recipes/tiny/pretrain.yaml
"""

import logging
import os
import sys

import datasets
import transformers
from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint
from trl import TrlParser

import transformers_qwen_audio  # noqa: F401  registers the model and processor with the Auto classes
from transformers_qwen_audio.training import (
    AudioMixtureArguments,
    QwenAudioChatCollator,
    QwenAudioModelArguments,
    QwenAudioPretrainer,
    QwenAudioPretrainingConfig,
    attach_encoder_ctc_head,
    attach_encoder_position_head,
    load_audio_mixture,
    load_model,
    load_processor,
    remove_training_heads,
    save_and_push,
    set_trainable_modules,
)


logger = logging.getLogger(__name__)


def main(mixture_args, model_args, training_args):
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
    for name in (__name__, "transformers_qwen_audio"):
        logging.getLogger(name).setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.info(f"Model parameters {model_args}")
    logger.info(f"Data parameters {mixture_args}")
    logger.info(f"Training parameters {training_args}")

    # The collator reads the raw `audio`/`prompt`/`completion` columns and builds input ids and labels itself.
    training_args.remove_unused_columns = False

    last_checkpoint = None
    if os.path.isdir(training_args.output_dir):
        last_checkpoint = get_last_checkpoint(training_args.output_dir)
    if last_checkpoint is not None and training_args.resume_from_checkpoint is None:
        logger.info(f"Checkpoint detected, resuming training at {last_checkpoint=}.")

    ################
    # Load datasets
    ################
    with training_args.main_process_first(desc="building the data mixture"):
        dataset = load_audio_mixture(mixture_args, seed=training_args.seed)

    ##########################
    # Load processor and model
    ##########################
    processor = load_processor(model_args)
    model = load_model(model_args, processor)
    model.config.use_cache = not training_args.gradient_checkpointing
    counts = set_trainable_modules(model, model_args.train_modules)
    logger.info(f"Training {model_args.train_modules}: {counts}")
    if training_args.uses_encoder_ctc:
        # Training-only: an auxiliary CTC head on the encoder (transformers_qwen_audio.training.encoder_ctc).
        attach_encoder_ctc_head(model)
    if training_args.encoder_position_weight:
        attach_encoder_position_head(model)  # training-only as well: encoder tokens predict their own position

    # Labels are -100 on the audio span, the task tags and padding: only the target and <|endoftext|> are learned.
    # The tags are given at inference (they are the instruction), and the audio positions hold encoder outputs, not
    # tokens; learning them would spend the model's capacity on predicting the prompt.
    data_collator = QwenAudioChatCollator(
        processor=processor,
        completion_only_loss=True,
        max_length=mixture_args.max_length,
        audio_base_dir=model_args.audio_base_dir,
        encoder_ctc_labels=training_args.uses_encoder_ctc,
    )

    #####################
    # Initialize Trainer
    #####################
    trainer = QwenAudioPretrainer(
        model=model,
        args=training_args,
        data_collator=data_collator,
        train_dataset=dataset["train"],
        eval_dataset=dataset["test"] if training_args.eval_strategy != "no" and "test" in dataset else None,
        processing_class=processor,
    )

    ###############
    # Training loop
    ###############
    logger.info("*** Train ***")
    checkpoint = training_args.resume_from_checkpoint or last_checkpoint
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = train_result.metrics
    if not mixture_args.streaming:
        metrics["train_samples"] = len(dataset["train"])
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()

    ##########
    # Evaluate
    ##########
    if training_args.do_eval and "test" in dataset:
        logger.info("*** Evaluate ***")
        metrics = trainer.evaluate(dataset["test"])
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)

    ####################################
    # Save model, model card, push to hub
    ####################################
    logger.info("*** Save model ***")
    remove_training_heads(trainer.model)  # the final model is a plain QwenAudioForConditionalGeneration
    save_and_push(
        trainer,
        {
            "model_name": training_args.hub_model_id if training_args.push_to_hub else None,
            "dataset": [source.path for source in mixture_args.datasets],
            "finetuned_from": model_args.model_name_or_path,
            "tags": ["transformers-qwen-audio", "qwen-audio", "audio-text-to-text", "pretraining"],
        },
    )
    return trainer


def make_parser() -> TrlParser:
    return TrlParser((AudioMixtureArguments, QwenAudioModelArguments, QwenAudioPretrainingConfig))


if __name__ == "__main__":
    parser = make_parser()
    mixture_args, model_args, training_args = parser.parse_args_and_config()
    main(mixture_args, model_args, training_args)
