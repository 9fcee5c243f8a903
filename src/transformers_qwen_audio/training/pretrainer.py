# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The pre-training `Trainer` of Qwen-Audio and its options (`QwenAudioPretrainingConfig`, `TrainingArguments` plus the
auxiliary encoder losses of `encoder_heads`, the encoder warm-up and its learning-rate restart, noisy input
timestamps), as TRL's `SFTTrainer` / `SFTConfig` pair extends transformers' for fine-tuning.
"""

import dataclasses
from dataclasses import dataclass, field

import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import Trainer, TrainingArguments, get_scheduler
from transformers.trainer_pt_utils import LengthGroupedSampler

from .clip_joining import ClipJoining
from .encoder_heads import (
    HEAD_NAME,
    POSITION_HEAD_NAME,
    attach_encoder_ctc_head,
    attach_encoder_position_head,
    encoder_ctc_loss,
    encoder_position_loss,
)
from .label_positions import keep_logits_at_labels
from .run_checks import StopOnNonFiniteLoss, check_seed
from .time_shift import TimeShift
from .timestamp_noise import perturb_timestamp_inputs, timestamp_token_ids


@dataclass
class QwenAudioPretrainingConfig(TrainingArguments):
    """`TrainingArguments` plus the options of Qwen-Audio pre-training (as TRL's `SFTConfig` extends them)."""

    encoder_ctc_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of an auxiliary CTC loss on the audio encoder, trained on the transcripts of "
                  "transcription sources (their UTF-8 bytes). Shortens the plateau of training from scratch; 0 "
                  "disables it. The head is dropped from the final model."},
    )

    encoder_ctc_warmup_steps: int = field(
        default=0,
        metadata={"help": "First optimizer steps that train the audio encoder alone, with the CTC loss (the decoder "
                  "is not run): from scratch, the encoder's own short pre-training, as the paper starts from a "
                  "pre-trained Whisper encoder; `encoder_ctc_weight` applies after them. Under DDP set "
                  "`ddp_find_unused_parameters: true` (the decoder has no gradient in those steps)."},
    )

    joint_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Restart the learning-rate schedule when the encoder warm-up ends: the warm-up follows "
                  "`lr_scheduler_type` (with its warm-up share) over its own steps from `learning_rate`, the joint "
                  "steps follow it again over theirs, from this peak. None: one schedule over the whole run."},
    )

    encoder_position_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of an auxiliary loss on the audio encoder: each output token predicts its own "
                  "position (a linear head over the 750 positions of 30 s). CTC alone lets the encoder forget where in "
                  "the clip a token lies, which the decoder needs for word timestamps. Applies in the CTC warm-up and "
                  "after it; 0 disables it. The head is dropped from the final model."},
    )

    timestamp_input_noise: float = field(
        default=0.0,
        metadata={"help": "Standard deviation in seconds of Gaussian noise on the target timestamps the decoder "
                  "reads in training steps (word-timestamp targets); their labels stay exact. Makes the model place "
                  "each boundary from the audio rather than from the previous one (see `training.timestamp_noise`). "
                  "0 disables it."},
    )

    time_shift_probability: float = field(
        default=0.0,
        metadata={"help": "Share of training batches whose clips start after silence, anywhere up to "
                  "`time_shift_max_seconds`, their target timestamps moved with them (see `training.time_shift`): "
                  "a model trained on clips of a few seconds otherwise reads speech only where those clips have it. "
                  "0 disables it; evaluation batches are never shifted."},
    )
    time_shift_max_seconds: float = field(
        default=30.0,
        metadata={"help": "Longest a shifted clip may end (the window the model reads is 30 s)."},
    )
    clip_joining_probability: float = field(
        default=0.0,
        metadata={"help": "Share of training batches whose transcription examples of the same task are joined, "
                  "with short pauses, into recordings of several utterances, their targets into one (see "
                  "`training.clip_joining`): teaches targets longer than any one clip's with no added audio (the rest "
                  "of the batch is padded to the joined example). 0 disables it; evaluation batches are never "
                  "joined."},
    )
    clip_joining_max_clips: int = field(
        default=3,
        metadata={"help": "Most clips joined into one recording (it also stays within 30 s)."},
    )

    def __post_init__(self):
        super().__post_init__()
        # Checked here, where the recipe's other mistakes are, rather than when the collator is built; the seed
        # first, since the time shift seeds its generator with it.
        check_seed(self)
        self.time_shift()
        self.clip_joining()
        if self.timestamp_input_noise < 0:
            raise ValueError(f"`timestamp_input_noise` must be >= 0 seconds, got {self.timestamp_input_noise}.")
        if self.joint_learning_rate is not None and self.joint_learning_rate <= 0:
            raise ValueError(f"`joint_learning_rate` must be > 0, got {self.joint_learning_rate}.")
        if self.joint_learning_rate is not None and not self.encoder_ctc_warmup_steps:
            raise ValueError("`joint_learning_rate` restarts the schedule after the encoder warm-up: set "
                             "`encoder_ctc_warmup_steps` too.")
        if self.encoder_position_weight < 0:
            raise ValueError(f"`encoder_position_weight` must be >= 0, got {self.encoder_position_weight}.")
        if self.encoder_ctc_weight < 0:
            raise ValueError(f"`encoder_ctc_weight` must be >= 0, got {self.encoder_ctc_weight}.")
        if self.encoder_ctc_warmup_steps < 0:
            raise ValueError(f"`encoder_ctc_warmup_steps` must be >= 0, got {self.encoder_ctc_warmup_steps}.")

    def time_shift(self) -> TimeShift | None:
        """The collator's time-shift augmentation, None when disabled (built either way: it checks both fields)."""
        time_shift = TimeShift(self.time_shift_probability, self.time_shift_max_seconds, seed=self.seed)
        return time_shift if self.time_shift_probability else None

    def clip_joining(self) -> ClipJoining | None:
        """The collator's clip-joining augmentation, None when disabled (built either way: it checks both fields)."""
        # Its own generator, apart from the time shift's, so that enabling one does not change the other's draws.
        clip_joining = ClipJoining(self.clip_joining_probability, self.clip_joining_max_clips, seed=self.seed + 1)
        return clip_joining if self.clip_joining_probability else None

    @property
    def uses_encoder_ctc(self) -> bool:
        """Whether the run needs the CTC head and the collator's `ctc_labels`."""
        return self.encoder_ctc_weight > 0 or self.encoder_ctc_warmup_steps > 0


