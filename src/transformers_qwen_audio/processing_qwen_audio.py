# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""Processor for Qwen-Audio and Qwen-Audio-Chat: Whisper log-mel features + Qwen tokenizer + ChatML template."""

import os
import re
import warnings
from importlib import resources
from typing import Literal

import numpy as np
from transformers import BatchFeature, ProcessorMixin, WhisperFeatureExtractor
from transformers.processing_utils import AudioKwargs, ProcessingKwargs, Unpack
from transformers.utils import cached_file

from .audio_io import QWEN_AUDIO_SAMPLING_RATE, is_single_clip
from .configuration_qwen_audio import CHAT_FORMATS, declared_chat_format, hub_kwargs
from .conversation import (
    check_control_tokens,
    find_audio_spans,
    load_clip,
    load_conversation_audio,
    span_source,
    validate_conversation,
)
from .feature_extraction_qwen_audio import (
    HOP_LENGTH,
    MAX_AUDIO_SAMPLES,
    MAX_AUDIO_SECONDS,
    audio_span_length,
    default_feature_extractor,
    feature_window_samples,
    num_mel_frames,
    split_into_windows,
)
from .task_prompts import QUESTION_TASKS, build_task_prompt, chat_task_instruction, task_layout
from .tokenization_qwen_audio import (
    AUDIO_END_TOKEN,
    AUDIO_PAD_TOKEN,
    AUDIO_START_TOKEN,
    ENDOFTEXT_TOKEN,
    IM_END_TOKEN,
    IM_START_TOKEN,
    QwenAudioTokenizerFast,
)
from .word_timestamps import parse_segment_timestamps, parse_word_timestamps, timestamp_token


LONG_AUDIO_MODES = ("truncate", "chunk")
# "max_length": every window padded to 30 s (3000 frames), like the original; "longest": to the batch's longest window.
FEATURE_PADDING_MODES = ("max_length", "longest")
# The original's `chat()` stops at any of these (the released generation_config.json only names <|endoftext|>).
CHAT_STOP_TOKENS = (IM_END_TOKEN, ENDOFTEXT_TOKEN, IM_START_TOKEN)
TIMESTAMP_MODES = (None, False, True, "word", "segment")
_LEADING_TIMESTAMP = re.compile(r"\s*<\|\d{1,2}\.\d{2}\|>")


class QwenAudioAudioKwargs(AudioKwargs, total=False):
    """
    Audio keyword arguments of [`QwenAudioProcessor`], on top of transformers' [`AudioKwargs`]:

    long_audio (`str`, *optional*):
        `"truncate"` (the first 30 s, like the original, with a warning) or `"chunk"` (consecutive 30 s windows,
        consecutive audio spans). Defaults to the processor's `long_audio`.
    allow_urls (`bool`, *optional*, defaults to `False`):
        Whether http(s) URLs may be downloaded.
    audio_base_dir (`str` or `os.PathLike`, *optional*):
        Folder that relative audio paths are resolved against.
    allow_audio_paths_in_text (`bool`, *optional*, defaults to `False`):
        Whether `<audio>PATH</audio>` written in the text (without `audio=`) loads PATH, as the original did. Off by
        default: text often comes from users, and must not decide which local file is read.
    feature_padding (`str`, *optional*, defaults to `"max_length"`):
        How far `input_features` are padded: `"max_length"` pads every window to 30 s (3000 frames), as the original
        does; `"longest"` only past the longest window of the batch (see `feature_window_samples`), which gives the
        same values on every frame the model reads for a fraction of the log-mel cost of short clips (training).
    """

    long_audio: Literal["truncate", "chunk"] | None
    feature_padding: Literal["max_length", "longest"] | None
    allow_urls: bool | None
    audio_base_dir: str | os.PathLike | None
    allow_audio_paths_in_text: bool | None
    allow_control_tokens_in_text: bool | None


class QwenAudioProcessorKwargs(ProcessingKwargs, total=False):
    audio_kwargs: QwenAudioAudioKwargs


