# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""Processor for Qwen-Audio and Qwen-Audio-Chat: Whisper log-mel features + Qwen tokenizer + ChatML template."""

import os
import re
import warnings
from importlib import resources

import numpy as np
from transformers import (
    AutoFeatureExtractor,
    AutoProcessor,
    AutoTokenizer,
    BatchFeature,
    ProcessorMixin,
    WhisperFeatureExtractor,
)
from transformers.utils import cached_file, logging

from .audio_io import QWEN_AUDIO_SAMPLING_RATE, is_single_clip, load_audio
from .modeling_qwen_audio import audio_token_lengths
from .tokenization_qwen_audio import (
    AUDIO_END_TOKEN,
    AUDIO_PAD_TOKEN,
    AUDIO_START_TOKEN,
    QwenAudioTokenizerFast,
)


logger = logging.get_logger(__name__)

# Whisper front end of the original: 30 s windows, 10 ms hop, 80 mel bins.
MAX_AUDIO_SECONDS = 30
HOP_LENGTH = 160
MAX_AUDIO_SAMPLES = MAX_AUDIO_SECONDS * QWEN_AUDIO_SAMPLING_RATE
MAX_MEL_FRAMES = MAX_AUDIO_SAMPLES // HOP_LENGTH
# Below 3 mel frames (30 ms) the encoder yields no audio token at all.
MIN_AUDIO_SAMPLES = 3 * HOP_LENGTH
LONG_AUDIO_MODES = ("truncate", "chunk")

_AUDIO_TAG = re.compile(re.escape(AUDIO_START_TOKEN) + "|" + re.escape(AUDIO_END_TOKEN))
AUDIO_PART_KEYS = ("audio", "path", "url", "audio_url")
# Keyword arguments of `__call__` consumed here rather than forwarded to the tokenizer.
_IGNORED_PROCESSOR_KWARGS = ("return_mm_token_type_ids", "sanitize_control_tokens", "load_audio_backend")


def num_mel_frames(num_samples: int) -> int:
    """Valid log-mel frames of a clip, as the original counts them (the first 30 s only)."""
    return min(num_samples, MAX_AUDIO_SAMPLES) // HOP_LENGTH


def split_into_windows(waveform: np.ndarray) -> list[np.ndarray]:
    """Consecutive 30 s windows of a 16 kHz waveform (a tail too short to give an audio token is dropped)."""
    windows = [waveform[start : start + MAX_AUDIO_SAMPLES] for start in range(0, len(waveform), MAX_AUDIO_SAMPLES)]
    if len(windows) > 1 and len(windows[-1]) < MIN_AUDIO_SAMPLES:
        windows.pop()
    return windows


def audio_span_length(num_samples: int) -> int:
    """
    Number of tokens the span `<audio>...</audio>` of a clip takes: its audio tokens plus `<audio>` and `</audio>`.
    Two stride-2 steps follow the log-mel: the encoder's second convolution and the average pooling.
    """
    return audio_token_lengths(num_mel_frames(num_samples)) + 2


def default_chat_template() -> str:
    """The Qwen-Audio-Chat template shipped with this package."""
    return resources.files(__package__).joinpath("chat_template.jinja").read_text(encoding="utf-8")


def default_feature_extractor() -> WhisperFeatureExtractor:
    """Whisper's log-mel front end with Qwen-Audio's settings (80 mel bins, 16 kHz, 30 s window)."""
    return WhisperFeatureExtractor(
        feature_size=80,
        sampling_rate=QWEN_AUDIO_SAMPLING_RATE,
        hop_length=HOP_LENGTH,
        chunk_length=MAX_AUDIO_SECONDS,
        n_fft=400,
        padding_value=0.0,
        return_attention_mask=False,
    )


def find_audio_spans(text: str) -> list[tuple[int, int, str]]:
    """
    Returns `(start, end, source)` for every `<audio>SOURCE</audio>` of `text` (`source` may be empty).
    Raises a `ValueError` for unclosed, nested or unmatched tags.
    """
    spans = []
    open_at = None
    for match in _AUDIO_TAG.finditer(text):
        if match.group() == AUDIO_START_TOKEN:
            if open_at is not None:
                raise ValueError(
                    f"Nested or unclosed {AUDIO_START_TOKEN} at character {match.start()}: every {AUDIO_START_TOKEN} "
                    f"must be closed by {AUDIO_END_TOKEN} before the next one."
                )
            open_at = match
        else:
            if open_at is None:
                raise ValueError(f"{AUDIO_END_TOKEN} at character {match.start()} has no matching {AUDIO_START_TOKEN}.")
            source = text[open_at.end() : match.start()]
            spans.append((open_at.start(), match.end(), source))
            open_at = None
    if open_at is not None:
        raise ValueError(f"Unclosed {AUDIO_START_TOKEN} at character {open_at.start()}: add {AUDIO_END_TOKEN}.")
    return spans