class QwenAudioPretrainer(StopOnNonFiniteLoss, Trainer):
    """`Trainer` (stopping at a non-finite loss, `run_checks.StopOnNonFiniteLoss`) that adds `encoder_ctc_weight` x the encoder CTC loss when the batch carries `ctc_labels` (the
    collator's `encoder_ctc_labels=True`), and `encoder_position_weight` x the position loss. The encoder output is
    read with a forward hook, so the model runs once. During the first `encoder_ctc_warmup_steps` steps only the
    encoder and its heads run and learn. Training
    steps project only the labelled positions onto the vocabulary (`label_positions`: the same loss, far fewer
    logits); evaluation keeps every position's logits. With `timestamp_input_noise`, training steps read noisy copies
    of the target timestamps (`timestamp_noise`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._auxiliary_losses = {}  # name -> (sum, count) since the last log
        self._timestamp_ids = None
        if getattr(self.args, "timestamp_input_noise", 0.0) > 0:
            tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
            self._timestamp_ids = timestamp_token_ids(tokenizer) if tokenizer is not None else None
            if self._timestamp_ids is None:
                raise ValueError("`timestamp_input_noise` needs the processor's tokenizer (`processing_class`) with "
                                 "the timestamp tokens <|0.00|> ... <|30.00|> as one block of ids.")

    def _get_dataloader(self, dataset, description, batch_size, sampler_fn=None, is_training=False, dataloader_key=None):
        # Time shifting and clip joining are training augmentations: evaluation reads the clips as they are.
        collator = self.data_collator
        augmented = any(getattr(collator, name, None) is not None for name in ("time_shift", "clip_joining"))
        if not is_training and augmented:
            self.data_collator = dataclasses.replace(collator, time_shift=None, clip_joining=None)
        try:
            return super()._get_dataloader(dataset, description, batch_size, sampler_fn=sampler_fn,
                                           is_training=is_training, dataloader_key=dataloader_key)
        finally:
            self.data_collator = collator

    def _get_train_sampler(self, train_dataset=None):
        sampler = super()._get_train_sampler(train_dataset)
        # `group_by_length` reads `dataset["length"]`, which `datasets` 4+ returns as a lazy `Column`: the sampler then
        # fetched one row per index and sorted each epoch in ~5 s on the tiny recipe (7,804 rows); a list sorts in ms.
        if isinstance(sampler, LengthGroupedSampler) and not isinstance(sampler.lengths, list):
            sampler.lengths = list(sampler.lengths)
        return sampler

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        warmup_steps = getattr(self.args, "encoder_ctc_warmup_steps", 0)
        joint_learning_rate = getattr(self.args, "joint_learning_rate", None)
        if self.lr_scheduler is not None or joint_learning_rate is None or warmup_steps >= num_training_steps:
            return super().create_scheduler(num_training_steps, optimizer)
        optimizer = optimizer or self.optimizer
        # Two runs of the configured schedule, as transformers builds it, joined at the end of the warm-up; the
        # second is scaled to its own peak (LambdaLR multiplies the optimizer's `learning_rate`).
        schedules = [get_scheduler(self.args.lr_scheduler_type, optimizer=optimizer,
                                   num_warmup_steps=self.args.get_warmup_steps(steps), num_training_steps=steps,
                                   scheduler_specific_kwargs=self.args.lr_scheduler_kwargs)
                     for steps in (warmup_steps, num_training_steps - warmup_steps)]
        if not all(isinstance(schedule, LambdaLR) for schedule in schedules):
            raise ValueError(f"`joint_learning_rate` needs a step-wise schedule; `lr_scheduler_type="
                             f"{self.args.lr_scheduler_type}` is not one (use e.g. cosine, linear, constant).")
        phases = [schedule.lr_lambdas[0] for schedule in schedules]
        scale = joint_learning_rate / self.args.learning_rate

        def factor(step: int) -> float:
            return phases[0](step) if step < warmup_steps else scale * phases[1](step - warmup_steps)

        self.lr_scheduler = LambdaLR(optimizer, factor)
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ctc_labels = inputs.pop("ctc_labels", None)
        if model.training and self._timestamp_ids is not None and "labels" in inputs:
            inputs = {**inputs, "input_ids": perturb_timestamp_inputs(
                inputs["input_ids"], inputs["labels"], self._timestamp_ids, self.args.timestamp_input_noise)}
        if model.training and self.label_smoother is None and self.compute_loss_func is None:
            inputs = keep_logits_at_labels(inputs)
        ctc_weight = getattr(self.args, "encoder_ctc_weight", 0.0)
        position_weight = getattr(self.args, "encoder_position_weight", 0.0)
        warming_up = ctc_labels is not None and self.state.global_step < getattr(self.args, "encoder_ctc_warmup_steps", 0)
        if ctc_labels is None:
            ctc_weight = 0.0
        # Evaluation reports the language-model loss alone, comparable between runs with and without the heads.
        if not (ctc_weight or position_weight or warming_up) or "input_features" not in inputs or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        unwrapped = self.accelerator.unwrap_model(model)
        heads = {}
        for name, attach, wanted in ((HEAD_NAME, attach_encoder_ctc_head, ctc_weight or warming_up),
                                     (POSITION_HEAD_NAME, attach_encoder_position_head, position_weight)):
            if wanted:
                heads[name] = getattr(unwrapped, name, None)
                if heads[name] is None:
                    raise ValueError(f"The auxiliary encoder loss needs its head: call `{attach.__name__}(model)` "
                                     "before creating the trainer.")
        features, mask = inputs["input_features"], inputs.get("feature_attention_mask")
        if warming_up:
            # Each clip encoded with the clips of its own row, as the full forward does; the decoder is not run.
            _, clip_rows, _, _ = unwrapped.model.audio_spans(*unwrapped.model.audio_boundaries(inputs["input_ids"], None))
            states = unwrapped.model.audio_tower(features, mask, clip_rows).last_hidden_state
            loss = self._encoder_losses(unwrapped, heads, states, features, mask, ctc_labels, 1.0, position_weight)
            if loss is None:  # nothing to learn in this batch: a zero loss that still reaches every parameter
                loss = 0.0 * states.sum() + 0.0 * sum(p.sum() for head in heads.values() for p in head.parameters())
            else:
                loss = self._scaled_for_accumulation(loss, num_items_in_batch)
            return (loss, None) if return_outputs else loss
        captured = {}

        def keep_encoder_output(module, args, output):
            captured["states"] = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]

        handle = unwrapped.model.audio_tower.register_forward_hook(keep_encoder_output)
        try:
            loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        finally:
            handle.remove()
        auxiliary = self._encoder_losses(unwrapped, heads, captured["states"], features, mask, ctc_labels, ctc_weight,
                                         position_weight)
        if auxiliary is not None:
            loss = loss + self._scaled_for_accumulation(auxiliary, num_items_in_batch).to(loss.dtype)
        return (loss, outputs) if return_outputs else loss

    def _encoder_losses(self, unwrapped, heads, states, features, mask, ctc_labels, ctc_weight, position_weight):
        """`ctc_weight` x CTC + `position_weight` x position loss of the encoder output (each logged), or None."""
        audio_config = unwrapped.config.audio_config
        total = None
        if ctc_weight:
            ctc = encoder_ctc_loss(heads[HEAD_NAME], states, features, mask, ctc_labels, audio_config)
            if ctc is not None:
                self._record("encoder_ctc_loss", ctc)
                total = ctc_weight * ctc
        if position_weight:
            position = encoder_position_loss(heads[POSITION_HEAD_NAME], states, features, mask, audio_config)
            self._record("encoder_position_loss", position)
            total = position_weight * position if total is None else total + position_weight * position
        return total

    def _scaled_for_accumulation(self, loss, num_items_in_batch):
        """A per-batch mean, scaled as `training_step` expects: when the language-model loss is normalised by
        `num_items_in_batch` (counted over the whole accumulation), the trainer does not divide by the accumulation
        steps afterwards, so this term is divided here."""
        scaled = self.loss_is_scaled_for_ga
        if scaled is None:
            scaled = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or self.compute_loss_func is not None
        steps = getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
        return loss / steps if scaled else loss

    def _record(self, name: str, loss: torch.Tensor) -> None:
        # Summed on the device: read once per logging step, not synchronised every step.
        total, count = self._auxiliary_losses.get(name, (0.0, 0))
        self._auxiliary_losses[name] = (total + loss.detach(), count + 1)

    def log(self, logs: dict, *args, **kwargs):
        if self._auxiliary_losses and "loss" in logs:
            for name, (total, count) in self._auxiliary_losses.items():
                logs[name] = round(float(total) / count, 4)
            self._auxiliary_losses = {}
        super().log(logs, *args, **kwargs)


__all__ = ["QwenAudioPretrainer", "QwenAudioPretrainingConfig"]
