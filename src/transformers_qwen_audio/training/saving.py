# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""The end of a recipe: the final model, its processor and card in `output_dir`, then the upload."""

from transformers.utils import logging


logger = logging.get_logger(__name__)


def save_and_push(trainer, card_kwargs: dict) -> None:
    """
    Saves the final model to `output_dir` and, with `push_to_hub`, uploads that folder from the main process only.
    `card_kwargs` go to `trainer.create_model_card` (its arguments differ between `Trainer` and TRL's trainers).

    `trainer.save_model` runs on every process: under FSDP and DeepSpeed ZeRO-3 it gathers the sharded weights (a
    collective), and then only the main process writes. The upload and the model card are main-process work; the
    others wait, so no process exits while the upload still reads the files.
    """
    args = trainer.args
    trainer.save_model(args.output_dir)
    if trainer.accelerator.is_main_process:
        trainer.create_model_card(**card_kwargs)
        # Training runs without the KV cache (activation checkpointing); inference wants it back.
        trainer.model.config.use_cache = True
        trainer.model.config.save_pretrained(args.output_dir)
        logger.info(f"Model saved to {args.output_dir}")
        if args.push_to_hub:
            from huggingface_hub import upload_folder

            repo_id = getattr(trainer, "hub_model_id", None) or args.hub_model_id
            logger.info(f"Pushing {args.output_dir} to {repo_id}")
            upload_folder(
                repo_id=repo_id,
                folder_path=args.output_dir,
                commit_message="End of training",
                token=args.hub_token,
                revision=args.hub_revision,
                # Intermediate checkpoints and optimizer states stay local.
                ignore_patterns=["checkpoint-*", "*.pt", "*.pth", "runs/*"],
            )
    trainer.accelerator.wait_for_everyone()


__all__ = ["save_and_push"]
