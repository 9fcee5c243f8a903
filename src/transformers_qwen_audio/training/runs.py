# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The two training stages end to end, as the recipes (`transformers_qwen_audio.recipes.pretrain` / `.sft`) run them:
multitask pre-training of Qwen-Audio with `QwenAudioPretrainer`, and supervised fine-tuning of Qwen-Audio-Chat (or
the base model) with TRL's `SFTTrainer`. Both resume from the last checkpoint of `output_dir`, save the metrics, the
state, a native checkpoint with its processor and model card, and push from the main process when asked.
"""

import functools
import logging
import os
import sys

import datasets
import transformers
from transformers import set_seed

from .audio_embedding_cache import cache_frozen_audio_embeddings
from .chat_mixture import load_chat_mixture
from .collators import QwenAudioCollator
from .encoder_heads import attach_encoder_ctc_head, attach_encoder_position_head, remove_training_heads
from .mixture import load_audio_mixture
from .model_setup import frozen_modules_pattern, load_checkpoint, load_model, load_processor, set_trainable_modules
from .pretrainer import QwenAudioPretrainer
from .resume import resumable_checkpoint
from .run_checks import LOCAL_DATA_EXTENSIONS, StopOnNonFiniteLoss, check_local_path, check_seed
from .saving import save_and_push
from .sft_loss import PlainLossWithoutTriton
from .word_tokens import add_word_tokens


logger = logging.getLogger(__name__)


def setup_logging(training_args, **arguments) -> None:
    """The handlers and levels of the recipes (the process's log level), then each group of `arguments` logged."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logging.getLogger("transformers_qwen_audio").setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    for name, value in arguments.items():
        logger.info(f"{name.capitalize()} parameters {value}")


def checkpoint_to_resume(training_args) -> str | None:
    """`resume_from_checkpoint`, else the newest complete `checkpoint-N` of `output_dir`, checked before the trainer
    reads it (`resume.resumable_checkpoint`: damaged ones are named and skipped); None starts from scratch."""
    checkpoint = resumable_checkpoint(training_args.output_dir, training_args.resume_from_checkpoint)
    if checkpoint is not None and training_args.resume_from_checkpoint is None:
        logger.info(f"Checkpoint detected, resuming training at {checkpoint=}.")
    return checkpoint


def train_and_evaluate(trainer, training_args, checkpoint, train_samples=None, eval_dataset=None,
                       eval_samples=None) -> None:
    """Trains (resuming from `checkpoint`), saves the train metrics and state, then evaluates when `do_eval`."""
    logger.info("*** Train ***")
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = train_result.metrics
    if train_samples is not None:
        metrics["train_samples"] = train_samples
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()

    if training_args.do_eval and eval_dataset is not None:
        logger.info("*** Evaluate ***")
        metrics = trainer.evaluate(eval_dataset)
        if eval_samples is not None:
            metrics["eval_samples"] = eval_samples
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    logger.info("*** Save model ***")


def run_pretraining(mixture_args, model_args, training_args) -> QwenAudioPretrainer:
    """Pre-training: the data mixture, the model from a checkpoint / `model_config` / Whisper encoder with what is not
    trained frozen, the auxiliary encoder heads, `QwenAudioPretrainer`; the final model is a plain checkpoint."""
    check_seed(training_args)
    check_local_path(model_args.model_name_or_path, "model folder")
    set_seed(training_args.seed)
    setup_logging(training_args, model=model_args, data=mixture_args, training=training_args)
    # The collator reads the raw `audio`/`prompt`/`completion` columns and builds input ids and labels itself.
    training_args.remove_unused_columns = False
    checkpoint = checkpoint_to_resume(training_args)

    with training_args.main_process_first(desc="building the data mixture"):
        dataset = load_audio_mixture(mixture_args, seed=training_args.seed)

    processor = load_processor(model_args)
    model = load_model(model_args, processor)
    model.config.use_cache = not training_args.gradient_checkpointing
    counts = set_trainable_modules(model, model_args.train_modules)
    logger.info(f"Training {model_args.train_modules}: {counts}")
    if training_args.uses_encoder_ctc:
        attach_encoder_ctc_head(model)  # training-only: an auxiliary CTC head on the encoder (encoder_heads)
    if training_args.encoder_position_weight:
        attach_encoder_position_head(model)  # training-only as well: encoder tokens predict their own position

    # Labels are -100 on the audio span, the task tags and padding: only the target and <|endoftext|> are learned.
    # The tags are given at inference (they are the instruction), and the audio positions hold encoder outputs, not
    # tokens; learning them would spend the model's capacity on predicting the prompt.
    data_collator = QwenAudioCollator(
        processor=processor,
        completion_only_loss=True,
        max_length=mixture_args.max_length,
        audio_base_dir=model_args.audio_base_dir,
        encoder_ctc_labels=training_args.uses_encoder_ctc,
        max_bad_row_share=mixture_args.max_bad_row_share,
        num_rows=None if mixture_args.streaming else len(dataset["train"]),
        return_example_rows=True,
        time_shift=training_args.time_shift(),
        clip_joining=training_args.clip_joining(),
        decoded_clip_cache_mb=mixture_args.decoded_clip_cache_mb,
    )
    trainer = QwenAudioPretrainer(
        model=model,
        args=training_args,
        data_collator=data_collator,
        train_dataset=dataset["train"],
        eval_dataset=dataset["test"] if training_args.eval_strategy != "no" and "test" in dataset else None,
        processing_class=processor,
    )
    train_and_evaluate(
        trainer, training_args, checkpoint,
        train_samples=None if mixture_args.streaming else len(dataset["train"]),
        eval_dataset=dataset["test"] if "test" in dataset else None,
    )
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


def load_sft_dataset(script_args) -> datasets.DatasetDict:
    """A local JSON/JSONL/CSV/Parquet file, a local folder, or a Hub dataset id (TRL's `ScriptArguments`)."""
    name = script_args.dataset_name
    if name is None:
        raise ValueError("Set `dataset_name`: a local .json/.jsonl file or folder, or a Hub dataset id.")
    check_local_path(name, "dataset")
    extension = os.path.splitext(name)[1].lower()
    if os.path.isfile(name) and extension in LOCAL_DATA_EXTENSIONS:
        if os.path.getsize(name) == 0:
            raise ValueError(f"The dataset {name} is empty.")
        return datasets.load_dataset(LOCAL_DATA_EXTENSIONS[extension], data_files={script_args.dataset_train_split: name})
    return datasets.load_dataset(name, name=script_args.dataset_config, streaming=script_args.dataset_streaming)


def split_of(dataset, split: str, name: str, streaming: bool):
    """`dataset[split]`, failing with the splits there are, or when it has no rows (the trainer would stop on a bare
    `StopIteration`)."""
    if split not in dataset:
        raise ValueError(f"The dataset {name} has no split {split!r}; its splits: {', '.join(dataset)}.")
    if not streaming and len(dataset[split]) == 0:
        raise ValueError(f"The {split!r} split of the dataset {name} has no rows.")
    return dataset[split]


@functools.cache
def sft_trainer_class():
    """TRL's `SFTTrainer`, stopping at a non-finite loss as the pre-training trainer does, with the plain loss where
    TRL's fused LM head has no Triton kernels (`sft_loss`)."""
    from trl import SFTTrainer

    return type("QwenAudioSFTTrainer", (StopOnNonFiniteLoss, PlainLossWithoutTriton, SFTTrainer),
                {"__module__": __name__})


def default_audio_base_dir(script_args, audio_base_dir: str | None) -> str | None:
    if audio_base_dir is not None:
        return audio_base_dir
    name = script_args.dataset_name
    if name is not None and os.path.exists(name):
        # Relative paths in a local dataset are relative to it, wherever the script runs from.
        return os.path.dirname(os.path.abspath(name)) if os.path.isfile(name) else os.path.abspath(name)
    return None


def run_sft(script_args, training_args, model_args, audio_args, mixture_args):
    """
    Supervised fine-tuning with TRL's `SFTTrainer` (arguments: TRL's `ScriptArguments`, `SFTConfig`, `ModelConfig`,
    the recipe's audio options and `ChatMixtureArguments`). TRL cannot prepare audio datasets: the dataset stays raw
    and `QwenAudioCollator` decodes, renders, tokenizes and masks each batch.
    """
    from accelerate import PartialState
    from transformers import AutoProcessor
    from trl import get_peft_config, get_quantization_config

    check_seed(training_args)
    check_local_path(model_args.model_name_or_path, "model folder")
    set_seed(training_args.seed)
    setup_logging(training_args, model=model_args, script=script_args, audio=audio_args, training=training_args)
    # Keep every column for the collator, which builds the labels itself.
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {**(training_args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    checkpoint = checkpoint_to_resume(training_args)

    if mixture_args.chat_datasets:
        if script_args.dataset_name is not None:
            raise ValueError("Set either `dataset_name` or `chat_datasets` (a weighted mixture), not both.")
        with training_args.main_process_first(desc="building the chat mixture"):
            dataset = load_chat_mixture(mixture_args, seed=training_args.seed, streaming=script_args.dataset_streaming)
        train_split, test_split = "train", "test"
    else:
        dataset = load_sft_dataset(script_args)
        train_split, test_split = script_args.dataset_train_split, script_args.dataset_test_split
    dataset_label = script_args.dataset_name or "of `chat_datasets`"
    streaming = script_args.dataset_streaming
    train_dataset = split_of(dataset, train_split, dataset_label, streaming)
    eval_dataset = split_of(dataset, test_split, dataset_label, streaming) if training_args.eval_strategy != "no" else None

    processor = AutoProcessor.from_pretrained(
        model_args.model_name_or_path, revision=model_args.model_revision, trust_remote_code=False
    )
    logger.info("*** Loading model ***")
    quantization_config = get_quantization_config(model_args)
    model = load_checkpoint(
        model_args,
        quantization_config=quantization_config,
        # k-bit weights cannot move after loading: put each process's copy on its own device.
        device_map={"": PartialState().local_process_index} if quantization_config is not None else None,
    )
    model.config.use_cache = not training_args.gradient_checkpointing
    if audio_args.add_word_tokens:
        if model_args.use_peft:
            raise ValueError("`add_word_tokens` needs full fine-tuning (`use_peft: false`): LoRA leaves the new "
                             "embedding rows untrained.")
        added = add_word_tokens(model, processor, audio_args.add_word_tokens)
        logger.info(f"Added {len(added)} word tokens (vocabulary {len(processor.tokenizer)}): {added}")
    # The audio encoder as pre-training defines it (tower, projection, <audio>/</audio> embeddings).
    train_modules = "language_model" if audio_args.freeze_audio_encoder else "all"
    logger.info(f"Training {train_modules}: {set_trainable_modules(model, train_modules)}")
    peft_config = get_peft_config(model_args)
    if peft_config is not None and audio_args.freeze_audio_encoder:
        # The encoder's attention also has q/k/v_proj: keep adapters off the frozen encoder.
        peft_config.exclude_modules = frozen_modules_pattern(train_modules)

    # A frozen encoder's output per clip, kept so that a clip read again is not encoded again (None: not asked for,
    # or the encoder trains).
    embedding_cache = cache_frozen_audio_embeddings(model, audio_args.audio_embedding_cache_mb)
    # TRL's meanings: `assistant_only_loss` trains the assistant replies only (the {% generation %} blocks of the
    # chat template); `completion_only_loss` (None = decide from the dataset: on for prompt-completion rows) trains
    # the completion of prompt-completion rows only. With neither, every non-padding, non-audio token is trained.
    data_collator = QwenAudioCollator(
        processor=processor,
        completion_only_loss=training_args.completion_only_loss is not False,
        assistant_only_loss=training_args.assistant_only_loss,
        max_length=training_args.max_length,
        pad_to_multiple_of=training_args.pad_to_multiple_of,
        audio_base_dir=default_audio_base_dir(script_args, audio_args.audio_base_dir),
        allow_urls=audio_args.allow_urls,
        max_bad_row_share=audio_args.max_bad_row_share,
        num_rows=None if streaming else len(train_dataset),
        return_example_rows=True,
        decoded_clip_cache_mb=audio_args.decoded_clip_cache_mb,
    )
    trainer = sft_trainer_class()(
        model=model,
        args=training_args,
        data_collator=data_collator,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=peft_config,
    )
    if trainer.accelerator.is_main_process and hasattr(trainer.model, "print_trainable_parameters"):
        trainer.model.print_trainable_parameters()

    train_and_evaluate(
        trainer, training_args, checkpoint,
        train_samples=None if streaming else len(train_dataset),
        eval_dataset=trainer.eval_dataset,
        eval_samples=None if streaming or eval_dataset is None else len(eval_dataset),
    )
    if embedding_cache is not None:
        cache = embedding_cache.cache
        logger.info(f"Audio embedding cache: {cache.hits} clips served, {cache.misses} encoded, "
                    f"{len(cache)} kept in {cache.bytes / 2**20:.0f} MB")
    save_and_push(
        trainer,
        {
            "model_name": training_args.hub_model_id if training_args.push_to_hub else None,
            "dataset_name": script_args.dataset_name or ", ".join(source.path for source in mixture_args.chat_datasets),
            "tags": ["transformers-qwen-audio", "qwen-audio", "audio-text-to-text"],
        },
    )
    if hasattr(trainer, "end"):  # finish the trackers and destroy the process group
        trainer.end()
    return trainer


__all__ = ["load_sft_dataset", "run_pretraining", "run_sft"]
