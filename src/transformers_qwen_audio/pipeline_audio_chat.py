# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""The `audio-chat` pipeline: Qwen-Audio(-Chat) conversations and task requests on transformers' `ChunkPipeline`."""

import os
import threading
from collections.abc import Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoProcessor, GenerationConfig, TextIteratorStreamer
from transformers.utils import logging
from transformers.utils.chat_template_utils import Chat

from .audio_io import QWEN_AUDIO_SAMPLING_RATE, is_single_clip
from .conversation import is_conversation, is_message, load_clip
from .configuration_qwen_audio import CHAT_FORMATS
from .feature_extraction_qwen_audio import MAX_AUDIO_SECONDS, split_into_windows
from .long_form import (
    LONG_FORM_METHODS,
    check_window_seconds,
    declared_window_seconds,
    long_form_words,
    words_text,
    words_to_segments,
)
from .processing_qwen_audio import LONG_AUDIO_MODES, TIMESTAMP_MODES
from .word_timestamps import word_separator
from .transformers_internals import (
    ChunkPipeline,
    PipelineChunkIterator,
    PipelineIterator,
    PipelinePackIterator,
    ReturnType,
)


logger = logging.get_logger(__name__)

DEFAULT_MODEL = "Qwen/Qwen-Audio-Chat"
# The pipeline's own call arguments and the step that takes each; every other argument is a generation parameter.
PREPROCESS_PARAMS = (
    "prompt", "task", "language", "output_language", "return_timestamps", "system_prompt", "chat_format",
    "long_audio", "sampling_rate", "allow_urls", "allow_audio_paths_in_text", "allow_control_tokens_in_text",
    "continue_final_message", "errors",
)
POSTPROCESS_PARAMS = ("return_timestamps", "skip_special_tokens", "clean_up_tokenization_spaces")
CHOICES = {"return_timestamps": TIMESTAMP_MODES, "chat_format": CHAT_FORMATS + (None,),
           "long_audio": LONG_AUDIO_MODES + LONG_FORM_METHODS + (None,), "errors": ("raise", "return", None)}


class DefaultCheckpoint(os.PathLike):
    """The task's default model, registered as a path-like rather than a string so that `pipeline("audio-chat")`
    hands it to `AudioChatPipeline` unloaded: the pipeline then loads it itself and, offline, says so plainly."""

    def __fspath__(self) -> str:
        return DEFAULT_MODEL

    __str__ = __repr__ = __fspath__


class _Conversation(Chat):
    """transformers' `Chat` (a list of messages not to be taken for a batch), checked in `preprocess` by the
    conversation model, whose errors say what is wrong and where (and `errors="return"` can catch them)."""

    def __init__(self, messages):
        self.messages = [messages] if is_message(messages) else list(messages)


def _as_chat(item):
    return _Conversation(item) if is_message(item) or is_conversation(item) else item


def _is_chat(item) -> bool:  # a conversation, wrapped or not, rather than audio
    return isinstance(item, Chat) or is_message(item) or is_conversation(item)


