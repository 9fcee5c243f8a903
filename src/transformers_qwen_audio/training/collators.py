# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The data collator of both training stages: chat and prompt-completion rows (fine-tuning Qwen-Audio-Chat) and
base-model rows (pre-training Qwen-Audio, its task tags + target).

TRL's `SFTTrainer` has no audio support, so training datasets stay raw (`remove_unused_columns=False`,
`dataset_kwargs={"skip_prepare_dataset": True}`) and [`QwenAudioCollator`] does everything on the fly: it decodes
the clips with `audio_io.load_audio` (never torchcodec), renders the conversations with the processor's chat template,
tokenizes them with the audio spans expanded, pads on the right and builds the labels.
"""

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers.utils import logging
from transformers.utils.chat_template_utils import render_jinja_template

from ..audio_io import QWEN_AUDIO_SAMPLING_RATE, is_single_clip
from ..conversation import find_audio_spans, load_clip, validate_conversation
from ..modeling_qwen_audio import locate_audio_spans
from ..processing_qwen_audio import FEATURE_PADDING_MODES
from ..tokenization_qwen_audio import AUDIO_END_TOKEN, AUDIO_START_TOKEN
from ..word_timestamps import timestamp_token
from .clip_cache import DecodedClipCache
from .clip_joining import JOINABLE_TASK_TAG, ClipJoining, join_completions, join_waveforms
from .mixture import MIN_ROWS_FOR_BAD_SHARE
from .run_checks import EXAMPLE_ROWS
from .time_shift import TimeShift, shift_timestamps, shift_waveform


logger = logging.get_logger(__name__)

IGNORE_INDEX = -100
# Columns a conversational example may carry its clips in, for audio parts written without a source.
_AUDIO_COLUMNS = ("audios", "audio")


def _as_clip_list(audio) -> list:
    if audio is None:
        return []
    return [audio] if is_single_clip(audio) else list(audio)


def dataset_row(example) -> str | None:
    """How messages name an example's dataset row, when it carries one (the mixtures' `source` and `row` columns)."""
    row = example.get("row") if isinstance(example, Mapping) else None
    if row is None:
        return None
    source = example.get("source")
    return f"Source {source}, row {row}" if source else f"Row {row}"


def transcript_ctc_labels(transcript: str | None) -> list[int]:
    """The encoder CTC target of one clip (`encoder_heads.py`): its transcript's UTF-8 bytes shifted past the blank,
    class 0 (empty: no target)."""
    return [byte + 1 for byte in (transcript or "").strip().encode("utf-8")]


def pad_ctc_labels(rows: list[list[int]]) -> torch.Tensor:
    """`[clips, longest]` labels padded with -100 (a clip without a transcript is a row of -100)."""
    width = max((len(row) for row in rows), default=0)
    labels = torch.full((len(rows), max(width, 1)), IGNORE_INDEX, dtype=torch.long)
    for index, row in enumerate(rows):
        labels[index, : len(row)] = torch.tensor(row, dtype=torch.long)
    return labels


@dataclass
class _Example:
    """One example made ready for the processor: its text, its clips, and the character ranges to train on
    (`None`: the whole text)."""

    text: str
    clips: list
    trainable_ranges: list | None
    row: str = ""
    waveforms: list | None = None
    transcript: str | None = None
    # Where a base-model example's completion starts in `text` (None for conversations).
    completion_start: int | None = None


def _single_clip_seconds(example: _Example) -> float | None:
    """The clip's length of a base-model example with one clip (what the time shift and clip joining act on), None
    for any other example."""
    if example.completion_start is None or len(example.waveforms) != 1:
        return None
    return len(example.waveforms[0]) / QWEN_AUDIO_SAMPLING_RATE


@dataclass
class QwenAudioCollator:
    r"""
    Collates raw examples into a right-padded training batch for [`QwenAudioForConditionalGeneration`]:
    `input_ids`, `attention_mask`, `labels` and, when the batch holds audio, `input_features`
    (`[num_clips, 80, frames]`, clips in span order row by row) and `feature_attention_mask`. The features are padded
    only past the batch's longest clip (the processor's `feature_padding="longest"`): the model reads the same values
    as with the 30 s window, for a fraction of the log-mel cost of short clips.

    Three example formats are accepted (they may be mixed in a batch):

    - **conversational**: `{"messages": [{"role": ..., "content": str | [parts]}, ...]}` in the transformers chat
      format, as `conversation.validate_conversation` defines it (errors name the example, the message and the
      part). Audio parts are `{"type": "audio", "audio" | "path" | "url" | "array": clip}` (or the same without
      `"type"`) where a clip is a path, a `{"array", "sampling_rate"}` dict, a `{"path", "bytes"}` dict (a
      `datasets` `Audio(decode=False)` value) or a 16 kHz waveform (give another rate with a `"sampling_rate"` key in
      the part). Parts without a source take their clips, in order, from an `"audios"` (or `"audio"`) column.
    - **conversational prompt-completion** (TRL's format): `{"prompt": [messages], "completion": [messages]}`.
    - **base model**: `{"audio": clip | [clips] | None, "prompt": str, "completion": str}` for the non-chat Qwen-Audio.
      `prompt` holds the hierarchical task tags (see `task_prompts.build_task_prompt`); one `<audio></audio>` per clip
      is put in front of it unless it already has its spans. The tokenizer's eos token (`<|endoftext|>`) closes the
      completion.

    Labels are -100 on padding and on the audio spans (`<audio>` ... `</audio>`, found by the model's own
    `locate_audio_spans`: their positions hold encoder outputs, not tokens to predict), and, as TRL means
    its two options:

    - `assistant_only_loss`: only the assistant replies and their closing `<|im_end|>` are trained: the
      `{% generation %}` blocks of the chat template, mapped onto the tokens as
      `apply_chat_template(..., return_assistant_tokens_mask=True)` does (a base-model example: its completion);
    - `completion_only_loss`: for prompt-completion examples, only the completion is trained (TRL renders the
      prompt with the generation prompt, so a chat completion starts after `<|im_start|>assistant\n`).

    For backward compatibility `assistant_only_loss=None` (the default) follows `completion_only_loss`, so that the
    default trains the assistant replies only and `completion_only_loss=False` every non-padding, non-audio token.

    Args:
        processor ([`QwenAudioProcessor`]):
            The processor of the checkpoint being trained.
        completion_only_loss (`bool`, *optional*, defaults to `True`):
            Train only on the completion of prompt-completion examples (see above).
        assistant_only_loss (`bool`, *optional*):
            Train only on the assistant replies (see above); `None` follows `completion_only_loss`.
        max_length (`int`, *optional*):
            Longest sequence in tokens. Longer ones are cut on the right, never inside an audio span (the cut moves to
            the start of the span and the clips cut off are dropped), with a warning.
        pad_to_multiple_of (`int`, *optional*):
            Pad the sequence length up to a multiple of this.
        messages_field (`str`, *optional*, defaults to `"messages"`):
            Column holding the conversations.
        audio_base_dir (`str` or `os.PathLike`, *optional*):
            Folder that relative audio paths are resolved against.
        allow_urls (`bool`, *optional*, defaults to `False`):
            Whether http(s) audio URLs may be downloaded.
        allow_audio_paths_in_text (`bool`, *optional*, defaults to `False`):
            Read `<audio>PATH</audio>` written in message text as audio parts (the original's format).
        feature_padding (`str`, *optional*, defaults to `"longest"`):
            The processor's `feature_padding`: `"longest"` (the batch's longest clip) or `"max_length"` (every clip
            padded to 30 s, 3000 frames, as the original's data loader does; same loss, slower).
        encoder_ctc_labels (`bool`, *optional*, defaults to `False`):
            Add `ctc_labels` (`[num_clips, longest]`, -100 padded): the UTF-8 bytes of each clip's `transcript` (a
            column of the pre-training mixture) for the auxiliary encoder CTC loss of `QwenAudioPretrainer`. A clip
            of a row without a transcript, or of a row with several clips, gets no target.
        max_bad_row_share (`float`, *optional*):
            `None`: a clip that cannot be read (missing, undecodable, too short) raises, naming its example. A share
            in [0, 1): such examples are skipped, each named in the log with its dataset row and source, and
            collating stops with their list once they are more than this share of `num_rows` (of the examples
            collated so far when `num_rows` is not given, judged over at least `MIN_ROWS_FOR_BAD_SHARE`). A batch
            whose every example is bad collates the previous batch's examples again, so that the step keeps its place
            (and every process of a distributed run takes it); the first batch of a process has none to repeat and
            stops with the list.
        num_rows (`int`, *optional*):
            Rows of the dataset being collated, for `max_bad_row_share`.
        return_example_rows (`bool`, *optional*, defaults to `False`):
            Add `example_rows` (a list of strings, not a tensor): each example's dataset row, for the trainers'
            messages (`run_checks.StopOnNonFiniteLoss` pops it before the model runs).
        time_shift ([`~training.time_shift.TimeShift`], *optional*):
            Training-time augmentation of base-model examples with one clip: some batches' clips start after
            silence, their target timestamps moved with them (`training.time_shift`). Conversations are left as
            they are.
        clip_joining ([`~training.clip_joining.ClipJoining`], *optional*):
            Training-time augmentation: in some batches, transcription examples of one clip that share a prompt are
            joined into one recording of several utterances, their targets into one (`training.clip_joining`).
            Applied before `time_shift`.
        decoded_clip_cache_mb (`float`, *optional*, defaults to 0):
            Keep the clips decoded from file paths, up to this many megabytes (`training.clip_cache`), so that later
            epochs do not decode them again; 0 decodes every read.
    """

    processor: Any
    completion_only_loss: bool = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    messages_field: str = "messages"
    audio_base_dir: str | os.PathLike | None = None
    allow_urls: bool = False
    assistant_only_loss: bool | None = None
    allow_audio_paths_in_text: bool = False
    feature_padding: str = "longest"
    encoder_ctc_labels: bool = False
    max_bad_row_share: float | None = None
    num_rows: int | None = None
    return_example_rows: bool = False
    time_shift: TimeShift | None = None
    clip_joining: ClipJoining | None = None
    decoded_clip_cache_mb: float = 0.0

    def __post_init__(self):
        tokenizer = self.processor.tokenizer
        if tokenizer.pad_token_id is None:
            raise ValueError("The processor's tokenizer has no pad token; set `tokenizer.pad_token` first.")
        if self.feature_padding not in FEATURE_PADDING_MODES:
            raise ValueError(f"`feature_padding` must be one of {FEATURE_PADDING_MODES}, got {self.feature_padding!r}.")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"`max_length` must be positive, got {self.max_length}.")
        if self.max_bad_row_share is not None and not 0 <= self.max_bad_row_share < 1:
            raise ValueError(f"`max_bad_row_share` must be in [0, 1), got {self.max_bad_row_share!r}.")
        if self.assistant_only_loss is None:
            self.assistant_only_loss = bool(self.completion_only_loss)
        if not self.decoded_clip_cache_mb >= 0:
            raise ValueError(f"`decoded_clip_cache_mb` must be 0 or more, got {self.decoded_clip_cache_mb!r}.")
        self.clip_cache = DecodedClipCache(int(self.decoded_clip_cache_mb * 2**20)) if self.decoded_clip_cache_mb \
            else None
        self.skipped = []  # one line per example skipped for a clip that cannot be read
        self._examples_seen = 0
        self._previous_batch = None
        self.pad_token_id = tokenizer.pad_token_id
        self.audio_start_token_id = tokenizer.convert_tokens_to_ids(AUDIO_START_TOKEN)
        self.audio_end_token_id = tokenizer.convert_tokens_to_ids(AUDIO_END_TOKEN)

    # ------------------------------------------------------------------------------------------------------------
    # Examples: each becomes a text, the character ranges to train on, and its clips
    # ------------------------------------------------------------------------------------------------------------
    def _render(self, messages: list[dict], **kwargs) -> tuple[str, list]:
        """The conversation as text and the character ranges of its {% generation %} blocks (assistant replies)."""
        (text,), (generation_ranges,) = render_jinja_template(
            conversations=[messages],
            chat_template=self.processor.chat_template,
            return_assistant_tokens_mask=True,
            **self.processor.tokenizer.special_tokens_map,
            **kwargs,
        )
        return text, [tuple(span) for span in generation_ranges]

    def _chat_example(self, messages, prompt_length: int | None, example: Mapping, index: int) -> _Example:
        """Validates a conversation (the one conversation model), takes its clips out and renders it."""
        column = next((key for key in _AUDIO_COLUMNS if example.get(key) is not None), None)
        canonical = validate_conversation(
            messages,
            row=index,
            clips=_as_clip_list(example[column]) if column else None,
            allow_audio_paths_in_text=self.allow_audio_paths_in_text,
        )
        clips = []
        for message in canonical:
            if isinstance(message["content"], str):
                continue
            for part in message["content"]:
                if part["type"] == "audio":
                    clips.append(part["audio"])
                    # The processor gets the decoded clips: the source written inside the span does not matter.
                    part["audio"] = ""
        text, assistant_ranges = self._render(canonical)
        completion_start = None
        if prompt_length is not None:
            prompt_text, _ = self._render(canonical[:prompt_length], add_generation_prompt=True)
            if not text.startswith(prompt_text):
                raise ValueError(
                    f"Example {index}: the chat template renders the prompt differently alone and followed by the "
                    "completion, so the completion cannot be located."
                )
            completion_start = len(prompt_text)
        ranges = self._trainable_ranges(len(text), assistant_ranges, completion_start)
        if self.assistant_only_loss and not ranges:
            raise ValueError(f"Example {index}: no assistant message to train on.")
        return _Example(text, clips, ranges)

    def _base_example(self, example: Mapping, index: int) -> _Example:
        """A base-model example: `<audio></audio>` per clip, the task tags, then the completion and eos."""
        prompt, completion = example["prompt"], example["completion"]
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise ValueError(
                f"Example {index}: `prompt` and `completion` must both be strings (base model) or both lists of "
                f"messages (chat), got {type(prompt).__name__} and {type(completion).__name__}."
            )
        clips = _as_clip_list(example.get("audio"))
        try:
            num_spans = len(find_audio_spans(prompt))
        except ValueError as error:
            raise ValueError(f"Example {index}: {error}") from None
        if num_spans == 0:
            prompt = (AUDIO_START_TOKEN + AUDIO_END_TOKEN) * len(clips) + prompt
        elif num_spans != len(clips):
            raise ValueError(f"Example {index}: the prompt has {num_spans} <audio></audio> spans but {len(clips)} clips.")
        eos_token = self.processor.tokenizer.eos_token
        if not completion.endswith(eos_token):
            completion = completion + eos_token
        if not completion.strip():
            raise ValueError(f"Example {index}: empty completion.")
        text = prompt + completion
        # The completion is the base model's "assistant reply": both options train it alone.
        completion_range = [(len(prompt), len(text))]
        trains_completion = self.assistant_only_loss or self.completion_only_loss
        return _Example(text, clips, completion_range if trains_completion else None, completion_start=len(prompt))

    def _example(self, example, index: int) -> _Example:
        if not isinstance(example, Mapping):
            raise ValueError(f"Example {index} must be a dict, got {type(example).__name__}.")
        if example.get(self.messages_field) is not None:
            messages = example[self.messages_field]
            if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)) or len(messages) == 0:
                raise ValueError(f"Example {index}: `{self.messages_field}` must be a non-empty list of messages.")
            return self._chat_example(messages, None, example, index)
        if example.get("prompt") is not None and example.get("completion") is not None:
            prompt, completion = example["prompt"], example["completion"]
            if isinstance(prompt, list) and isinstance(completion, list):
                return self._chat_example(prompt + completion, len(prompt), example, index)
            return self._base_example(example, index)
        raise ValueError(
            f"Example {index} has keys {sorted(example)}: expected a `{self.messages_field}` conversation or "
            "`prompt` and `completion` (with `audio` for the base model)."
        )

    def _trainable_ranges(self, length: int, assistant_ranges: list, completion_start: int | None) -> list | None:
        """Character ranges to train on (None: the whole text): the assistant replies and/or the completion."""
        ranges = assistant_ranges if self.assistant_only_loss else None
        if self.completion_only_loss and completion_start is not None:
            ranges = [
                (max(start, completion_start), end) for start, end in ranges or [(0, length)] if end > completion_start
            ]
        return ranges

    # ------------------------------------------------------------------------------------------------------------
    # Batch
    # ------------------------------------------------------------------------------------------------------------
    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        if len(examples) == 0:
            raise ValueError("Cannot collate an empty list of examples.")
        self._examples_seen += len(examples)
        ready = [prepared for index, example in enumerate(examples)
                 if (prepared := self._prepared(example, index)) is not None]
        if not ready:
            if self._previous_batch is None:
                raise ValueError(self._bad_rows_report("Every example of the first batch has a clip that cannot be "
                                                       "read, so there is none to train on in its place"))
            ready = self._previous_batch
        elif self.max_bad_row_share is not None:
            self._previous_batch = ready
        if self.clip_joining is not None:
            ready = self._joined(ready)
        if self.time_shift is not None:
            ready = self._shifted_in_time(ready)
        return self._collate(ready)

    def _joined(self, prepared: list[_Example]) -> list[_Example]:
        """The batch with some of its transcription examples joined by `clip_joining` (each group takes the place of
        its first member)."""
        if not self.clip_joining.joins_this_batch():
            return prepared
        seconds = [_single_clip_seconds(example) for example in prepared]
        prompts = [example.text[: example.completion_start] if length is not None else None
                   for example, length in zip(prepared, seconds)]
        prompts = [prompt if prompt is not None and JOINABLE_TASK_TAG in prompt else None for prompt in prompts]
        groups = {group[0]: group for group in self.clip_joining.groups(prompts, [length or 0.0 for length in seconds])}
        if not groups:
            return prepared
        joined_away = {index for group in groups.values() for index in group[1:]}
        return [self._joined_example([prepared[member] for member in groups[index]],
                                     [seconds[member] for member in groups[index]]) if index in groups else example
                for index, example in enumerate(prepared) if index not in joined_away]

    def _joined_example(self, examples: list[_Example], seconds: list[float]) -> _Example:
        first = examples[0]
        prompt, eos_token = first.text[: first.completion_start], self.processor.tokenizer.eos_token
        starts = self.clip_joining.starts(seconds)
        completions = [example.text[example.completion_start:].removesuffix(eos_token) for example in examples]
        completion = join_completions(completions, starts, opens_after_timestamp=prompt.endswith(timestamp_token(0.0)))
        text = prompt + completion + eos_token
        transcripts = [example.transcript for example in examples]
        return dataclasses.replace(
            first, text=text,
            trainable_ranges=None if first.trainable_ranges is None else [(len(prompt), len(text))],
            waveforms=[join_waveforms([example.waveforms[0] for example in examples], starts)],
            transcript=" ".join(transcripts) if all(isinstance(item, str) for item in transcripts) else None,
            row=" + ".join(example.row for example in examples),
        )

    def _shifted_in_time(self, prepared: list[_Example]) -> list[_Example]:
        """The batch with its base-model clips moved later in the window by `time_shift`, targets with them."""
        clip_seconds = [_single_clip_seconds(example) for example in prepared]
        shiftable = [length is not None for length in clip_seconds]
        seconds = [length or 0.0 for length in clip_seconds]
        batch_length = self.time_shift.batch_length(max(seconds)) if any(shiftable) else None
        if batch_length is None:
            return prepared
        return [self._shifted_example(example, self.time_shift.offset(length, batch_length)) if can else example
                for example, can, length in zip(prepared, shiftable, seconds)]

    @staticmethod
    def _shifted_example(example: _Example, offset: float) -> _Example:
        prompt, completion = example.text[: example.completion_start], example.text[example.completion_start :]
        text = prompt + shift_timestamps(completion, offset, opens_after_timestamp=prompt.endswith(timestamp_token(0.0)))
        ranges = None if example.trainable_ranges is None else [(len(prompt), len(text))]
        return dataclasses.replace(example, text=text, trainable_ranges=ranges,
                                   waveforms=[shift_waveform(example.waveforms[0], offset)])

    def _prepared(self, example, index: int) -> _Example | None:
        """The example with its clips decoded; None when one cannot be read and bad rows are skipped."""
        row = dataset_row(example)
        try:
            prepared = self._example(example, index)
        except ValueError as error:
            if row is None:
                raise
            raise ValueError(f"{row}: {error}") from None
        row = row or f"Example {index}"
        try:
            prepared.waveforms = [self._decode(clip, f"{row}, audio clip {clip_index}")
                                  for clip_index, clip in enumerate(prepared.clips)]
        except ValueError as error:
            if self.max_bad_row_share is None:
                raise
            self._skip(" ".join(str(error).split()))
            return None
        prepared.row, prepared.transcript = row, example.get("transcript")
        return prepared

    def _skip(self, reason: str) -> None:
        self.skipped.append(reason)
        judged_over = max(self.num_rows or self._examples_seen, MIN_ROWS_FOR_BAD_SHARE)
        if len(self.skipped) > self.max_bad_row_share * judged_over:
            raise ValueError(self._bad_rows_report(
                f"More examples have a clip that cannot be read than `max_bad_row_share` ({self.max_bad_row_share:g} "
                f"of {judged_over} rows) allows"))
        logger.warning(f"Skipped ({len(self.skipped)} so far): {reason}")

    def _bad_rows_report(self, summary: str, shown: int = 20) -> str:
        listed = "; ".join(self.skipped[:shown]) + (f"; and {len(self.skipped) - shown} more" if len(self.skipped) > shown else "")
        return f"{summary}: {listed}."

    def _collate(self, prepared: list[_Example]) -> dict[str, torch.Tensor]:
        waveforms = [waveform for example in prepared for waveform in example.waveforms]
        batch = self.processor(
            text=[example.text for example in prepared],
            audio=waveforms or None,
            sampling_rate=QWEN_AUDIO_SAMPLING_RATE,
            padding=True,
            padding_side="right",
            return_offsets_mapping=True,
            return_text_replacement_offsets=True,
            feature_padding=self.feature_padding,
        )
        ranges = [example.trainable_ranges for example in prepared]
        # The token mask of the ranges, exactly as `apply_chat_template(..., return_assistant_tokens_mask=True)`
        # computes it from the template's {% generation %} blocks (offsets measured in the rendered text).
        batch = self.processor._adjust_assistant_masks_indices(batch, [row or [] for row in ranges])
        input_ids = torch.tensor(batch["input_ids"], dtype=torch.long)
        attention_mask = torch.tensor(batch["attention_mask"], dtype=torch.long)
        trainable = torch.tensor(batch.pop("assistant_masks"), dtype=torch.bool)
        whole_rows = torch.tensor([row_ranges is None for row_ranges in ranges])
        trainable |= whole_rows[:, None]
        trainable &= attention_mask.bool() & ~self._audio_span_mask(input_ids)
        labels = torch.where(trainable, input_ids, torch.full_like(input_ids, IGNORE_INDEX))

        collated = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if "input_features" in batch:
            collated["input_features"] = torch.from_numpy(batch["input_features"])
            collated["feature_attention_mask"] = torch.from_numpy(batch["feature_attention_mask"])
            if self.encoder_ctc_labels:
                collated["ctc_labels"] = pad_ctc_labels([
                    transcript_ctc_labels(example.transcript if len(example.clips) == 1 else None)
                    for example in prepared
                    for _ in example.clips
                ])
        if self.max_length is not None and int(attention_mask.sum(-1).max()) > self.max_length:
            collated = self._truncate(collated)
        collated = self._pad_to_multiple(collated)
        if self.return_example_rows:
            collated[EXAMPLE_ROWS] = [example.row for example in prepared]
        return collated

    def _decode(self, clip, where: str):
        key = None if self.clip_cache is None else self.clip_cache.key(clip, self.audio_base_dir)
        if key is not None and (waveform := self.clip_cache.get(key)) is not None:
            return waveform
        try:
            waveform = load_clip(clip, where, allow_urls=self.allow_urls, base_dir=self.audio_base_dir)
        except (OSError, TypeError) as error:
            # Every bad example is a ValueError for the trainer's caller, a missing file included.
            raise ValueError(str(error)) from error
        return waveform if key is None else self.clip_cache.put(key, waveform)

    def _audio_span_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        """True from each `<audio>` to its `</audio>`, inclusive: the model's own `locate_audio_spans`."""
        is_start = input_ids == self.audio_start_token_id
        is_end = input_ids == self.audio_end_token_id
        return locate_audio_spans(is_start, is_end, self.audio_start_token_id, self.audio_end_token_id)[0]

    def _truncate(self, collated: dict) -> dict:
        """Cuts rows longer than `max_length` on the right, before any audio span the cut would split, and drops the
        features of the clips cut off."""
        input_ids = collated["input_ids"]
        in_span = self._audio_span_mask(input_ids)
        is_start = input_ids == self.audio_start_token_id
        lengths = collated["attention_mask"].sum(-1).tolist()
        keep_clips = []
        for row, length in enumerate(lengths):
            cut = min(length, self.max_length)
            if cut < length:
                while cut > 0 and bool(in_span[row, cut]) and input_ids[row, cut] != self.audio_start_token_id:
                    cut -= 1  # back to the start of the span the cut would split
                logger.warning_once(
                    f"A training sequence of {length} tokens was cut to `max_length` ({self.max_length}); raise "
                    "`max_length` or filter long examples to keep whole conversations."
                )
            keep_clips.extend([True] * int(is_start[row, :cut].sum()) + [False] * int(is_start[row, cut:].sum()))
            collated["input_ids"][row, cut:] = self.pad_token_id
            collated["attention_mask"][row, cut:] = 0
            collated["labels"][row, cut:] = IGNORE_INDEX
        new_length = int(collated["attention_mask"].sum(-1).max())
        for key in ("input_ids", "attention_mask", "labels"):
            collated[key] = collated[key][:, :new_length].contiguous()
        if "input_features" in collated:
            keep = torch.tensor(keep_clips, dtype=torch.bool)
            if not keep.any():
                for key in ("input_features", "feature_attention_mask", "ctc_labels"):
                    collated.pop(key, None)
            elif not keep.all():
                for key in ("input_features", "feature_attention_mask", "ctc_labels"):
                    if key in collated:
                        collated[key] = collated[key][keep]
        return collated

    def _pad_to_multiple(self, collated: dict) -> dict:
        if not self.pad_to_multiple_of:
            return collated
        length = collated["input_ids"].shape[1]
        extra = -length % self.pad_to_multiple_of
        if extra:
            for key, value in (("input_ids", self.pad_token_id), ("attention_mask", 0), ("labels", IGNORE_INDEX)):
                tensor = collated[key]
                padding = torch.full((tensor.shape[0], extra), value, dtype=tensor.dtype)
                collated[key] = torch.cat([tensor, padding], dim=1)
        return collated


__all__ = ["IGNORE_INDEX", "QwenAudioCollator", "pad_ctc_labels", "transcript_ctc_labels"]
