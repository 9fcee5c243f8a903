# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The `audio-chat` pipeline: Qwen-Audio(-Chat) conversations, batched, plus task shorthands (transcribe, translate,
caption, ...) with word timestamps.

```python
>>> import transformers_qwen_audio  # registers "audio-chat"
>>> from transformers import pipeline

>>> pipe = pipeline("audio-chat", model="Qwen/Qwen-Audio-Chat")
>>> messages = [
...     {"role": "user", "content": [
...         {"type": "audio", "path": "1272-128104-0000.flac"},
...         {"type": "text", "text": "What does the person say?"},
...     ]},
... ]
>>> pipe(messages, max_new_tokens=64)
[{'input_text': [...], 'generated_text': [..., {'role': 'assistant', 'content': 'The person says: ...'}]}]
>>> pipe(messages, return_full_text=False)[0]["generated_text"]
'The person says: ...'
>>> pipe([messages, other_messages], batch_size=2)   # one list of results per conversation
>>> pipe("speech.flac", prompt="What is that sound?")
>>> pipe("speech.flac", task="transcribe", language="en", return_timestamps="word")
{'text': 'mister quilter is ...', 'chunks': [{'text': 'mister', 'timestamp': (0.0, 0.41)}, ...]}
```

Base or chat checkpoint (only matters for the shorthands, which must build a prompt): `chat_format="chatml"` or
`"raw"` (argument of `pipeline(...)` or of the call) decides. Without it, the checkpoint's `generation_config.chat_format`
decides when present (the released checkpoints set it: "chatml" for Qwen-Audio-Chat, "raw" for Qwen-Audio); else a
model name containing "chat" is a chat checkpoint and a name ending in "qwen-audio" a base one; anything else is
taken for a chat checkpoint (the released Chat model is what users run most). A base checkpoint gets the
hierarchical task tags of the original (`task_prompts.build_task_prompt`), a chat checkpoint a plain instruction.