class AudioChatPipeline(ChunkPipeline):
    """
    Conversations with Qwen-Audio-Chat (any number of turns and clips, a system message, a final assistant message
    continued) and task requests on base and chat checkpoints, batched with left padding so that each reply is the
    one its input gets alone. Batching, `num_workers`, generators and datasets work as in every pipeline.

    ```python
    >>> pipe = pipeline("audio-chat", model="Qwen/Qwen-Audio-Chat")  # after `import transformers_qwen_audio`
    >>> messages = [{"role": "user", "content": [
    ...     {"type": "audio", "path": "1272-128104-0000.flac"}, {"type": "text", "text": "What does the person say?"}]}]
    >>> pipe(messages, max_new_tokens=64)
    [{'input_text': [...], 'generated_text': [..., {'role': 'assistant', 'content': 'The person says: ...'}]}]
    >>> pipe(messages + [{"role": "assistant", "content": "The person says:"}])  # continued, not a new turn
    >>> pipe([messages, other_messages], batch_size=2)  # or a generator, or KeyDataset(dataset, "messages")
    >>> pipe(audio="speech.flac", text="What is that sound?")  # the any-to-any form; same as prompt=
    >>> pipe("speech.flac", task="transcribe", language="en", return_timestamps="word")
    {'text': 'mister quilter is ...', 'chunks': [{'text': 'mister', 'timestamp': (0.0, 0.41)}, ...]}
    >>> for piece in pipe.stream(messages): print(piece, end="")  # the reply as it is generated
    ```

    Arguments (of the call or of `pipeline(...)`), besides generation parameters (`max_new_tokens`, ...):
    `prompt` (a question about each clip), `task` (`task_prompts.supported_tasks()`), `language`, `output_language`,
    `system_prompt`; `return_timestamps`: `"word"` gives word chunks, `True` (or `"segment"`) segment chunks (runs of
    words cut at silences and windows), as in the ASR pipeline; `chat_format`: `"chatml"` (chat) or `"raw"` (base
    checkpoint: hierarchical task tags), by default the processor's, else the checkpoint's generation config's, else
    chat; `long_audio`: `"truncate"` (first 30 s), `"chunk"` (a task per 30 s window, on the recording's time line:
    the fastest), or, for task requests with word timestamps (transcription), `"sequential"` (each window starts
    where the previous one's last whole word ended) or `"vad"` (windows end in pauses found by silero-vad, the `vad`
    extra), see `long_form` (`progress_callback(seconds)` follows them); `sampling_rate` of bare arrays (16000);
    `continue_final_message` (default: when the last message is the assistant's).
    Safety: `allow_urls=True` is needed to download http(s) audio, `allow_audio_paths_in_text=True` to read
    `<audio>PATH</audio>` written in message text (the original's format; never for untrusted text, which would
    pick the local file read); control tokens written in message text (`<|im_start|>`, `<|im_end|>`,
    `<|endoftext|>`) are refused, so that a user cannot open a turn, unless `allow_control_tokens_in_text=True`. Errors: a bad input raises an error naming its index ("Input 1: ..."); with
    `errors="return"` the other inputs are answered and the bad one gives `{"error": message}` (for a conversation
    `[{"input_text", "error"}]`); generation errors always raise.
    Generation stops at the checkpoint's end ids and `<|im_end|>`, `<|endoftext|>`, `<|im_start|>` (as the
    original's `chat()`), after 256 new tokens unless the checkpoint's generation config says otherwise.
    """

    # Optional: a loaded model may come without its processor; `__init__` then loads it from the model's folder.
    _load_processor = None
    _load_tokenizer = _load_feature_extractor = _load_image_processor = _load_video_processor = False
    _pipeline_calls_generate = True
    _default_generation_config = GenerationConfig(max_new_tokens=256)

    def __init__(self, model, *args, chat_format: str | None = None, **kwargs):
        if isinstance(model, (str, os.PathLike)):  # the default checkpoint, or a path given to the class
            name, device_map = os.fspath(model), kwargs.pop("device_map", None)
            try:
                dtype = kwargs.get("dtype") or "auto"
                model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, device_map=device_map)
            except OSError as error:
                if not isinstance(model, DefaultCheckpoint):
                    raise
                raise OSError(
                    f"pipeline('audio-chat') without `model=` uses {name} from the Hugging Face Hub, which could not "
                    f"be loaded (no network and no cached copy?). Pass `model=` a local checkpoint folder, or download "
                    f"{name} first (`huggingface-cli download {name}`). Cause: {' '.join(str(error).split())[:300]}"
                ) from None
        super().__init__(model, *args, **kwargs)
        if self.processor is None:  # a loaded model given without its processor: the one of its folder
            try:
                self.processor = AutoProcessor.from_pretrained(self.model.config._name_or_path)
            except (OSError, ValueError, TypeError) as error:
                raise ValueError(f"Could not load the model's processor ({error}); pass `processor=`.") from None
        if not hasattr(self.processor, "apply_task_request"):
            raise TypeError(f"The audio-chat pipeline needs a QwenAudioProcessor, got {type(self.processor).__name__}.")
        self.tokenizer, self.feature_extractor = self.processor.tokenizer, self.processor.feature_extractor
        self._generation_defaults["pad_token_id"] = self.tokenizer.pad_token_id
        generation_config = self.model.generation_config
        self.chat_format = chat_format or self.processor.chat_format or getattr(generation_config, "chat_format", None)
        if self.chat_format is None:
            logger.warning(
                "The checkpoint does not say whether it is a chat or a base model; task requests are written for a "
                "chat model (Qwen-Audio-Chat). Pass `chat_format='raw'` for a base Qwen-Audio checkpoint."
            )
            self.chat_format = "chatml"
        if self.chat_format not in CHAT_FORMATS:
            raise ValueError(f"`chat_format` must be one of {CHAT_FORMATS}, got {self.chat_format!r}.")
        # Where replies end, to cut batch padding: generation itself stops at the generation config's eos ids, which
        # loading a checkpoint completes with the chat stop ids.
        eos = generation_config.eos_token_id
        self._stop_ids = set([eos] if isinstance(eos, int) else eos or []) | set(self.processor.chat_stop_token_ids)

    def _sanitize_parameters(
        self, max_new_tokens=None, generate_kwargs=None, return_full_text=None, return_tensors=None, return_type=None,
        stop_sequence=None, **kwargs,
    ):
        for name, choices in CHOICES.items():
            if name in kwargs and kwargs[name] not in choices:
                raise ValueError(f"`{name}` must be one of {choices}, got {kwargs[name]!r}.")
        preprocess_params = {name: kwargs.pop(name) for name in PREPROCESS_PARAMS if kwargs.get(name) is not None}
        postprocess_params = {name: kwargs.pop(name) for name in POSTPROCESS_PARAMS if kwargs.get(name) is not None}
        if "return_timestamps" in preprocess_params:
            postprocess_params["return_timestamps"] = preprocess_params["return_timestamps"]
        # As in ImageTextToTextPipeline: what is left over is a generation parameter (`do_sample`, `streamer`, ...).
        generate_kwargs = {**(generate_kwargs or {}), **kwargs}
        if max_new_tokens is not None:
            if "max_new_tokens" in generate_kwargs:
                raise ValueError("`max_new_tokens` is given twice: as an argument and in `generate_kwargs`.")
            generate_kwargs["max_new_tokens"] = max_new_tokens
        if stop_sequence is not None:
            generate_kwargs["stop_strings"] = [stop_sequence] if isinstance(stop_sequence, str) else stop_sequence
            generate_kwargs["tokenizer"] = self.processor.tokenizer
        if return_full_text is not None and return_type is None:
            if return_tensors:
                raise ValueError("`return_full_text` and `return_tensors` are mutually exclusive.")
            return_type = ReturnType.FULL_TEXT if return_full_text else ReturnType.NEW_TEXT
        elif return_tensors and return_type is None:
            return_type = ReturnType.TENSORS
        if return_type is not None:
            postprocess_params["return_type"] = return_type
        return preprocess_params, {"generate_kwargs": generate_kwargs} if generate_kwargs else {}, postprocess_params

    def __call__(self, inputs=None, text=None, audio=None, **kwargs):
        """
        Answers a conversation (`{"role", "content"}` messages), a clip with `task=`/`prompt=`, a `{"audio", "text"}`
        dict, or a list, generator or dataset of these; `text=` as in `image-text-to-text`, or with `audio=` the
        question. Returns `[{"input_text", "generated_text"}]` per conversation (one per sequence), `{"text"}` (and
        `"chunks": [{"text", "timestamp"}]`) per task request: a list for a list, an iterable for a generator/dataset.
        """
        if inputs is not None and (text is not None or audio is not None):
            raise ValueError("Give the input once: positionally, or as `text=` / `audio=`.")
        if audio is not None:  # the any-to-any form: `text` is the question
            clips = [audio] if is_single_clip(audio) else list(audio)
            texts = list(text) if isinstance(text, (list, tuple)) else [text] * len(clips)
            if len(texts) != len(clips):
                raise ValueError(f"Got {len(clips)} clips but {len(texts)} texts: give one text per clip, or one.")
            inputs = [{"audio": clip, "text": question} for clip, question in zip(clips, texts)]
            inputs = inputs[0] if is_single_clip(audio) else inputs
        elif text is not None:
            inputs = [{"role": "user", "content": text}] if isinstance(text, str) else text
        if inputs is None:
            raise ValueError("Nothing to do: pass a conversation, a list of conversations, or audio with a task/prompt.")
        if is_message(inputs) or is_conversation(inputs):
            inputs = _Conversation(inputs)
        elif isinstance(inputs, (list, tuple)):
            if len(inputs) == 0:
                raise ValueError("Got an empty list of inputs.")
            # A list of samples is one clip, not a batch.
            inputs = np.asarray(inputs, np.float32) if is_single_clip(inputs) else [_as_chat(item) for item in inputs]
        elif hasattr(inputs, "__next__") and hasattr(inputs, "send"):  # a generator stays one, consumed lazily
            inputs = (_as_chat(item) for item in inputs)
        method = kwargs.get("long_audio") or self._preprocess_params.get("long_audio")
        if method in LONG_FORM_METHODS:
            return self._long_form(inputs, **{**kwargs, "long_audio": method})
        if kwargs.get("window_seconds") is not None:
            raise ValueError("`window_seconds` sets the windows of long_audio='sequential' or 'vad'; "
                             f"long_audio={method!r} hears 30 s windows.")
        kwargs.pop("window_seconds", None)
        return super().__call__(inputs, **kwargs)

    def _long_form(self, inputs, long_audio, batch_size=None, progress_callback=None, errors="raise",
                   window_seconds=None, **kwargs):
        """
        `long_audio="sequential"` or `"vad"`: a driver over the pipeline's own window calls, since a ChunkPipeline's
        preprocess cannot depend on what earlier windows said. Windows are transcribed with word timestamps,
        `batch_size` at a time, across recordings; the words land on each recording's time line (`long_form`).
        `window_seconds` shortens the windows, as Whisper's `chunk_length_s` does, for a model trained on shorter
        clips; its default is the checkpoint's `generation_config.long_form_window_seconds` (the main job's tiny
        models set it), else 30 s, the most the model hears.
        """
        window_seconds = (declared_window_seconds(self.model.generation_config) if window_seconds is None
                          else check_window_seconds(window_seconds))
        single = not isinstance(inputs, (list, tuple))
        if single and not (is_single_clip(inputs) or _is_chat(inputs)):
            raise TypeError(f"long_audio={long_audio!r} takes a clip or a list of clips, got {type(inputs).__name__}.")
        items = [inputs] if single else list(inputs)
        if any(_is_chat(item) or (isinstance(item, Mapping) and "text" in item) for item in items):
            raise ValueError(f"long_audio={long_audio!r} transcribes clips; a conversation or a question hears the "
                             "first 30 s, or every window with long_audio='chunk'.")
        call = {**self._preprocess_params, **self._postprocess_params, **kwargs}
        if call.get("task") is None or call.get("prompt") is not None:
            raise ValueError(f"long_audio={long_audio!r} needs `task=` (transcribe, ...) and no `prompt=`: it follows "
                             "the words the model times.")
        return_timestamps = call.get("return_timestamps")
        if return_timestamps not in TIMESTAMP_MODES:
            raise ValueError(f"`return_timestamps` must be one of {TIMESTAMP_MODES}, got {return_timestamps!r}.")
        for name in ("return_timestamps", "sampling_rate", "allow_urls", "long_audio"):
            kwargs.pop(name, None)
        batch_size = batch_size or self._batch_size or 1
        waveforms, results = {}, [None] * len(items)
        for index, item in enumerate(items):
            try:
                waveforms[index] = load_clip(item, "Audio", sampling_rate=call.get("sampling_rate"),
                                             allow_urls=call.get("allow_urls", False))
            except (ValueError, TypeError, OSError) as error:
                if errors == "raise":
                    raise _numbered_error(index, error) from None
                results[index] = {"error": f"Input {index}: {error}"}

        def transcribe_windows(windows):
            return self._transcribe_windows(windows, batch_size=min(batch_size, len(windows)), **kwargs)

        method_kwargs = {"batch_size": batch_size} if long_audio == "vad" else {}
        method_kwargs["window_seconds"] = float(window_seconds)
        found = long_form_words(list(waveforms.values()), transcribe_windows, long_audio, progress=progress_callback,
                                **method_kwargs)
        separator = word_separator(call.get("output_language") or call.get("language"))
        for index, words in zip(waveforms, found):
            results[index] = {"text": words_text(words, separator)}
            if return_timestamps:
                results[index]["chunks"] = words if return_timestamps == "word" else words_to_segments(words, separator)
        return results[0] if single else results

    def _transcribe_windows(self, windows: list[np.ndarray], **kwargs) -> list[list[dict]]:
        """The word chunks of each window (times relative to it): one call of the pipeline, batched."""
        answers = self(windows, return_timestamps="word", long_audio="truncate", sampling_rate=QWEN_AUDIO_SAMPLING_RATE,
                       **kwargs)
        return [answer["chunks"] for answer in answers]

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        # ChunkPipeline's, with the inputs numbered (errors name them) and a collate for the clips.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if num_workers > 1:
            logger.warning("A ChunkPipeline preprocesses in one worker at most: using `num_workers=1`.")
            num_workers = 1
        rows = PipelineChunkIterator(enumerate(inputs), self._preprocess_numbered, preprocess_params)
        dataloader = DataLoader(rows, num_workers=num_workers, batch_size=batch_size, collate_fn=self._collate)
        model_iterator = PipelinePackIterator(dataloader, self.forward, forward_params, loader_batch_size=batch_size)
        model_iterator.loader_batch_size = batch_size  # `_collate` batches even a single row: always unbatch
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

    def _preprocess_numbered(self, numbered, errors="raise", **preprocess_params):
        index, item = numbered
        try:
            yield from self.preprocess(item, **preprocess_params)
        except (ValueError, TypeError, OSError) as error:
            if errors == "raise":
                raise _numbered_error(index, error) from None
            failure = {"error": f"Input {index}: {error}"}
            if _is_chat(item):
                failure = [{"input_text": getattr(item, "messages", item), **failure}]
            yield {"is_last": True, "meta": {"error": failure}}

    def preprocess(
        self, inputs, prompt=None, task=None, language=None, output_language=None, return_timestamps=False,
        system_prompt=None, chat_format=None, long_audio=None, sampling_rate=None, allow_urls=False,
        allow_audio_paths_in_text=False, allow_control_tokens_in_text=False, continue_final_message=None,
    ):
        """Yields the model rows of one input (one per 30 s window of a chunked task request), each with `meta`."""
        long_audio = long_audio or self.processor.long_audio
        audio_kwargs = {
            "sampling_rate": sampling_rate or QWEN_AUDIO_SAMPLING_RATE, "allow_urls": allow_urls, "long_audio": long_audio,
        }
        if _is_chat(inputs):
            if task is not None or prompt is not None or return_timestamps:
                raise ValueError("`task`, `prompt` and `return_timestamps` apply to audio; a conversation says it all.")
            messages = _as_chat(inputs).messages
            if continue_final_message is None:  # as ImageTextToTextPipeline: a final assistant message is a prefill
                continue_final_message = messages[-1].get("role") == "assistant"
            row = self.processor.apply_chat_template(
                messages, add_generation_prompt=not continue_final_message,
                continue_final_message=continue_final_message, tokenize=True, return_dict=True, return_tensors="pt",
                processor_kwargs={**audio_kwargs, "allow_audio_paths_in_text": allow_audio_paths_in_text,
                                  "allow_control_tokens_in_text": allow_control_tokens_in_text},
            )
            yield {**row, "is_last": True, "meta": {"messages": messages, "continue": continue_final_message}}
            return
        audio = inputs
        if isinstance(inputs, Mapping) and "text" in inputs:  # {"audio": clip, "text": question}
            if inputs["text"] is not None and prompt is not None:
                raise ValueError("Give the question once: as `text` or as `prompt=`.")
            audio, prompt = inputs.get("audio"), inputs["text"] if inputs["text"] is not None else prompt
        if task is None and prompt is None:
            raise ValueError(
                f"Got {type(inputs).__name__} without `prompt=` or `task=`: audio needs a question or a task; "
                "a conversation is a list of {'role', 'content'} messages."
            )
        waveform = load_clip(audio, "Audio", sampling_rate=sampling_rate, allow_urls=allow_urls)
        windows = split_into_windows(waveform) if long_audio == "chunk" else [waveform]  # else the processor truncates
        for number, window in enumerate(windows):
            row = self.processor.apply_task_request(
                window, task=task, language=language, timestamps=bool(return_timestamps), prompt=prompt,
                output_language=output_language, chat_format=chat_format or self.chat_format,
                system_prompt=system_prompt, return_tensors="pt", long_audio="truncate",
            )
            offset = number * float(MAX_AUDIO_SECONDS)
            yield {**row, "is_last": number == len(windows) - 1, "meta": {"time_offset": offset}}

    def _collate(self, rows: list[dict]) -> dict:
        """Left-pads the rows' ids (the tokenizer's `pad`) and concatenates their clips in row order, which is the
        order of their spans; rows of failed inputs only carry their `meta`."""
        valid = [row for row in rows if "input_ids" in row]
        batch = {}
        if valid:
            ids = [{key: row[key][0] for key in ("input_ids", "attention_mask")} for row in valid]
            batch = dict(self.tokenizer.pad(ids, padding_side="left", return_tensors="pt"))
        if with_audio := [row for row in valid if "input_features" in row]:
            dtype = self.dtype if self.dtype is not None and self.dtype.is_floating_point else torch.float32
            batch["input_features"] = torch.cat([row["input_features"] for row in with_audio]).to(dtype)
            batch["feature_attention_mask"] = torch.cat([row["feature_attention_mask"] for row in with_audio])
        return {**batch, "is_last": [row["is_last"] for row in rows], "meta": [row["meta"] for row in rows]}

    def _forward(self, model_inputs, generate_kwargs=None):
        meta, is_last = model_inputs.pop("meta"), model_inputs.pop("is_last")
        valid = [index for index, row_meta in enumerate(meta) if "error" not in row_meta]
        new_tokens = torch.empty((len(meta), 1, 0), dtype=torch.long)
        if valid:
            generate_kwargs = self._prepare_generate_kwargs(dict(generate_kwargs or {}))
            if "eos_token_id" not in generate_kwargs and "generation_config" not in generate_kwargs:
                # Stop where replies end (`_stop_ids`), not only at the generation config's ids: a checkpoint with
                # another vocabulary than the released one (the tiny ones) names only its <|endoftext|> there, and
                # generation would run on after <|im_end|> to `max_new_tokens`, streamed text included.
                generate_kwargs["eos_token_id"] = sorted(self._stop_ids)
            if generate_kwargs.get("streamer") is not None and len(valid) > 1:
                raise ValueError("A `streamer` follows one sequence: call with one input and batch_size=1.")
            prompt_length = model_inputs["input_ids"].shape[1]
            generated = self.model.generate(**model_inputs, **generate_kwargs)[:, prompt_length:]
            generated = generated.reshape(len(valid), -1, generated.shape[-1])  # [rows, num_return_sequences, T]
            new_tokens = generated.new_full((len(meta), *generated.shape[1:]), self.tokenizer.pad_token_id)
            new_tokens[valid] = generated
        return {"new_tokens": new_tokens, "is_last": is_last, "meta": meta}

    def postprocess(
        self, model_outputs, return_type=ReturnType.FULL_TEXT, return_timestamps=None, skip_special_tokens=True,
        clean_up_tokenization_spaces=None,
    ):
        if failed := [output["meta"]["error"] for output in model_outputs if "error" in output["meta"]]:
            return failed[0]
        cleanup = clean_up_tokenization_spaces
        decode_kwargs = {} if cleanup is None else {"clean_up_tokenization_spaces": cleanup}
        # Each window's candidates (num_return_sequences), cut at their first stop (the rest is batch padding).
        windows = [[self._until_stop(tokens) for tokens in output["new_tokens"][0]] for output in model_outputs]
        meta = model_outputs[0]["meta"]
        if "messages" not in meta:  # a task request: the first candidate of each window, on the recording's time line
            answers = [candidates[0] for candidates in windows]
            if return_type == ReturnType.TENSORS:
                return {"generated_token_ids": answers}
            decoded = [
                self.processor.decode(
                    tokens, skip_special_tokens=True, return_timestamps=return_timestamps or None,
                    time_offset=output["meta"]["time_offset"], **decode_kwargs,
                )
                for tokens, output in zip(answers, model_outputs)
            ]
            if not return_timestamps:
                return {"text": " ".join(text.strip() for text in decoded if text.strip())}
            chunks = [chunk for window in decoded for chunk in window["chunks"]]
            return {"text": " ".join(window["text"] for window in decoded if window["text"]), "chunks": chunks}
        messages, records = meta["messages"], []
        for tokens in windows[0]:
            if return_type == ReturnType.TENSORS:
                records.append({"input_text": messages, "generated_token_ids": tokens})
                continue
            reply = self.tokenizer.decode(tokens, skip_special_tokens=skip_special_tokens, **decode_kwargs)
            if return_type == ReturnType.NEW_TEXT:
                generated = reply
            elif meta["continue"]:  # the reply continues the final message, as in ImageTextToTextPipeline
                generated = messages[:-1] + [{**messages[-1], "content": _continued(messages[-1]["content"], reply)}]
            else:
                generated = messages + [{"role": "assistant", "content": reply}]
            records.append({"input_text": messages, "generated_text": generated})
        return records

    def _until_stop(self, tokens: torch.Tensor) -> torch.Tensor:
        stops = [index for index, token in enumerate(tokens.tolist()) if token in self._stop_ids]
        return tokens[: stops[0]] if stops else tokens

    def stream(self, inputs, **kwargs):
        """Generates the reply to ONE conversation (or task request) in a background thread and yields its text as
        it comes: `for piece in pipe.stream(messages, max_new_tokens=128): print(piece, end="")`."""
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


def _numbered_error(index: int, error: Exception) -> Exception:
    """The error of input `index`, of the same type, with a message that names the input."""
    message = f"Input {index}: {error}"
    try:
        return type(error)(message)
    except Exception:  # an exception type whose constructor takes other arguments
        return ValueError(message)


def _continued(content, reply: str):
    """The content of a final (prefilled) message with the reply appended, as ImageTextToTextPipeline does it."""
    if isinstance(content, str):
        return content + reply
    last = content[-1] if content else None
    if isinstance(last, Mapping) and isinstance(last.get("text"), str):
        return list(content[:-1]) + [{**last, "text": last["text"] + reply}]
    return list(content) + [{"type": "text", "text": reply}]


__all__ = ["AudioChatPipeline", "DefaultCheckpoint"]