def _span_source(source: str) -> str | None:
    """The path/URL written inside a span, or None when the span is empty or already expanded."""
    stripped = source.replace(AUDIO_PAD_TOKEN, "").strip()
    return stripped or None


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
    """

    audio_token = AUDIO_PAD_TOKEN

    def __init__(self, feature_extractor=None, tokenizer=None, chat_template=None, long_audio="truncate"):
        if feature_extractor is None:
            feature_extractor = default_feature_extractor()
        if tokenizer is None:
            raise ValueError("QwenAudioProcessor needs a tokenizer (QwenAudioTokenizerFast).")
        if chat_template is None:
            chat_template = default_chat_template()
        if long_audio not in LONG_AUDIO_MODES:
            raise ValueError(f"`long_audio` must be one of {LONG_AUDIO_MODES}, got {long_audio!r}.")
        self.long_audio = long_audio
        self.audio_token = AUDIO_PAD_TOKEN
        self.audio_token_id = tokenizer.convert_tokens_to_ids(AUDIO_PAD_TOKEN)
        self.audio_start_token = AUDIO_START_TOKEN
        self.audio_end_token = AUDIO_END_TOKEN
        self.audio_start_token_id = tokenizer.convert_tokens_to_ids(AUDIO_START_TOKEN)
        self.audio_end_token_id = tokenizer.convert_tokens_to_ids(AUDIO_END_TOKEN)
        super().__init__(feature_extractor, tokenizer, chat_template=chat_template)

    # ----------------------------------------------------------------------------------------------------------
    # Loading
    # ----------------------------------------------------------------------------------------------------------
    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        # The released checkpoints have neither `preprocessor_config.json` nor `tokenizer.json`: build the feature
        # extractor from Qwen-Audio's defaults and the tokenizer from `qwen.tiktoken`, without the Auto classes
        # (which would look at the remote-code `auto_map` of the released folder).
        kwargs.pop("_from_auto", None)
        kwargs.pop("trust_remote_code", None)
        hub_kwargs = {
            key: kwargs[key]
            for key in ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")
            if key in kwargs
        }
        preprocessor_file = cached_file(
            pretrained_model_name_or_path,
            "preprocessor_config.json",
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
            **hub_kwargs,
        )
        if preprocessor_file is not None:
            feature_extractor = WhisperFeatureExtractor.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        else:
            feature_extractor = default_feature_extractor()
        tokenizer = QwenAudioTokenizerFast.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        return [feature_extractor, tokenizer]

    @classmethod
    def from_released(cls, released_dir: str | os.PathLike, **kwargs) -> "QwenAudioProcessor":
        """
        Builds the processor of a released checkpoint (`Qwen/Qwen-Audio`, `Qwen/Qwen-Audio-Chat`, or a local copy):
        the tokenizer from `qwen.tiktoken`, Qwen-Audio's feature extractor settings and the chat template. Nothing
        of the folder is executed. Call `save_pretrained` on the result to write native processor files.
        """
        return cls.from_pretrained(released_dir, **kwargs)

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        # transformers 5 nests the feature extractor in `processor_config.json`; also write the classic
        # `preprocessor_config.json` so that `AutoFeatureExtractor` and older readers find it.
        saved_files = super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        self.feature_extractor.save_pretrained(save_directory)
        return saved_files

    # ----------------------------------------------------------------------------------------------------------
    # Processing
    # ----------------------------------------------------------------------------------------------------------
    def _decode_clips(self, clips, sampling_rate, allow_urls, audio_base_dir) -> list[np.ndarray]:
        waveforms = []
        for index, clip in enumerate(clips):
            if clip is None:
                raise ValueError(f"Audio clip {index} is None.")
            waveform = load_audio(
                clip, sampling_rate=sampling_rate, allow_urls=allow_urls, base_dir=audio_base_dir
            )
            if len(waveform) < MIN_AUDIO_SAMPLES:
                raise ValueError(
                    f"Audio clip {index} is too short: {len(waveform)} samples at 16 kHz; Qwen-Audio needs at least "
                    f"{MIN_AUDIO_SAMPLES} ({MIN_AUDIO_SAMPLES / QWEN_AUDIO_SAMPLING_RATE * 1000:.0f} ms)."
                )
            waveforms.append(waveform)
        return waveforms

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
                    stacklevel=3,
                )
                windows_per_clip.append([waveform[:MAX_AUDIO_SAMPLES]])
            else:
                windows_per_clip.append(split_into_windows(waveform))
        return windows_per_clip

    def _process_audio(self, audio, **kwargs):
        """
        Log-mel features of the given 16 kHz windows and the replacement text of each clip's span.

        `audio` is a list (one entry per clip) of lists of windows.
        """
        windows = [window for windows_of_clip in audio for window in windows_of_clip]
        features = self.feature_extractor(
            windows,
            sampling_rate=QWEN_AUDIO_SAMPLING_RATE,
            padding="max_length",
            max_length=MAX_AUDIO_SAMPLES,
            truncation=True,
            return_attention_mask=False,
            return_tensors="np",
        )
        # WhisperFeatureExtractor's own mask can count one frame more than the original (which uses
        # samples // hop); the model masks the encoder with this one.
        feature_attention_mask = np.zeros((len(windows), MAX_MEL_FRAMES), dtype=np.int64)
        for row, window in enumerate(windows):
            feature_attention_mask[row, : num_mel_frames(len(window))] = 1
        processed_audio = {
            "input_features": features["input_features"].astype(np.float32),
            "feature_attention_mask": feature_attention_mask,
            "audio_span_lengths": [[audio_span_length(len(window)) for window in clip] for clip in audio],
        }
        audio_replacements = [
            self.replace_audio_token(processed_audio, audio_idx=index) for index in range(len(audio))
        ]
        return processed_audio, audio_replacements

    def replace_audio_token(self, audio_inputs: dict, audio_idx: int, **kwargs) -> str:
        # One `<audio>` + placeholders + `</audio>` span per 30 s window of the clip.
        return "".join(
            AUDIO_START_TOKEN + AUDIO_PAD_TOKEN * (span_length - 2) + AUDIO_END_TOKEN
            for span_length in audio_inputs["audio_span_lengths"][audio_idx]
        )

    def __call__(
        self,
        text=None,
        audio=None,
        sampling_rate: int | None = None,
        long_audio: str | None = None,
        allow_urls: bool = False,
        audio_base_dir: str | os.PathLike | None = None,
        return_tensors=None,
        **kwargs,
    ) -> BatchFeature:
        """
        Tokenizes `text`, expanding each `<audio></audio>` span, and extracts the log-mel features of the clips.

        Args:
            text (`str` or `list[str]`):
                Prompts. Each `<audio></audio>` or `<audio>PATH_OR_URL</audio>` stands for one clip.
            audio (*optional*):
                The clips, in span order through the batch: one clip, a flat list, or one list per text. A clip is
                anything `audio_io.load_audio` accepts (array, tensor, list, `{"array", "sampling_rate"}`,
                `{"path"}`, path, bytes, URL). Without `audio`, the paths/URLs written inside the spans are loaded.
            sampling_rate (`int`, *optional*):
                Sampling rate of array clips (default 16 kHz); files carry their own rate. Resampled to 16 kHz.
            long_audio (`str`, *optional*):
                Overrides the processor's `long_audio` (`"truncate"` or `"chunk"`) for this call.
            allow_urls (`bool`, *optional*, defaults to `False`):
                Whether http(s) URLs may be downloaded.
            audio_base_dir (`str`, *optional*):
                Folder that relative audio paths are resolved against.
            return_tensors (`str`, *optional*):
                `"pt"`, `"np"`, ... as for tokenizers.
            **kwargs:
                Forwarded to the tokenizer (`padding`, `padding_side`, `truncation`, `max_length`, ...). Padding
                defaults to the longest text (on the left) when there are several texts.

        Returns:
            [`BatchFeature`] with `input_ids`, `attention_mask` and, when there is audio, `input_features`
            (`[num_windows, 80, 3000]`, float32, span order) and `feature_attention_mask` (`[num_windows, 3000]`).
        """
        for key in _IGNORED_PROCESSOR_KWARGS:
            kwargs.pop(key, None)
        kwargs.update(kwargs.pop("text_kwargs", None) or {})
        audio_kwargs = kwargs.pop("audio_kwargs", None) or {}
        sampling_rate = audio_kwargs.get("sampling_rate", sampling_rate)
        return_text_replacement_offsets = kwargs.pop("return_text_replacement_offsets", False)
        long_audio = long_audio or audio_kwargs.get("long_audio") or self.long_audio
        if long_audio not in LONG_AUDIO_MODES:
            raise ValueError(f"`long_audio` must be one of {LONG_AUDIO_MODES}, got {long_audio!r}.")

        if text is None:
            raise ValueError("QwenAudioProcessor needs `text`: write one <audio></audio> span per clip in it.")
        is_batched = not isinstance(text, str)
        texts = [text] if isinstance(text, str) else list(text)
        if not texts or not all(isinstance(sample, str) for sample in texts):
            raise TypeError("`text` must be a string or a non-empty list of strings.")

        spans_per_text = []
        for index, sample in enumerate(texts):
            try:
                spans_per_text.append(find_audio_spans(sample))
            except ValueError as error:
                raise ValueError(f"Text {index}: {error}") from None
        num_spans_per_text = [len(spans) for spans in spans_per_text]
        for index, (sample, spans) in enumerate(zip(texts, spans_per_text)):
            placeholders_inside = sum(source.count(AUDIO_PAD_TOKEN) for _, _, source in spans)
            if sample.count(AUDIO_PAD_TOKEN) != placeholders_inside:
                raise ValueError(
                    f"Text {index} contains {AUDIO_PAD_TOKEN} outside of <audio></audio>; write only "
                    "<audio></audio> and let the processor insert the placeholders."
                )

        if audio is None:
            clips = []
            for index, spans in enumerate(spans_per_text):
                for _, _, source in spans:
                    source = _span_source(source)
                    if source is None:
                        raise ValueError(
                            f"Text {index} has an empty <audio></audio> span but no `audio` was given: pass the clips "
                            "with `audio=` or write their path inside the span."
                        )
                    clips.append(source)
        else:
            clips = _flatten_clips(audio, num_spans_per_text)

        # Each span becomes the single marker `audio_token`, that ProcessorMixin's replacement then expands.
        marked_texts = []
        for sample, spans in zip(texts, spans_per_text):
            pieces, last = [], 0
            for start, end, _ in spans:
                pieces.extend([sample[last:start], self.audio_token])
                last = end
            pieces.append(sample[last:])
            marked_texts.append("".join(pieces))

        processed_audio, audio_replacements = {}, []
        if clips:
            waveforms = self._decode_clips(clips, sampling_rate, allow_urls, audio_base_dir)
            windows = self._split_long_audio(waveforms, long_audio)
            processed_audio, audio_replacements = self._process_audio(windows)
            processed_audio.pop("audio_span_lengths")

        expanded_texts, replacement_offsets = self.get_text_with_replacements(
            marked_texts, audio_replacements=audio_replacements
        )
        if len(texts) > 1:
            kwargs.setdefault("padding", True)
        text_inputs = self.tokenizer(expanded_texts if is_batched else expanded_texts[0], **kwargs)
        if not is_batched:
            # Keep the batch dimension like every multimodal processor.
            text_inputs = {key: [value] for key, value in text_inputs.items()}
        self._check_special_mm_tokens(expanded_texts, text_inputs, modalities=["audio"])
        if return_text_replacement_offsets:
            text_inputs["text_replacement_offsets"] = replacement_offsets
        data = {**text_inputs, **processed_audio}
        return BatchFeature(data, tensor_type=return_tensors, skip_tensor_conversion=self.skip_tensor_conversion)

    # ----------------------------------------------------------------------------------------------------------
    # Chat
    # ----------------------------------------------------------------------------------------------------------
    def _multimodal_inputs_from_conversations(self, conversations, audio_loading_params, load_audio_from_video=False):
        # Collect the audio parts undecoded, in conversation order; `__call__` decodes them with `audio_io`
        # (transformers' loader needs torchcodec/librosa and cannot take `{"array", "sampling_rate"}` parts).
        batch_audios = []
        for conversation in conversations:
            for message in conversation:
                content = message.get("content")
                if isinstance(content, str) or content is None:
                    continue
                for part in content:
                    if not isinstance(part, dict):
                        raise TypeError(f"Message content parts must be dicts, got {type(part).__name__}.")
                    part_type = part.get("type", "audio" if "audio" in part or "audio_url" in part else "text")
                    if part_type != "audio":
                        continue
                    sources = [part[key] for key in AUDIO_PART_KEYS if part.get(key) is not None]
                    if len(sources) != 1:
                        raise ValueError(
                            f"An audio part needs exactly one of {AUDIO_PART_KEYS}, got keys {sorted(part)}."
                        )
                    batch_audios.append(sources[0])
        return [[] for _ in conversations], [[] for _ in conversations], batch_audios, {}

    def apply_chat_template(self, conversation, chat_template=None, **kwargs):
        """
        Renders Qwen-Audio-Chat conversations (see [`~ProcessorMixin.apply_chat_template`]).

        Audio parts are `{"type": "audio", "audio": array | path | url}` (or `"path"` / `"url"` keys). With
        `tokenize=True, return_dict=True` the result holds everything the model needs. Array parts are taken to be
        at 16 kHz unless `processor_kwargs={"sampling_rate": ...}` says otherwise; URLs need
        `processor_kwargs={"allow_urls": True}`.
        """
        processor_kwargs = dict(kwargs.pop("processor_kwargs", None) or {})
        # Our loader decodes; keep the sampling rate of array parts rather than the feature extractor's.
        processor_kwargs.setdefault("sampling_rate", QWEN_AUDIO_SAMPLING_RATE)
        return super().apply_chat_template(
            conversation, chat_template=chat_template, processor_kwargs=processor_kwargs, **kwargs
        )

    def _resolve_audio_loading_params(self, processor_kwargs: dict) -> dict:
        return {"sampling_rate": processor_kwargs.get("sampling_rate", QWEN_AUDIO_SAMPLING_RATE)}

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "input_features", "feature_attention_mask"]


def register_processor_auto_classes() -> None:
    """
    Registers the tokenizer, feature extractor and processor with transformers' Auto classes.

    - `AutoTokenizer`: for `QwenAudioConfig`, and under the released checkpoints' class name `QWenTokenizer`, so
      that `AutoTokenizer.from_pretrained("Qwen/Qwen-Audio")` builds `QwenAudioTokenizerFast` from `qwen.tiktoken`
      without `trust_remote_code` (a locally registered class wins over the folder's `auto_map`).
    - `AutoFeatureExtractor` and `AutoProcessor`: for `QwenAudioConfig`.

    Safe to call several times.
    """
    from transformers.models.auto import tokenization_auto

    # `tokenizer_config.json` of native folders names "QwenAudioTokenizer(Fast)"; the released one "QWenTokenizer".
    # `AutoTokenizer.register` records slow->fast aliases in this same table; there is no slow class to pass it.
    tokenization_auto.REGISTERED_TOKENIZER_CLASSES[QwenAudioTokenizerFast.__name__] = QwenAudioTokenizerFast
    tokenization_auto.REGISTERED_FAST_ALIASES["QWenTokenizer"] = QwenAudioTokenizerFast
    tokenization_auto.REGISTERED_FAST_ALIASES["QwenAudioTokenizer"] = QwenAudioTokenizerFast

    from . import configuration_qwen_audio

    # `QwenReleasedConfig` is what AutoConfig gives for a released folder (`model_type: "qwen"`); registering it
    # too lets `AutoProcessor.from_pretrained(released_dir)` find this processor.
    config_classes = [
        getattr(configuration_qwen_audio, name)
        for name in ("QwenAudioConfig", "QwenReleasedConfig")
        if hasattr(configuration_qwen_audio, name)
    ]
    for config_class in config_classes:
        AutoTokenizer.register(config_class, tokenizer_class=QwenAudioTokenizerFast, exist_ok=True)
        AutoFeatureExtractor.register(config_class, WhisperFeatureExtractor, exist_ok=True)
        AutoProcessor.register(config_class, QwenAudioProcessor, exist_ok=True)


__all__ = [
    "QwenAudioProcessor",
    "audio_span_length",
    "default_chat_template",
    "find_audio_spans",
    "num_mel_frames",
    "register_processor_auto_classes",
]