Streaming: `pipe.stream(messages, max_new_tokens=...)` yields the reply's text as it is generated; or pass a
`transformers.TextIteratorStreamer(pipe.tokenizer, skip_prompt=True, skip_special_tokens=True)` as `streamer=`.
"""

import enum
import os
import threading
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import BatchFeature, GenerationConfig, Pipeline, TextIteratorStreamer
from transformers.utils import logging

from .audio_io import QWEN_AUDIO_SAMPLING_RATE, is_single_clip, load_audio
from .conversation import validate_conversation  # the one conversation model (re-exported here for old imports)
from .processing_qwen_audio import AUDIO_PART_KEYS, MAX_AUDIO_SECONDS, MIN_AUDIO_SAMPLES, split_into_windows
from .task_prompts import (
    CHAT_TASK_INSTRUCTIONS,
    LANGUAGE_NAMES,
    QUESTION_TASKS,
    SPEECH_TASKS,
    TIMESTAMP_INSTRUCTION,
    build_task_prompt,
    parse_word_timestamps,
    timestamp_token,
)
from .tokenization_qwen_audio import ENDOFTEXT_TOKEN, IM_END_TOKEN, IM_START_TOKEN


logger = logging.get_logger(__name__)

DEFAULT_MODEL = "Qwen/Qwen-Audio-Chat"
CHAT_FORMATS = ("chatml", "raw")
MESSAGE_ROLES = ("system", "user", "assistant")

class ReturnType(enum.Enum):
    TENSORS = 0
    NEW_TEXT = 1
    FULL_TEXT = 2


class Chat:
    """A validated conversation; wraps it so that a list of messages is not mistaken for a batch."""

    def __init__(self, messages: Sequence[Mapping]):
        self.messages = validate_conversation(messages)


@dataclass
class _TaskRequest:
    """One shorthand call on one recording: `pipe(audio, task=...)` or `pipe(audio, prompt=...)`."""

    audio: Any
    task: str | None
    prompt: str | None


@dataclass
class _Prepared:
    """What `preprocess` makes of one input: one model row per sequence to generate, and how to read them back."""

    source: Any
    rows: list[BatchFeature]
    kind: str  # "chat" or "task"
    window_offsets: list[float] = field(default_factory=list)
    first_timestamps: list[str] = field(default_factory=list)


def _is_message(item) -> bool:
    return isinstance(item, Mapping) and "role" in item


def _is_conversation(item) -> bool:
    return isinstance(item, (list, tuple)) and len(item) > 0 and _is_message(item[0])


class DefaultCheckpoint(os.PathLike):
    """
    The task's default model, registered as a path-like rather than a string so that `pipeline("audio-chat")` hands
    it to `AudioChatPipeline` unloaded: the pipeline then loads it itself and, without network, says so plainly.
    """

    def __fspath__(self) -> str:
        return DEFAULT_MODEL

    def __str__(self) -> str:
        return DEFAULT_MODEL

    __repr__ = __str__


def load_checkpoint(name: str, dtype="auto", device_map=None, is_default: bool = False):
    """Model and processor of a checkpoint (local folder, native or released layout, or Hub repo id)."""
    from transformers import AutoModelForCausalLM, AutoProcessor

    try:
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, device_map=device_map)
        processor = AutoProcessor.from_pretrained(name)
    except OSError as error:
        if is_default:
            raise OSError(
                f"pipeline('audio-chat') without `model=` uses {name} from the Hugging Face Hub, which could not be "
                f"loaded (no network and no cached copy?). Pass `model=` a local checkpoint folder, or download "
                f"{name} first (`huggingface-cli download {name}`). Cause: {' '.join(str(error).split())[:300]}"
            ) from None
        raise
    return model, processor


def chat_format_of(model, override: str | None = None) -> str:
    """
    `"chatml"` for a chat checkpoint, `"raw"` for a base one. The rule (first that applies): the explicit `override`;
    the checkpoint's `generation_config.chat_format` (set by the released checkpoints); a name containing "chat"
    (chat) or ending in "qwen-audio" (base); otherwise chat.
    """
    if override is not None:
        if override not in CHAT_FORMATS:
            raise ValueError(f"`chat_format` must be one of {CHAT_FORMATS}, got {override!r}.")
        return override
    declared = getattr(getattr(model, "generation_config", None), "chat_format", None)
    if declared in CHAT_FORMATS:
        return declared
    name = str(getattr(model.config, "_name_or_path", "") or getattr(model, "name_or_path", "")).rstrip("/").lower()
    if "chat" in name:
        return "chatml"
    if name.endswith("qwen-audio"):
        return "raw"
    return "chatml"


class AudioChatPipeline(Pipeline):
    """
    Conversations with Qwen-Audio-Chat (any number of turns, any number of clips per turn, optional system message),
    batched with left padding so that each reply is exactly what the conversation gives alone, and task shorthands
    (`task="transcribe"`, `"translate"`, `"caption"`, ...; `return_timestamps="word"`) for both base and chat
    checkpoints. See the module docstring for examples and for how base and chat checkpoints are told apart.

    Unless the checkpoint's generation config says otherwise, generation stops at `<|im_end|>`, `<|endoftext|>` or
    `<|im_start|>` and is limited to 256 new tokens; the checkpoint's own settings (sampling, top-p, ...) apply.

    Pipeline arguments (at construction or per call):
        chat_format (`str`, *optional*): `"chatml"` (chat checkpoint) or `"raw"` (base checkpoint).
        long_audio (`str`, *optional*): `"truncate"` (first 30 s, like the original) or `"chunk"` (consecutive 30 s
            windows; in task mode each window is generated separately and timestamps are shifted onto the
            recording's time line). Defaults to the processor's `long_audio`.
        sampling_rate (`int`, *optional*): rate of raw arrays passed without one (default 16000).
        allow_urls (`bool`, *optional*, defaults to `True`): whether `url` audio parts may be downloaded.
    """

    # Optional rather than required: a loaded model may come without its processor; `__init__` then loads it from
    # the model's folder.
    _load_processor = None
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False
    _load_video_processor = False

    _pipeline_calls_generate = True
    _default_generation_config = GenerationConfig(max_new_tokens=256)

    def __init__(self, model, *args, chat_format: str | None = None, **kwargs):
        if isinstance(model, (str, os.PathLike)):
            # The default checkpoint (see `DefaultCheckpoint`), or a path given to the class directly.
            model, processor = load_checkpoint(
                os.fspath(model),
                dtype=kwargs.get("dtype") or "auto",
                device_map=kwargs.pop("device_map", None),
                is_default=isinstance(model, DefaultCheckpoint),
            )
            if kwargs.get("processor") is None:
                kwargs["processor"] = processor
        super().__init__(model, *args, **kwargs)
        if self.processor is None:
            self.processor = self._load_processor_of_model()
        if not hasattr(self.processor, "apply_chat_template"):
            raise TypeError(
                f"The audio-chat pipeline needs a QwenAudioProcessor, got {type(self.processor).__name__}."
            )
        self.tokenizer = self.processor.tokenizer
        self.chat_format = chat_format_of(self.model, chat_format)
        # Released checkpoints without a generation config still stop like the original's `chat()`.
        stop_ids = [
            self.tokenizer.convert_tokens_to_ids(token) for token in (IM_END_TOKEN, ENDOFTEXT_TOKEN, IM_START_TOKEN)
        ]
        stop_ids = [token_id for token_id in stop_ids if token_id is not None and token_id >= 0]
        if self.tokenizer.pad_token_id is not None:
            self._generation_defaults["pad_token_id"] = self.tokenizer.pad_token_id
        self._chat_stop_ids = stop_ids
        self._stop_ids = set(stop_ids) | set(self._model_eos_ids())

    def _load_processor_of_model(self):
        from transformers import AutoProcessor

        source = getattr(self.model.config, "_name_or_path", None) or getattr(self.model, "name_or_path", None)
        if not source:
            raise ValueError(
                "The audio-chat pipeline needs the model's processor: pass `processor=` (a QwenAudioProcessor, or the "
                "checkpoint's path or repo id) along with a loaded model."
            )
        try:
            return AutoProcessor.from_pretrained(source)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"Could not load the processor of {source!r} ({error}); pass `processor=` explicitly."
            ) from None

    def _model_eos_ids(self) -> list[int]:
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        return [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))

    # ------------------------------------------------------------------------------------------------------------
    # Parameters
    # ------------------------------------------------------------------------------------------------------------
    def _sanitize_parameters(
        self,
        prompt=None,
        task=None,
        language=None,
        output_language=None,
        return_timestamps=None,
        system_prompt=None,
        chat_format=None,
        long_audio=None,
        sampling_rate=None,
        allow_urls=None,
        max_new_tokens=None,
        generate_kwargs=None,
        return_full_text=None,
        return_tensors=None,
        return_type=None,
        skip_special_tokens=None,
        clean_up_tokenization_spaces=None,
        stop_sequence=None,
        **kwargs,
    ):
        preprocess_params, forward_params, postprocess_params = {}, {}, {}
        for name, value in (
            ("prompt", prompt),
            ("task", task),
            ("language", language),
            ("output_language", output_language),
            ("system_prompt", system_prompt),
            ("chat_format", chat_format),
            ("long_audio", long_audio),
            ("sampling_rate", sampling_rate),
            ("allow_urls", allow_urls),
        ):
            if value is not None:
                preprocess_params[name] = value
        if return_timestamps is not None:
            if return_timestamps not in (True, False, "word"):
                raise ValueError(f"`return_timestamps` must be False, True or 'word', got {return_timestamps!r}.")
            preprocess_params["return_timestamps"] = bool(return_timestamps)
            postprocess_params["return_timestamps"] = bool(return_timestamps)
        if chat_format is not None and chat_format not in CHAT_FORMATS:
            raise ValueError(f"`chat_format` must be one of {CHAT_FORMATS}, got {chat_format!r}.")

        generate_kwargs = dict(generate_kwargs or {})
        if max_new_tokens is not None:
            if "max_new_tokens" in generate_kwargs:
                raise ValueError("`max_new_tokens` is given twice: as an argument and in `generate_kwargs`.")
            generate_kwargs["max_new_tokens"] = max_new_tokens
        if stop_sequence is not None:
            generate_kwargs["stop_strings"] = [stop_sequence] if isinstance(stop_sequence, str) else stop_sequence
            generate_kwargs["tokenizer"] = self.processor.tokenizer
        # Whatever else is left is a generation parameter (`do_sample`, `top_p`, `streamer`, ...).
        generate_kwargs.update(kwargs)
        forward_params["generate_kwargs"] = generate_kwargs

        if return_full_text is not None and return_type is None:
            if return_tensors:
                raise ValueError("`return_full_text` and `return_tensors` are mutually exclusive.")
            return_type = ReturnType.FULL_TEXT if return_full_text else ReturnType.NEW_TEXT
        elif return_tensors and return_type is None:
            return_type = ReturnType.TENSORS
        if return_type is not None:
            postprocess_params["return_type"] = return_type
        if skip_special_tokens is not None:
            postprocess_params["skip_special_tokens"] = skip_special_tokens
        if clean_up_tokenization_spaces is not None:
            postprocess_params["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        return preprocess_params, forward_params, postprocess_params

    # ------------------------------------------------------------------------------------------------------------
    # Calling
    # ------------------------------------------------------------------------------------------------------------
    def __call__(self, inputs=None, *, text=None, audio=None, batch_size: int | None = None, **kwargs):
        """
        Continues conversation(s), or runs a task shorthand on audio clip(s).

        Args:
            inputs:
                - a conversation: a list of `{"role", "content"}` messages; `content` is a string or a list of parts
                  `{"type": "text", "text": ...}` and `{"type": "audio", "audio" | "path" | "url": ...}` (the value
                  of `"audio"` may be a path, URL, bytes, a 16 kHz array, or `{"array", "sampling_rate"}`);
                - a list of conversations (batched by `batch_size`), a generator or a dataset of them;
                - an audio clip or a list of clips, with `prompt=` (a question about the clip) or `task=`.
            text: alias of `inputs` for conversations (as in `any-to-any`).
            audio: alias of `inputs` for clips.
            batch_size (`int`, *optional*): how many sequences are generated together (left padded).
            prompt (`str`, *optional*): the question asked about each clip.
            task (`str`, *optional*): one of `task_prompts.supported_tasks()`.
            language (`str`, *optional*): spoken language of the clip (`"en"`, `"zh"`, ...), `"unknown"` by default.
            output_language (`str`, *optional*): language of the answer (translation).
            return_timestamps (`bool` or `"word"`, *optional*): word-level timestamps (speech tasks).
            system_prompt (`str`, *optional*): system message of shorthand chats.
            return_full_text (`bool`, *optional*, defaults to `True`): the whole conversation with the new assistant
                turn, or only the new text.
            return_tensors (`bool`, *optional*): the new token ids instead of text.
            **kwargs: generation parameters (`max_new_tokens`, `do_sample`, `streamer`, ...) or `generate_kwargs`.

        Return:
            For a conversation: a list (one entry per returned sequence) of `{"input_text", "generated_text"}`; for
            a list of conversations, one such list per conversation. For a task shorthand: `{"text"}` (and
            `"chunks": [{"text", "timestamp": (start, end)}]` with timestamps) per clip, as the ASR pipeline does;
            for a prompt shorthand: `{"text"}` per clip.
        """
        if inputs is None:
            inputs = text if text is not None else audio
        elif text is not None or audio is not None:
            raise ValueError("Give the input once: positionally, or as `text=` (conversations) / `audio=` (clips).")
        if inputs is None:
            raise ValueError("Nothing to do: pass a conversation, a list of conversations, or audio with a prompt/task.")
        if batch_size is None:
            batch_size = self._batch_size or 1
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")

        preprocess_params, forward_params, postprocess_params = self._sanitize_parameters(**kwargs)
        preprocess_params = {**self._preprocess_params, **preprocess_params}
        forward_params = {**self._forward_params, **forward_params}
        forward_params["generate_kwargs"] = {
            **self._forward_params.get("generate_kwargs", {}),
            **forward_params.get("generate_kwargs", {}),
        }
        postprocess_params = {**self._postprocess_params, **postprocess_params}
        shorthand = "task" in preprocess_params or "prompt" in preprocess_params

        if _is_message(inputs) or _is_conversation(inputs):
            return self._run([Chat(inputs)], batch_size, preprocess_params, forward_params, postprocess_params)[0]
        if isinstance(inputs, Chat):
            return self._run([inputs], batch_size, preprocess_params, forward_params, postprocess_params)[0]
        if is_single_clip(inputs) and not (isinstance(inputs, Mapping) and "role" in inputs):
            if not shorthand:
                raise ValueError(
                    "Audio alone is not a request: pass `prompt=` (a question) or `task=` (e.g. 'transcribe'), or a "
                    "conversation of {'role', 'content'} messages."
                )
            return self._run([inputs], batch_size, preprocess_params, forward_params, postprocess_params)[0]
        if isinstance(inputs, (list, tuple)):
            if len(inputs) == 0:
                raise ValueError("Got an empty list of inputs.")
            return self._run(list(inputs), batch_size, preprocess_params, forward_params, postprocess_params)
        if isinstance(inputs, (types.GeneratorType, Iterable)) and not isinstance(inputs, (str, bytes)):
            return self._run_lazily(inputs, batch_size, preprocess_params, forward_params, postprocess_params)
        raise TypeError(f"Unsupported input of type {type(inputs).__name__}.")

    def _run(self, items, batch_size, preprocess_params, forward_params, postprocess_params) -> list:
        prepared = [self.preprocess(item, **preprocess_params) for item in items]
        # Every row of every input is one sequence; rows of similar length go together to waste little padding.
        rows = [(item_index, row_index) for item_index, item in enumerate(prepared) for row_index in range(len(item.rows))]
        if batch_size > 1:
            rows.sort(key=lambda key: prepared[key[0]].rows[key[1]]["input_ids"].shape[-1])
        outputs = {}
        for start in range(0, len(rows), batch_size):
            group = rows[start : start + batch_size]
            batch = self._collate([prepared[i].rows[j] for i, j in group])
            new_tokens = self.forward(batch, **forward_params)["new_tokens"]
            for position, key in enumerate(group):
                outputs[key] = new_tokens[position]
        return [
            self.postprocess(
                {"prepared": item, "new_tokens": [outputs[(index, row)] for row in range(len(item.rows))]},
                **postprocess_params,
            )
            for index, item in enumerate(prepared)
        ]

    def _run_lazily(self, inputs, batch_size, preprocess_params, forward_params, postprocess_params):
        group = []
        for item in inputs:
            group.append(Chat(item) if _is_conversation(item) or _is_message(item) else item)
            if len(group) == batch_size:
                yield from self._run(group, batch_size, preprocess_params, forward_params, postprocess_params)
                group = []
        if group:
            yield from self._run(group, batch_size, preprocess_params, forward_params, postprocess_params)

    def stream(self, inputs, **kwargs):
        """
        Generates the reply to ONE conversation (or shorthand) in a background thread and yields its text as it comes.

        ```python
        >>> for piece in pipe.stream(messages, max_new_tokens=128):
        ...     print(piece, end="", flush=True)
        ```
        """
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors = []

        def generate():
            try:
                self(inputs, streamer=streamer, **kwargs)
            except BaseException as error:  # re-raised in the caller's thread
                errors.append(error)
                streamer.end()

        thread = threading.Thread(target=generate, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if errors:
            raise errors[0]

    # ------------------------------------------------------------------------------------------------------------
    # preprocess / _forward / postprocess
    # ------------------------------------------------------------------------------------------------------------
    def preprocess(
        self,
        inputs,
        prompt=None,
        task=None,
        language=None,
        output_language=None,
        return_timestamps=False,
        system_prompt=None,
        chat_format=None,
        long_audio=None,
        sampling_rate=None,
        allow_urls=True,
    ) -> _Prepared:
        long_audio = long_audio or getattr(self.processor, "long_audio", "truncate")
        if long_audio not in ("truncate", "chunk"):
            raise ValueError(f"`long_audio` must be 'truncate' or 'chunk', got {long_audio!r}.")
        if isinstance(inputs, Chat) or _is_message(inputs) or _is_conversation(inputs):
            if task is not None or prompt is not None:
                raise ValueError("`task`/`prompt` are shorthands for audio inputs; a conversation already says it all.")
            chat = inputs if isinstance(inputs, Chat) else Chat(inputs)
            messages = self._decode_audio_parts(chat.messages, sampling_rate, allow_urls)
            row = self._tokenize_chat(messages, long_audio)
            return _Prepared(source=chat, rows=[row], kind="chat")
        if task is None and prompt is None:
            raise ValueError(
                f"Got {type(inputs).__name__} without `prompt=` or `task=`: audio needs a question or a task; "
                "a conversation must be a list of {'role', 'content'} dicts."
            )
        return self._prepare_task(
            inputs, prompt, task, language, output_language, return_timestamps, system_prompt,
            chat_format or self.chat_format, long_audio, sampling_rate, allow_urls,
        )

    def _decode_audio_parts(self, messages, sampling_rate, allow_urls) -> list[dict]:
        """Decodes every audio part to 16 kHz here, so that errors name the message and each part may carry its rate."""
        decoded = []
        for index, message in enumerate(messages):
            content = message["content"]
            if isinstance(content, str):
                decoded.append(message)
                continue
            parts = []
            for part_index, part in enumerate(content):
                key = next((key for key in AUDIO_PART_KEYS if part.get(key) is not None), None)
                if part.get("type", "audio" if key else "text") != "audio":
                    parts.append(part)
                    continue
                value = part[key]
                try:
                    waveform = load_audio(
                        value, sampling_rate=part.get("sampling_rate", sampling_rate), allow_urls=allow_urls
                    )
                except FileNotFoundError as error:
                    raise FileNotFoundError(f"Message {index}, audio part {part_index}: {error}") from None
                except (ValueError, TypeError) as error:
                    raise type(error)(f"Message {index}, audio part {part_index}: {error}") from None
                parts.append({"type": "audio", "audio": waveform})
            decoded.append({**message, "content": parts})
        return decoded

    def _tokenize_chat(self, messages, long_audio) -> BatchFeature:
        rendered = []
        for message in messages:
            if isinstance(message["content"], str):
                rendered.append(message)
                continue
            rendered.append({**message, "content": [dict(part) for part in message["content"]]})
        return self.processor.apply_chat_template(
            rendered,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"sampling_rate": QWEN_AUDIO_SAMPLING_RATE, "long_audio": long_audio},
        )

    def _prepare_task(
        self, audio, prompt, task, language, output_language, return_timestamps, system_prompt, chat_format,
        long_audio, sampling_rate, allow_urls,
    ) -> _Prepared:
        if task is not None and prompt is not None and task not in QUESTION_TASKS:
            raise ValueError("Give either `prompt` (a question) or `task`, not both.")
        if task is None:
            task = "question"
        if not isinstance(task, str):
            raise TypeError(f"`task` must be a string, got {type(task).__name__}.")
        audio_language = language if language is not None else "unknown"
        if task == "transcribe" and language is None and output_language is None:
            raise ValueError("Transcription needs the spoken `language` ('en', 'zh', ...) to build its prompt.")
        # Validates the task, languages and timestamp support for both kinds of checkpoints.
        speech_task = task in SPEECH_TASKS
        base_prompt = build_task_prompt(
            task,
            audio_language=audio_language,
            output_language=output_language,
            timestamps=return_timestamps,
            itn=(False if speech_task and not return_timestamps else None),
            question=prompt,
        )
        if isinstance(audio, (str, os.PathLike)) and not str(audio).startswith(("http://", "https://")):
            if not os.path.exists(audio):
                raise FileNotFoundError(f"Audio file not found: {audio}")
        waveform = load_audio(audio, sampling_rate=sampling_rate, allow_urls=allow_urls)
        if len(waveform) < MIN_AUDIO_SAMPLES:
            raise ValueError(f"The clip is too short: {len(waveform)} samples at 16 kHz; Qwen-Audio needs {MIN_AUDIO_SAMPLES}.")
        if long_audio == "chunk":
            windows = split_into_windows(waveform)
        else:
            windows = [waveform]  # the processor keeps the first 30 s, with a warning

        rows, first_timestamps = [], []
        for window in windows:
            if chat_format == "raw":
                row = self.processor(
                    text="<audio></audio>" + base_prompt, audio=window, long_audio="truncate", return_tensors="pt"
                )
                # The base prompt ends with the first timestamp; the parser needs it back in front of the answer.
                first_timestamps.append(timestamp_token(0.0) if return_timestamps else "")
            else:
                instruction = prompt if task in QUESTION_TASKS else self._chat_instruction(
                    task, language, output_language, return_timestamps
                )
                messages = [{"role": "user", "content": [{"type": "audio", "audio": window}, {"type": "text", "text": instruction}]}]
                if system_prompt:
                    messages.insert(0, {"role": "system", "content": system_prompt})
                row = self._tokenize_chat(messages, "truncate")
                first_timestamps.append("")
            rows.append(row)
        return _Prepared(
            source=_TaskRequest(audio=audio, task=task, prompt=prompt),
            rows=rows,
            kind="task",
            window_offsets=[index * float(MAX_AUDIO_SECONDS) for index in range(len(windows))],
            first_timestamps=first_timestamps,
        )

    @staticmethod
    def _chat_instruction(task, language, output_language, return_timestamps) -> str:
        task = task.strip().strip("<|>").lower()
        spoken = LANGUAGE_NAMES.get((language or "").lower())
        target = LANGUAGE_NAMES.get((output_language or "en").lower(), output_language)
        instruction = CHAT_TASK_INSTRUCTIONS[task].format(
            language=f" ({spoken})" if spoken else "", output_language=target
        )
        return instruction + (TIMESTAMP_INSTRUCTION if return_timestamps else "")

    def _collate(self, rows: list[BatchFeature]) -> dict:
        """Left-pads the rows' ids into one batch and concatenates their clips in row order (= span order)."""
        pad_id = self.tokenizer.pad_token_id
        length = max(row["input_ids"].shape[-1] for row in rows)
        input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for index, row in enumerate(rows):
            row_length = row["input_ids"].shape[-1]
            input_ids[index, length - row_length :] = row["input_ids"][0]
            attention_mask[index, length - row_length :] = row["attention_mask"][0]
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        with_audio = [row for row in rows if "input_features" in row]
        if with_audio:
            dtype = self.model.dtype if self.model.dtype.is_floating_point else torch.float32
            batch["input_features"] = torch.cat([row["input_features"] for row in with_audio]).to(dtype)
            batch["feature_attention_mask"] = torch.cat([row["feature_attention_mask"] for row in with_audio])
        return batch

    def _forward(self, model_inputs, generate_kwargs=None):
        generate_kwargs = dict(generate_kwargs or {})
        overrides = {}
        user_config = generate_kwargs.get("generation_config")
        if "eos_token_id" not in {**self._generate_kwargs, **generate_kwargs} and (user_config is None or user_config.eos_token_id is None):
            # The checkpoint's stop ids plus the ChatML ones: the original's `chat()` stopped at <|im_end|> too.
            overrides["eos_token_id"] = list(dict.fromkeys(self._model_eos_ids() + self._chat_stop_ids))
        generate_kwargs = self._prepare_generate_kwargs(generate_kwargs, **overrides)
        streamer = generate_kwargs.get("streamer")
        if streamer is not None and model_inputs["input_ids"].shape[0] > 1:
            raise ValueError("A `streamer` follows one sequence: call with one input and batch_size=1.")
        prompt_length = model_inputs["input_ids"].shape[1]
        generated = self.model.generate(**model_inputs, **generate_kwargs)
        new_tokens = generated[:, prompt_length:]
        batch = model_inputs["input_ids"].shape[0]
        # num_return_sequences > 1: [batch * n, T] -> [batch, n, T]
        new_tokens = new_tokens.reshape(batch, -1, new_tokens.shape[-1])
        return {"new_tokens": new_tokens}

    def postprocess(
        self,
        model_outputs,
        return_type=ReturnType.FULL_TEXT,
        return_timestamps=False,
        skip_special_tokens=True,
        clean_up_tokenization_spaces=None,
    ):
        prepared: _Prepared = model_outputs["prepared"]
        candidates_per_row = [self._until_stop(tokens) for tokens in model_outputs["new_tokens"]]
        decode_kwargs = {}
        if clean_up_tokenization_spaces is not None:
            decode_kwargs["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces

        if prepared.kind == "task":
            if return_type == ReturnType.TENSORS:
                return {"generated_token_ids": [candidates[0] for candidates in candidates_per_row]}
            first = [candidates[0] for candidates in candidates_per_row]
            texts = [self.tokenizer.decode(tokens, skip_special_tokens=True, **decode_kwargs).strip() for tokens in first]
            result = {"text": " ".join(text for text in texts if text)}
            if return_timestamps:
                chunks = []
                for tokens, offset, first_timestamp in zip(first, prepared.window_offsets, prepared.first_timestamps):
                    raw = first_timestamp + self.tokenizer.decode(tokens, skip_special_tokens=False)
                    chunks.extend(parse_word_timestamps(raw, time_offset=offset))
                result["chunks"] = chunks
            return result

        chat: Chat = prepared.source
        candidates = candidates_per_row[0]
        if return_type == ReturnType.TENSORS:
            return [{"input_text": chat.messages, "generated_token_ids": tokens} for tokens in candidates]
        records = []
        for tokens in candidates:
            reply = self.tokenizer.decode(tokens, skip_special_tokens=skip_special_tokens, **decode_kwargs)
            if return_type == ReturnType.NEW_TEXT:
                generated = reply
            else:
                generated = list(chat.messages) + [{"role": "assistant", "content": reply}]
            records.append({"input_text": chat.messages, "generated_text": generated})
        return records

    def _until_stop(self, candidates: torch.Tensor) -> list[torch.Tensor]:
        """Each candidate's new tokens up to (not including) its first stop token; the rest is batch padding."""
        trimmed = []
        for tokens in candidates:
            stops = [index for index, token in enumerate(tokens.tolist()) if token in self._stop_ids]
            trimmed.append(tokens[: stops[0]] if stops else tokens)
        return trimmed


def register_pipeline() -> None:
    """Registers `AudioChatPipeline` as the `audio-chat` task of `transformers.pipeline`."""
    from transformers import AutoModelForCausalLM
    from transformers.pipelines import PIPELINE_REGISTRY

    if PIPELINE_REGISTRY.supported_tasks.get("audio-chat", {}).get("impl") is AudioChatPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        "audio-chat",
        pipeline_class=AudioChatPipeline,
        pt_model=AutoModelForCausalLM,
        default={"model": (DefaultCheckpoint(), None)},
        type="multimodal",
    )


__all__ = ["AudioChatPipeline", "Chat", "chat_format_of", "register_pipeline", "validate_conversation"]