def _flatten_clips(audio, num_spans_per_text: list[int]) -> list:
    """Flat list of clips in span order; accepts one clip, a flat list, or one list per text."""
    if is_single_clip(audio):
        clips = [audio]
    elif isinstance(audio, (list, tuple)):
        if len(audio) > 0 and all(isinstance(item, (list, tuple)) and not is_single_clip(item) for item in audio):
            # One list of clips per text.
            if len(audio) != len(num_spans_per_text):
                raise ValueError(
                    f"Got {len(audio)} lists of audio clips for {len(num_spans_per_text)} texts: give one list per text."
                )
            for index, (clips_of_text, num_spans) in enumerate(zip(audio, num_spans_per_text)):
                if len(clips_of_text) != num_spans:
                    raise ValueError(
                        f"Text {index} has {num_spans} <audio></audio> spans but {len(clips_of_text)} audio clips."
                    )
            clips = [clip for clips_of_text in audio for clip in clips_of_text]
        else:
            clips = list(audio)
    else:
        raise TypeError(
            f"Unsupported `audio` of type {type(audio).__name__}: pass a clip (array, tensor, path, dict, bytes) "
            "or a list of clips."
        )
    if len(clips) != sum(num_spans_per_text):
        raise ValueError(
            f"The texts contain {sum(num_spans_per_text)} <audio></audio> spans (per text: {num_spans_per_text}) "
            f"but {len(clips)} audio clips were given; give exactly one clip per span, in order."
        )
    return clips


