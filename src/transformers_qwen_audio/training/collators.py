# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Data collators for fine-tuning Qwen-Audio and Qwen-Audio-Chat.

TRL's `SFTTrainer` has no audio support, so training datasets stay raw (`remove_unused_columns=False`,
`dataset_kwargs={"skip_prepare_dataset": True}`) and [`QwenAudioChatCollator`] does everything on the fly: it decodes
the clips with `audio_io.load_audio` (never torchcodec), renders the conversations with the processor's chat template,
tokenizes them with the audio spans expanded, pads on the right and builds the labels.
"""

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

from ..audio_io import QWEN_AUDIO_SAMPLING_RATE, is_single_clip, load_audio
from ..processing_qwen_audio import AUDIO_PART_KEYS, MIN_AUDIO_SAMPLES, find_audio_spans
from ..tokenization_qwen_audio import AUDIO_END_TOKEN, AUDIO_START_TOKEN, IM_END_TOKEN


logger = logging.get_logger(__name__)

IGNORE_INDEX = -100
CHAT_ROLES = ("system", "user", "assistant")
# Columns a conversational example may carry its clips in, for audio parts written without a source.
_AUDIO_COLUMNS = ("audios", "audio")


def _as_clip_list(audio) -> list:
    if audio is None:
        return []
    return [audio] if is_single_clip(audio) else list(audio)


@dataclass
class QwenAudioChatCollator:
    r"""
    Collates raw examples into a right-padded training batch for [`QwenAudioForConditionalGeneration`]:
    `input_ids`, `attention_mask`, `labels` and, when the batch holds audio, `input_features`
    (`[num_clips, 80, 3000]`, clips in span order row by row) and `feature_attention_mask`.

    Three example formats are accepted (they may be mixed in a batch):

    - **conversational**: `{"messages": [{"role": ..., "content": str | [parts]}, ...]}` in the transformers chat
      format. Audio parts are `{"type": "audio", "audio" | "path" | "url": clip}` where a clip is a path, a
      `{"array", "sampling_rate"}` dict, a `{"path", "bytes"}` dict (a `datasets` `Audio(decode=False)` value) or a
      16 kHz waveform (give another rate with a `"sampling_rate"` key in the part). Parts without a source take their
      clips, in order, from an `"audios"` (or `"audio"`) column of the example.
    - **conversational prompt-completion** (TRL's format): `{"prompt": [messages], "completion": [messages]}`; only
      the assistant turns of `completion` are trained.
    - **base model**: `{"audio": clip | [clips] | None, "prompt": str, "completion": str}` for the non-chat Qwen-Audio.
      `prompt` holds the hierarchical task tags (see `task_prompts.build_task_prompt`); one `<audio></audio>` per clip
      is put in front of it unless it already has its spans. The tokenizer's eos token (`<|endoftext|>`) closes the
      completion.

    With `completion_only_loss=True` (the default) the labels are -100 everywhere except on the assistant turns'
    content and their closing `<|im_end|>` (base model: the completion and its eos token): system and user turns, role
    headers, audio spans and padding are ignored. With `completion_only_loss=False` every non-padding token is trained
    except the audio spans, whose positions hold encoder outputs rather than tokens to predict.

    Args:
        processor ([`QwenAudioProcessor`]):
            The processor of the checkpoint being trained.
        completion_only_loss (`bool`, *optional*, defaults to `True`):
            Train only on the assistant replies / completions (`False`: on every non-padding, non-audio token).
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
    """

    processor: Any
    completion_only_loss: bool = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    messages_field: str = "messages"
    audio_base_dir: str | os.PathLike | None = None
    allow_urls: bool = False

    def __post_init__(self):
        tokenizer = self.processor.tokenizer
        if tokenizer.pad_token_id is None:
            raise ValueError("The processor's tokenizer has no pad token; set `tokenizer.pad_token` first.")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"`max_length` must be positive, got {self.max_length}.")
        self.pad_token_id = tokenizer.pad_token_id
        self.audio_start_token_id = tokenizer.convert_tokens_to_ids(AUDIO_START_TOKEN)
        self.audio_end_token_id = tokenizer.convert_tokens_to_ids(AUDIO_END_TOKEN)

    # ------------------------------------------------------------------------------------------------------------
    # Rendering: each example becomes a text, the character ranges to train on, and its clips
    # ------------------------------------------------------------------------------------------------------------
    def _render_chat(self, template_messages: list[dict], trainable_from: int, index: int) -> tuple[str, list]:
        """Renders a conversation; returns the text and the character ranges of the assistant turns to train."""

        def render(messages, add_generation_prompt=False):
            return self.processor.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt
            )

        text = render(template_messages)
        ranges = []
        for turn, message in enumerate(template_messages):
            if message["role"] != "assistant" or turn < trainable_from:
                continue
            # The reply starts where the generation prompt of the conversation so far ends, and ends with the first
            # <|im_end|> after it: rendering the prefixes keeps the template the single source of the layout.
            prompt = render(template_messages[:turn], add_generation_prompt=True)
            up_to_reply = render(template_messages[: turn + 1])
            if not (up_to_reply.startswith(prompt) and text.startswith(up_to_reply)):
                raise ValueError(
                    f"Example {index}: the chat template does not render this conversation turn by turn (message "
                    f"{turn} changes the text before it), so the assistant replies cannot be located."
                )
            end_of_turn = up_to_reply.find(IM_END_TOKEN, len(prompt))
            end = end_of_turn + len(IM_END_TOKEN) if end_of_turn >= 0 else len(up_to_reply)
            ranges.append((len(prompt), end))
        return text, ranges

    def _chat_example(self, messages, prompt_length: int, example: Mapping, index: int):
        """Validates a conversation, takes its clips out of the audio parts and renders it."""
        if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)) or len(messages) == 0:
            raise ValueError(f"Example {index}: `{self.messages_field}` must be a non-empty list of messages.")
        column_clips = None
        template_messages, clips = [], []
        for turn, message in enumerate(messages):
            if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
                raise ValueError(f"Example {index}, message {turn}: a message is a dict with `role` and `content`.")
            role, content = message["role"], message["content"]
            if role not in CHAT_ROLES:
                raise ValueError(f"Example {index}, message {turn}: unknown role {role!r}; expected one of {CHAT_ROLES}.")
            if role == "assistant" and turn == 0:
                raise ValueError(f"Example {index}: the conversation starts with an assistant message.")
            if isinstance(content, str):
                template_messages.append({"role": role, "content": content})
                continue
            if not isinstance(content, Sequence) or isinstance(content, bytes):
                raise ValueError(
                    f"Example {index}, message {turn}: `content` must be a string or a list of parts, "
                    f"got {type(content).__name__}."
                )
            parts = []
            for part in content:
                if not isinstance(part, Mapping):
                    raise ValueError(f"Example {index}, message {turn}: content parts must be dicts, got {part!r}.")
                # `datasets` gives every part every key of the column's struct: ignore the None ones.
                part = {key: value for key, value in part.items() if value is not None}
                part_type = part.get("type", "audio" if any(key in part for key in AUDIO_PART_KEYS) else "text")
                if part_type == "text":
                    if not isinstance(part.get("text"), str):
                        raise ValueError(f"Example {index}, message {turn}: a text part needs a string `text`.")
                    parts.append({"type": "text", "text": part["text"]})
                elif part_type == "audio":
                    sources = [part[key] for key in AUDIO_PART_KEYS if key in part]
                    if len(sources) > 1:
                        raise ValueError(
                            f"Example {index}, message {turn}: an audio part needs one of {AUDIO_PART_KEYS}, "
                            f"got keys {sorted(part)}."
                        )
                    if sources:
                        clip = sources[0]
                        if "sampling_rate" in part and not isinstance(clip, Mapping):
                            clip = {"array": clip, "sampling_rate": part["sampling_rate"]}
                    else:
                        if column_clips is None:
                            column = next((key for key in _AUDIO_COLUMNS if example.get(key) is not None), None)
                            column_clips = iter(_as_clip_list(example[column]) if column else [])
                        clip = next(column_clips, None)
                        if clip is None:
                            raise ValueError(
                                f"Example {index}, message {turn}: an audio part has no source ({AUDIO_PART_KEYS}) "
                                f"and the example has no clip left in an {' or '.join(_AUDIO_COLUMNS)} column."
                            )
                    clips.append(clip)
                    # The source written inside the span does not matter: the processor gets the decoded clips.
                    parts.append({"type": "audio", "audio": ""})
                else:
                    raise ValueError(
                        f"Example {index}, message {turn}: unsupported content part type {part_type!r} "
                        "(expected 'text' or 'audio')."
                    )
            template_messages.append({"role": role, "content": parts})
        if column_clips is not None and next(column_clips, None) is not None:
            raise ValueError(f"Example {index}: more clips in the audio column than audio parts in the messages.")
        if self.completion_only_loss and not any(
            message["role"] == "assistant" for message in template_messages[prompt_length:]
        ):
            raise ValueError(f"Example {index}: no assistant message to train on.")
        text, ranges = self._render_chat(template_messages, prompt_length, index)
        return text, ranges, clips

    def _base_example(self, example: Mapping, index: int):
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
        return prompt + completion, [(len(prompt), len(prompt) + len(completion))], clips

    def _example(self, example, index: int):
        if not isinstance(example, Mapping):
            raise ValueError(f"Example {index} must be a dict, got {type(example).__name__}.")
        if example.get(self.messages_field) is not None:
            return self._chat_example(example[self.messages_field], 0, example, index)
        if example.get("prompt") is not None and example.get("completion") is not None:
            prompt, completion = example["prompt"], example["completion"]
            if isinstance(prompt, list) and isinstance(completion, list):
                return self._chat_example(prompt + completion, len(prompt), example, index)
            return self._base_example(example, index)
        raise ValueError(
            f"Example {index} has keys {sorted(example)}: expected a `{self.messages_field}` conversation or "
            "`prompt` and `completion` (with `audio` for the base model)."
        )

    def _decode(self, clip, index: int, clip_index: int) -> np.ndarray:
        try:
            waveform = load_audio(clip, allow_urls=self.allow_urls, base_dir=self.audio_base_dir)
        except (ValueError, TypeError, OSError) as error:
            raise ValueError(f"Example {index}, audio clip {clip_index}: {error}") from error
        if len(waveform) < MIN_AUDIO_SAMPLES:
            raise ValueError(
                f"Example {index}, audio clip {clip_index}: {len(waveform)} samples at 16 kHz is too short; "
                f"Qwen-Audio needs at least {MIN_AUDIO_SAMPLES}."
            )
        return waveform

    # ------------------------------------------------------------------------------------------------------------
    # Batch
    # ------------------------------------------------------------------------------------------------------------
    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        if len(examples) == 0:
            raise ValueError("Cannot collate an empty list of examples.")
        texts, char_ranges, waveforms = [], [], []
        for index, example in enumerate(examples):
            text, ranges, clips = self._example(example, index)
            texts.append(text)
            char_ranges.append(ranges)
            waveforms.extend(self._decode(clip, index, clip_index) for clip_index, clip in enumerate(clips))

        batch = self.processor(
            text=texts,
            audio=waveforms or None,
            sampling_rate=QWEN_AUDIO_SAMPLING_RATE,
            padding=True,
            padding_side="right",
            return_offsets_mapping=True,
            return_text_replacement_offsets=True,
            return_tensors="pt",
        )
        offset_mapping = batch.pop("offset_mapping")
        replacements = batch.pop("text_replacement_offsets")
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"].long()

        if self.completion_only_loss:
            trainable = torch.zeros_like(attention_mask, dtype=torch.bool)
            token_starts = offset_mapping[..., 0]
            for row, (text, ranges) in enumerate(zip(texts, char_ranges)):
                for start, end in self._expanded_ranges(text, ranges, replacements[row]):
                    trainable[row] |= (token_starts[row] >= start) & (token_starts[row] < end)
            trainable &= attention_mask.bool()
        else:
            trainable = attention_mask.bool().clone()
        trainable &= ~self._audio_span_mask(input_ids)
        labels = torch.where(trainable, input_ids, torch.full_like(input_ids, IGNORE_INDEX))

        collated = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if "input_features" in batch:
            collated["input_features"] = batch["input_features"]
            collated["feature_attention_mask"] = batch["feature_attention_mask"]
        if self.max_length is not None and int(attention_mask.sum(-1).max()) > self.max_length:
            collated = self._truncate(collated)
        return self._pad_to_multiple(collated)

    @staticmethod
    def _expanded_ranges(text: str, ranges: list, replacements: list) -> list:
        """Moves character ranges of the rendered text to the text the tokenizer saw, where the processor replaced
        every `<audio>...</audio>` span with `<audio>` + placeholders + `</audio>`."""
        spans = find_audio_spans(text)
        if len(spans) != len(replacements):
            raise ValueError(
                f"The processor expanded {len(replacements)} audio spans of a text that has {len(spans)}; an audio "
                "tag written in a text part would do this."
            )
        growth = [len(item["replacement"]) - (end - start) for (start, end, _), item in zip(spans, replacements)]

        def expanded(position: int) -> int:
            return position + sum(grow for (_, end, _), grow in zip(spans, growth) if end <= position)

        return [(expanded(start), expanded(end)) for start, end in ranges]

    def _audio_span_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        """True from each `<audio>` to its `</audio>`, inclusive."""
        is_start = input_ids == self.audio_start_token_id
        is_end = input_ids == self.audio_end_token_id
        opened = is_start.long().cumsum(-1)
        closed_before = is_end.long().cumsum(-1) - is_end.long()
        return opened > closed_before

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
                del collated["input_features"], collated["feature_attention_mask"]
            elif not keep.all():
                collated["input_features"] = collated["input_features"][keep]
                collated["feature_attention_mask"] = collated["feature_attention_mask"][keep]
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


__all__ = ["IGNORE_INDEX", "QwenAudioChatCollator"]