class QwenAudioProcessor(ProcessorMixin):
    r"""
    Qwen-Audio processor: transformers' [`WhisperFeatureExtractor`] (80 log-mel bins, 16 kHz, 30 s window) and
    [`QwenAudioTokenizerFast`], plus the Qwen-Audio-Chat template.

    Every `<audio></audio>` (or `<audio>PATH</audio>`, as the original writes it) in the text stands for one clip and
    is expanded to `<audio>` + placeholder tokens `[[[AUDIO:modality]]]` + `</audio>`, as many tokens in all as the
    audio encoder will produce for the clip plus two.

    `processor(text=..., audio=...)` runs [`~ProcessorMixin.__call__`] on this processor's hooks: `text` is one prompt
    or a list, each `<audio></audio>` or `<audio>PATH_OR_URL</audio>` standing for one clip; `audio` gives the clips in
    span order through the batch (one clip, a flat list, or one list per text; anything `audio_io.load_audio`
    accepts). Without `audio`, the paths written inside the spans are loaded, only with
    `allow_audio_paths_in_text=True`. Keyword arguments are [`QwenAudioProcessorKwargs`]: the audio ones of
    [`QwenAudioAudioKwargs`] (`sampling_rate` of array clips, 16 kHz by default; files carry their own rate), the
    tokenizer's (padding defaults to the longest text, on the tokenizer's side, left), `return_text_replacement_offsets`
    (per text, where each span was in the caller's text, `span`, and where its expansion is, `new_span`) and
    `return_tensors`. The result holds `input_ids`, `attention_mask` and, with audio, `input_features`
    (`[num_windows, 80, 3000]`, float32, span order; fewer frames with `feature_padding="longest"`) and
    `feature_attention_mask` (`[num_windows, frames]`).

    For `model.generate` it also writes task prompts ([`~QwenAudioProcessor.apply_task_request`],
    [`~QwenAudioProcessor.apply_transcription_request`]) and reads answers back
    ([`~QwenAudioProcessor.decode`]: text, or text with word / segment timestamps).

    Args:
        feature_extractor ([`WhisperFeatureExtractor`], *optional*):
            Log-mel front end; defaults to Qwen-Audio's settings.
        tokenizer ([`QwenAudioTokenizerFast`]):
            The tokenizer.
        chat_template (`str`, *optional*):
            Jinja chat template; defaults to the Qwen-Audio-Chat template shipped with this package.
        long_audio (`str`, *optional*, defaults to `"truncate"`):
            What to do with clips longer than 30 s: `"truncate"` keeps the first 30 s like the original (with a
            warning), `"chunk"` splits the clip into consecutive 30 s windows that become consecutive audio spans.
        chat_format (`str`, *optional*):
            `"raw"` for a base Qwen-Audio checkpoint (task requests become hierarchical task tags), `"chatml"` for
            Qwen-Audio-Chat (task requests become a chat turn). Saved in `processor_config.json`; when loading a
            released folder it comes from the folder's `generation_config.json` (`chat_format`). Never guessed from a
            model's name: `None` means unknown, and `apply_task_request` then asks for it.
    """

    audio_token = AUDIO_PAD_TOKEN
    valid_processor_kwargs = QwenAudioProcessorKwargs
    # Lowest-priority defaults of `_merge_kwargs` (transformers 5.24 recommends these class attributes over
    # `ProcessingKwargs._defaults`).
    text_kwargs = {"padding": True}
    audio_kwargs = {
        "sampling_rate": QWEN_AUDIO_SAMPLING_RATE,
        "allow_urls": False,
        "allow_audio_paths_in_text": False,
        "allow_control_tokens_in_text": False,
    }

    def __init__(
        self, feature_extractor=None, tokenizer=None, chat_template=None, long_audio="truncate", chat_format=None
    ):
        if feature_extractor is None:
            feature_extractor = default_feature_extractor()
        if tokenizer is None:
            raise ValueError("QwenAudioProcessor needs a tokenizer (QwenAudioTokenizerFast).")
        if chat_template is None:
            chat_template = default_chat_template()
        if long_audio not in LONG_AUDIO_MODES:
            raise ValueError(f"`long_audio` must be one of {LONG_AUDIO_MODES}, got {long_audio!r}.")
        if chat_format not in CHAT_FORMATS + (None,):
            raise ValueError(f"`chat_format` must be one of {CHAT_FORMATS} (or None), got {chat_format!r}.")
        self.long_audio = long_audio
        self.chat_format = chat_format
        self.audio_token = AUDIO_PAD_TOKEN
        self.audio_token_id = tokenizer.convert_tokens_to_ids(AUDIO_PAD_TOKEN)
        self.audio_start_token = AUDIO_START_TOKEN
        self.audio_end_token = AUDIO_END_TOKEN
        self.audio_start_token_id = tokenizer.convert_tokens_to_ids(AUDIO_START_TOKEN)
        self.audio_end_token_id = tokenizer.convert_tokens_to_ids(AUDIO_END_TOKEN)
        super().__init__(feature_extractor, tokenizer, chat_template=chat_template)

    @property
    def chat_stop_token_ids(self) -> list[int]:
        """
        Ids of `<|im_end|>`, `<|endoftext|>` and `<|im_start|>` (those the vocabulary has): where Qwen-Audio-Chat's
        replies end, as the original's `chat()` stopped. Pass them as `eos_token_id` to `generate` when the model's
        generation config does not already stop there.
        """
        ids = [self.tokenizer.convert_tokens_to_ids(token) for token in CHAT_STOP_TOKENS]
        unknown = self.tokenizer.unk_token_id
        return [token_id for token_id in ids if token_id is not None and token_id >= 0 and token_id != unknown]

    # ----------------------------------------------------------------------------------------------------------
    # Loading
    # ----------------------------------------------------------------------------------------------------------
    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        # The released checkpoints have neither `preprocessor_config.json` nor `tokenizer.json`: build the feature
        # extractor from Qwen-Audio's defaults and the tokenizer from `qwen.tiktoken`, without the Auto classes
        # (which would look at the remote-code `auto_map` of the released folder). transformers <= 5.24 builds the
        # sub-processors here; 5.25 in `_resolve_subprocessors` (below).
        fetch_kwargs = hub_kwargs(kwargs)
        preprocessor_file = cached_file(
            pretrained_model_name_or_path,
            "preprocessor_config.json",
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
            **fetch_kwargs,
        )
        if preprocessor_file is not None:
            feature_extractor = WhisperFeatureExtractor.from_pretrained(pretrained_model_name_or_path, **fetch_kwargs)
        else:
            feature_extractor = default_feature_extractor()
        tokenizer = QwenAudioTokenizerFast.from_pretrained(pretrained_model_name_or_path, **fetch_kwargs)
        return [feature_extractor, tokenizer]

    @classmethod
    def _resolve_subprocessors(cls, pretrained_model_name_or_path, processor_dict, **kwargs):
        # transformers >= 5.25: the sub-processors the caller did not pass come from `_get_arguments_from_pretrained`,
        # as in 5.24, rather than from the Auto classes (a released folder has no preprocessor_config.json).
        missing = [name for name in ("feature_extractor", "tokenizer") if kwargs.get(name) is None]
        if missing:
            built = dict(zip(("feature_extractor", "tokenizer"),
                             cls._get_arguments_from_pretrained(pretrained_model_name_or_path, **kwargs)))
            kwargs.update({name: built[name] for name in missing})
        return super()._resolve_subprocessors(pretrained_model_name_or_path, processor_dict, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "QwenAudioProcessor":
        """
        Loads a native folder, or a released checkpoint (`Qwen/Qwen-Audio`, `Qwen/Qwen-Audio-Chat`, a local copy):
        the tokenizer from `qwen.tiktoken`, Qwen-Audio's feature extractor settings, the chat template and the
        `chat_format` of its `generation_config.json`. Nothing of the folder is executed; `save_pretrained` on the
        result writes native processor files.
        """
        processor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        if processor.chat_format is None and kwargs.get("chat_format") is None:
            # A released folder has no processor_config.json; its generation_config.json says which model it is.
            processor.chat_format = declared_chat_format(pretrained_model_name_or_path, **hub_kwargs(kwargs))
        return processor

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        # transformers 5 nests the feature extractor in `processor_config.json`; also write the classic
        # `preprocessor_config.json` so that `AutoFeatureExtractor` and older readers find it.
        saved_files = super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        self.feature_extractor.save_pretrained(save_directory)
        return saved_files

    # ----------------------------------------------------------------------------------------------------------
    # Processing: the hooks of `ProcessorMixin.__call__`
    # ----------------------------------------------------------------------------------------------------------
    def prepare_inputs_layout(
        self, images=None, text=None, videos=None, audio=None, **kwargs: Unpack[QwenAudioProcessorKwargs]
    ):
        """
        The texts as a list and the clips flat, in span order: the given ones or, with
        `allow_audio_paths_in_text=True`, the paths written in the spans. The caller's inputs are validated here,
        where their layout (one list of clips per text, paths in the text) can still be told apart;
        `ProcessorMixin.__call__` validates again after this hook, on the laid-out inputs (which pass).
        """
        self.validate_inputs(text=text, audio=audio, **kwargs)
        texts = [text] if isinstance(text, str) else list(text)
        spans_per_text = [find_audio_spans(sample) for sample in texts]
        if audio is not None:
            clips = _flatten_clips(audio, [len(spans) for spans in spans_per_text])
        else:
            clips = [span_source(source) for spans in spans_per_text for _, _, source in spans]
        return images, texts, videos, clips or None

    def validate_inputs(
        self, images=None, text=None, videos=None, audio=None, **kwargs: Unpack[QwenAudioProcessorKwargs]
    ):
        """
        Checks the spans of every text (closed, not nested, no placeholder outside of one) against the clips: one
        clip per span through the batch, or (only with `allow_audio_paths_in_text=True`) a path in every span.
        """
        if text is None:
            raise ValueError("QwenAudioProcessor needs `text`: write one <audio></audio> span per clip in it.")
        texts = [text] if isinstance(text, str) else list(text) if isinstance(text, (list, tuple)) else None
        if not texts or not all(isinstance(sample, str) for sample in texts):
            raise TypeError("`text` must be a string or a non-empty list of strings.")
        spans_per_text = []
        for index, sample in enumerate(texts):
            try:
                spans = find_audio_spans(sample)
            except ValueError as error:
                raise ValueError(f"Text {index}: {error}") from None
            placeholders_inside = sum(source.count(AUDIO_PAD_TOKEN) for _, _, source in spans)
            if sample.count(AUDIO_PAD_TOKEN) != placeholders_inside:
                raise ValueError(
                    f"Text {index} contains {AUDIO_PAD_TOKEN} outside of <audio></audio>; write only "
                    "<audio></audio> and let the processor insert the placeholders."
                )
            spans_per_text.append(spans)
        if audio is not None:
            _flatten_clips(audio, [len(spans) for spans in spans_per_text])
            return
        allow_paths = _caller_audio_option(kwargs, "allow_audio_paths_in_text", False)
        for index, spans in enumerate(spans_per_text):
            for _, _, source in spans:
                source = span_source(source)
                if source is None:
                    raise ValueError(
                        f"Text {index} has an empty <audio></audio> span but no `audio` was given: pass the clips "
                        "with `audio=`."
                    )
                if not allow_paths:
                    raise ValueError(
                        f"Text {index} names audio in the text (<audio>{source[:60]}</audio>) but no `audio` was "
                        "given: pass the clips with `audio=`, or `allow_audio_paths_in_text=True` to load the paths "
                        "written in the text (only for text you trust)."
                    )

    def _split_long_audio(self, waveforms: list[np.ndarray], long_audio: str) -> list[list[np.ndarray]]:
        """Windows of each clip: one (the first 30 s) when truncating, consecutive 30 s windows when chunking."""
        windows_per_clip = []
        for index, waveform in enumerate(waveforms):
            if len(waveform) <= MAX_AUDIO_SAMPLES:
                windows_per_clip.append([waveform])
            elif long_audio == "truncate":
                warnings.warn(
                    f"Audio clip {index} lasts {len(waveform) / QWEN_AUDIO_SAMPLING_RATE:.1f} s; Qwen-Audio only "
                    f"hears the first {MAX_AUDIO_SECONDS} s (like the original). Pass `long_audio='chunk'` to "
                    f"process it as consecutive {MAX_AUDIO_SECONDS} s windows.",
                    UserWarning,
                    stacklevel=4,
                )
                windows_per_clip.append([waveform[:MAX_AUDIO_SAMPLES]])
            else:
                windows_per_clip.append(split_into_windows(waveform))
        return windows_per_clip

    def _process_audio(self, audio: list, **kwargs):
        """
        Decodes the clips (`conversation.load_clip`: file checks, URL policy, minimum length), splits long ones into
        30 s windows, and returns their log-mel features and the replacement text of each clip's span.
        """
        long_audio = kwargs.get("long_audio") or self.long_audio
        if long_audio not in LONG_AUDIO_MODES:
            raise ValueError(f"`long_audio` must be one of {LONG_AUDIO_MODES}, got {long_audio!r}.")
        feature_padding = kwargs.get("feature_padding") or "max_length"
        if feature_padding not in FEATURE_PADDING_MODES:
            raise ValueError(f"`feature_padding` must be one of {FEATURE_PADDING_MODES}, got {feature_padding!r}.")
        waveforms = [
            load_clip(
                clip,
                f"Audio clip {index}",
                sampling_rate=kwargs.get("sampling_rate"),
                allow_urls=bool(kwargs.get("allow_urls")),
                base_dir=kwargs.get("audio_base_dir"),
            )
            for index, clip in enumerate(audio)
        ]
        windows_per_clip = self._split_long_audio(waveforms, long_audio)
        windows = [window for windows_of_clip in windows_per_clip for window in windows_of_clip]
        padded_samples = MAX_AUDIO_SAMPLES
        if feature_padding == "longest":
            padded_samples = feature_window_samples(max(map(len, windows)), self.feature_extractor.n_fft)
        features = self.feature_extractor(
            windows,
            sampling_rate=QWEN_AUDIO_SAMPLING_RATE,
            padding="max_length",
            max_length=padded_samples,
            truncation=True,
            return_attention_mask=False,
            return_tensors="np",
        )
        # WhisperFeatureExtractor's own mask can count one frame more than the original (which uses
        # samples // hop); the model masks the encoder with this one.
        feature_attention_mask = np.zeros((len(windows), padded_samples // HOP_LENGTH), dtype=np.int64)
        for row, window in enumerate(windows):
            feature_attention_mask[row, : num_mel_frames(len(window))] = 1
        processed_audio = {
            "input_features": features["input_features"].astype(np.float32),
            "feature_attention_mask": feature_attention_mask,
            "audio_span_lengths": [[audio_span_length(len(window)) for window in clip] for clip in windows_per_clip],
        }
        audio_replacements = [
            self.replace_audio_token(processed_audio, audio_idx=index) for index in range(len(windows_per_clip))
        ]
        return processed_audio, audio_replacements

    def replace_audio_token(self, audio_inputs: dict, audio_idx: int, **kwargs) -> str:
        # One `<audio>` + placeholders + `</audio>` span per 30 s window of the clip.
        return "".join(
            AUDIO_START_TOKEN + AUDIO_PAD_TOKEN * (span_length - 2) + AUDIO_END_TOKEN
            for span_length in audio_inputs["audio_span_lengths"][audio_idx]
        )

    def get_text_with_replacements(
        self, text: list[str], images_replacements=(), videos_replacements=(), audio_replacements=()
    ) -> tuple[list[str], list[list[dict]]]:
        """
        Replaces each `<audio>...</audio>` span of the texts with its clip's replacement (in order through the
        batch). The offsets are measured in the caller's text: `span` is where the whole `<audio>...</audio>` was
        (source included), `new_span` where its replacement is in the expanded text; `text` is the span as written.
        This is what `apply_chat_template(..., return_assistant_tokens_mask=True)` needs to move character
        positions of the rendered conversation onto the tokens.
        """
        replacements = iter(audio_replacements)
        expanded_texts, offsets_per_text = [], []
        for sample in text:
            pieces, offsets, last, growth = [], [], 0, 0
            for start, end, _ in find_audio_spans(sample) if audio_replacements else []:
                replacement = next(replacements)
                pieces.extend([sample[last:start], replacement])
                new_start = start + growth
                offsets.append(
                    {
                        "type": "audio",
                        "span": (start, end),
                        "new_span": (new_start, new_start + len(replacement)),
                        "text": sample[start:end],
                        "replacement": replacement,
                    }
                )
                growth += len(replacement) - (end - start)
                last = end
            pieces.append(sample[last:])
            expanded_texts.append("".join(pieces))
            offsets_per_text.append(offsets)
        return expanded_texts, offsets_per_text

    def apply_chat_template(self, conversation, chat_template=None, **kwargs):
        """
        Renders Qwen-Audio-Chat conversations (see [`~ProcessorMixin.apply_chat_template`]).

        Conversations follow the one conversation model of `conversation.py` and are validated by
        `conversation.validate_conversation` first (errors name the conversation of a batch, the message and the
        part): audio parts are `{"type": "audio", "audio" | "path" | "url" | "array": ...}` or the same without
        `"type"`. With `tokenize=True, return_dict=True` the result holds everything the model needs;
        `return_assistant_tokens_mask=True` marks each assistant reply and its `<|im_end|>`; with
        `continue_final_message=True` a final assistant message is continued rather than closed. Array parts are
        taken to be at 16 kHz unless the part or `processor_kwargs={"sampling_rate": ...}` says otherwise; URLs
        need `processor_kwargs={"allow_urls": True}`, `<audio>PATH</audio>` written in text
        `processor_kwargs={"allow_audio_paths_in_text": True}`, control tokens written in text (`<|im_start|>`,
        `<|im_end|>`, `<|endoftext|>`: refused, so that a user's text cannot open a turn)
        `processor_kwargs={"allow_control_tokens_in_text": True}`.
        """
        processor_kwargs = dict(kwargs.pop("processor_kwargs", None) or {})
        audio_kwargs = processor_kwargs.get("audio_kwargs") or {}
        allow_paths, allow_control = (
            processor_kwargs.get(name, audio_kwargs.get(name, False))
            for name in ("allow_audio_paths_in_text", "allow_control_tokens_in_text")
        )
        # transformers' `sanitize_control_tokens=True` encodes them as plain text: nothing to refuse then. The
        # template's own check (for renderings without the processor) follows the same opt-in.
        allow_control = bool(allow_control or kwargs.get("sanitize_control_tokens"))
        kwargs.setdefault("allow_control_tokens_in_text", allow_control)
        is_batched = isinstance(conversation, (list, tuple)) and len(conversation) > 0 and (
            isinstance(conversation[0], (list, tuple)) or hasattr(conversation[0], "messages")
        )
        conversations = conversation if is_batched else [conversation]
        canonical = [
            validate_conversation(
                getattr(item, "messages", item),
                row=row if is_batched else None,
                allow_audio_paths_in_text=bool(allow_paths),
                allow_control_tokens_in_text=allow_control,
            )
            for row, item in enumerate(conversations)
        ]
        return super().apply_chat_template(
            canonical if is_batched else canonical[0],
            chat_template=chat_template,
            processor_kwargs=processor_kwargs,
            **kwargs,
        )

    def _resolve_audio_loading_params(self, processor_kwargs: dict) -> dict:
        # `sampling_rate` is what `__call__` is told the decoded clips are at (transformers passes it on); the
        # others say how `_multimodal_inputs_from_conversations` decodes the conversation's sources.
        return {
            "sampling_rate": QWEN_AUDIO_SAMPLING_RATE,
            "source_sampling_rate": _caller_audio_option(processor_kwargs, "sampling_rate"),
            "allow_urls": bool(_caller_audio_option(processor_kwargs, "allow_urls", False)),
            "base_dir": _caller_audio_option(processor_kwargs, "audio_base_dir"),
        }

    def _multimodal_inputs_from_conversations(self, conversations, audio_loading_params, load_audio_from_video=False):
        # The conversations are canonical (see `apply_chat_template`); their clips are decoded by the conversation
        # model, whose errors name the conversation, message and part (transformers' loader needs
        # torchcodec/librosa and cannot take `{"array", "sampling_rate"}` parts).
        clips = load_conversation_audio(
            conversations,
            sampling_rate=audio_loading_params["source_sampling_rate"],
            allow_urls=audio_loading_params["allow_urls"],
            base_dir=audio_loading_params["base_dir"],
        )
        return [[] for _ in conversations], [[] for _ in conversations], clips, {}

    # ----------------------------------------------------------------------------------------------------------
    # Task requests and decoding (what users of `model.generate` need)
    # ----------------------------------------------------------------------------------------------------------
    def apply_task_request(
        self,
        audio,
        task: str | None = None,
        language: str | None = None,
        timestamps: bool = False,
        prompt: str | None = None,
        output_language: str | None = None,
        caption_style: str | None = None,
        chat_format: str | None = None,
        system_prompt: str | None = None,
        tokenize: bool = True,
        **kwargs,
    ) -> BatchFeature | str | list[str]:
        """
        Prepares the inputs of a task on one or several recordings: the hierarchical task tags of the original for a base checkpoint (`chat_format="raw"`), a plain instruction
        in a chat turn for Qwen-Audio-Chat (`"chatml"`).

        ```python
        >>> inputs = processor.apply_task_request("speech.flac", task="transcribe", language="en", return_tensors="pt")
        >>> generated = model.generate(**inputs, max_new_tokens=64)
        >>> processor.decode(generated[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        ```

        Args:
            audio:
                One clip (path, array, `{"array", "sampling_rate"}`, bytes, ...) or a list of clips (one row each).
            task (`str`, *optional*):
                `"transcribe"`, `"translate"`, `"caption"`, `"question"` (alias `"aqa"`), ... (see
                `task_prompts.supported_tasks()`). Defaults to `"question"` when `prompt` is given, else
                `"transcribe"`.
            language (`str`, *optional*):
                Spoken language of the audio (`"en"`, `"zh"`, ...). A base checkpoint needs it (or
                `output_language`) to transcribe.
            timestamps (`bool`, *optional*, defaults to `False`):
                Ask for word timestamps (`<|timestamps|>` and the first timestamp `<|0.00|>` for a base checkpoint);
                read them back with `decode(..., return_timestamps="word" | True)`.
            prompt (`str`, *optional*):
                The question of `task="question"`.
            output_language (`str`, *optional*):
                Language of the answer (translation target).
            caption_style (`str`, *optional*):
                Base checkpoints, caption task: `"clotho"`, `"audiocaps"`, `"plain"` or `"audioset_ontology"`.
            chat_format (`str`, *optional*):
                `"raw"` or `"chatml"`; defaults to the processor's `chat_format`.
            system_prompt (`str`, *optional*):
                Chat checkpoints only: a system message.
            tokenize (`bool`, *optional*, defaults to `True`):
                `False` returns the prompt text(s) instead; `processor(text=prompts, audio=audio)` then gives the
                same inputs.
            **kwargs:
                Processor keyword arguments (`return_tensors`, `sampling_rate`, `allow_urls`, `long_audio`, ...).
        """
        chat_format = chat_format or self.chat_format
        if chat_format not in CHAT_FORMATS:
            raise ValueError(
                "apply_task_request needs to know the kind of checkpoint: pass `chat_format='raw'` (base Qwen-Audio) "
                "or `'chatml'` (Qwen-Audio-Chat), or set `processor.chat_format`"
                + (f" (got {chat_format!r})." if chat_format is not None else ".")
            )
        if task is None:
            task = "question" if prompt is not None else "transcribe"
        if not isinstance(task, str):
            raise ValueError(f"`task` must be a string, got {task!r}.")
        if prompt is not None and task not in QUESTION_TASKS:
            raise ValueError("`prompt` is the question of `task='question'`; give either `prompt` or another `task`.")
        clips = [audio] if is_single_clip(audio) else list(audio) if isinstance(audio, (list, tuple)) else None
        if not clips:
            raise ValueError("`audio` must be a clip or a non-empty list of clips.")

        if chat_format == "raw":
            if prompt is not None:  # the question is written into the tag chain: it must not end the text early
                check_control_tokens(prompt, "The question", kwargs.get("allow_control_tokens_in_text", False))
            # The released layout's defaults: the audio-language slot of the task, `<|wo_itn|>` to transcribe and
            # `<|itn|>` to translate (none after timestamps, which the answer continues).
            _, layout = task_layout(task)
            tags = build_task_prompt(
                task,
                audio_language=language,
                output_language=output_language,
                timestamps=timestamps,
                itn=None if timestamps else layout.itn_default,
                caption_style=caption_style,
                question=prompt,
            )
            texts = [f"{AUDIO_START_TOKEN}{_written_source(clip)}{AUDIO_END_TOKEN}{tags}" for clip in clips]
            if not tokenize:
                return texts if len(clips) > 1 else texts[0]
            return self(text=texts, audio=clips, **kwargs)

        if caption_style is not None:
            raise ValueError("`caption_style` is a tag of base checkpoints; a chat checkpoint is asked in words.")
        instruction = chat_task_instruction(task, language, output_language, timestamps, question=prompt)
        conversations = []
        for clip in clips:
            messages = [{"role": "user", "content": [{"type": "audio", "audio": clip}, {"type": "text", "text": instruction}]}]
            if system_prompt:
                messages.insert(0, {"role": "system", "content": system_prompt})
            conversations.append(messages)
        return_tensors = kwargs.pop("return_tensors", None)
        return self.apply_chat_template(
            conversations if len(clips) > 1 else conversations[0],
            add_generation_prompt=True,
            tokenize=tokenize,
            return_dict=tokenize,
            return_tensors=return_tensors,
            processor_kwargs=kwargs,
        )

    def apply_transcription_request(
        self, audio, language: str | None = None, timestamps: bool = False, **kwargs
    ) -> BatchFeature | str | list[str]:
        """
        Prepares the inputs that transcribe one or several recordings, under the name Voxtral, AudioFlamingo3 and
        Qwen3-ASR give it: [`~QwenAudioProcessor.apply_task_request`] with `task="transcribe"`.

        ```python
        >>> inputs = processor.apply_transcription_request("speech.flac", language="en", return_tensors="pt")
        ```

        Args:
            audio: One clip or a list of clips (one row each).
            language (`str`, *optional*): Spoken language (`"en"`, `"zh"`, ...); a base checkpoint needs it.
            timestamps (`bool`, *optional*, defaults to `False`): Ask for word timestamps.
            **kwargs: The other arguments of `apply_task_request` (`chat_format`, `system_prompt`, `tokenize`,
                `return_tensors`, ...).
        """
        return self.apply_task_request(audio, task="transcribe", language=language, timestamps=timestamps, **kwargs)

    def decode(self, token_ids, *args, return_timestamps=None, time_offset=0.0, **kwargs):
        """
        Decodes generated ids, as the tokenizer does, or reads the timestamps of a timestamped answer.

        Args:
            token_ids:
                The generated ids of one sequence (list, 1-D tensor) or of a batch (2-D); give only the new tokens
                (everything after the prompt).
            return_timestamps (`str` or `bool`, *optional*):
                `None`/`False`: the text. `"word"`: `{"text": str, "chunks": [{"text": word, "timestamp": (start,
                end)}, ...]}`. `True` or `"segment"`: the same with segment chunks (runs of words cut at silences
                `<|sil|>`, gaps and windows), as the ASR pipeline's `return_timestamps=True` means them. An answer that
                does not start with a timestamp starts at the window's start (`time_offset`), since
                `apply_task_request` ends a base prompt with `<|0.00|>`.
            time_offset (`float` or `list[float]`, *optional*, defaults to 0.0):
                Seconds added to every timestamp (where the window starts in the recording); one per row for a batch.
            **kwargs:
                Tokenizer `decode` arguments (`skip_special_tokens`, `clean_up_tokenization_spaces`).

        Returns:
            `str`, or the dict above; a list of them for a batch.
        """
        if return_timestamps not in TIMESTAMP_MODES:
            raise ValueError(
                f"`return_timestamps` must be None, False, 'word', True or 'segment', got {return_timestamps!r}."
            )
        if hasattr(token_ids, "tolist"):
            token_ids = token_ids.tolist()
        is_batch = isinstance(token_ids, (list, tuple)) and len(token_ids) > 0 and isinstance(token_ids[0], (list, tuple))
        if not return_timestamps:
            if is_batch:
                return self.tokenizer.batch_decode(token_ids, *args, **kwargs)
            return self.tokenizer.decode(token_ids, *args, **kwargs)
        if not is_batch:
            return self._decode_with_timestamps(token_ids, return_timestamps, time_offset, kwargs)
        offsets = time_offset if isinstance(time_offset, (list, tuple)) else [time_offset] * len(token_ids)
        if len(offsets) != len(token_ids):
            raise ValueError(f"Got {len(offsets)} time offsets for {len(token_ids)} sequences.")
        return [
            self._decode_with_timestamps(ids, return_timestamps, offset, kwargs)
            for ids, offset in zip(token_ids, offsets)
        ]

    def batch_decode(self, *args, **kwargs):
        return self.decode(*args, **kwargs)

    def _decode_with_timestamps(self, token_ids, return_timestamps, time_offset, decode_kwargs) -> dict:
        decode_kwargs = {key: value for key, value in decode_kwargs.items() if key != "skip_special_tokens"}
        text = self.tokenizer.decode(token_ids, skip_special_tokens=True, **decode_kwargs).strip()
        raw = self.tokenizer.decode(token_ids, skip_special_tokens=False, **decode_kwargs)
        if not _LEADING_TIMESTAMP.match(raw):
            raw = timestamp_token(0.0) + raw
        parse = parse_word_timestamps if return_timestamps == "word" else parse_segment_timestamps
        return {"text": text, "chunks": parse(raw, time_offset=float(time_offset))}

    @property
    def unused_input_names(self) -> list[str]:
        # The span lengths `_process_audio` gives `replace_audio_token`; not a model input.
        return ["audio_span_lengths"]

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "input_features", "feature_attention_mask"]


def _caller_audio_option(kwargs: dict, key: str, default=None):
    """An audio option as a caller gives it, before `_merge_kwargs`: flat (`allow_urls=True`) or in `audio_kwargs`."""
    return kwargs.get(key, (kwargs.get("audio_kwargs") or {}).get(key, default))


def _written_source(clip) -> str:
    """What the original writes inside the span of a clip: its path or URL, nothing for decoded audio."""
    if isinstance(clip, (str, os.PathLike)):
        return os.fspath(clip)
    return ""


def default_chat_template() -> str:
    """The Qwen-Audio-Chat template shipped with this package."""
    return resources.files(__package__).joinpath("chat_template.jinja").read_text(encoding="utf-8")


__all__ = [
    "QwenAudioAudioKwargs",
    "QwenAudioProcessor",
    "QwenAudioProcessorKwargs",
    "default_chat_template",
]
