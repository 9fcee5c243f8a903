# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The `audio-chat` pipeline: Qwen-Audio(-Chat) conversations and task requests on transformers' `Pipeline` machinery
(batching, `num_workers`, generators and datasets as every pipeline has them).

```python
>>> import transformers_qwen_audio  # registers "audio-chat"
>>> from transformers import pipeline

>>> pipe = pipeline("audio-chat", model="Qwen/Qwen-Audio-Chat")
>>> messages = [{"role": "user", "content": [
...     {"type": "audio", "path": "1272-128104-0000.flac"}, {"type": "text", "text": "What does the person say?"}]}]
>>> pipe(messages, max_new_tokens=64)
[{'input_text': [...], 'generated_text': [..., {'role': 'assistant', 'content': 'The person says: ...'}]}]
>>> pipe(messages + [{"role": "assistant", "content": "The person says:"}])  # continued (prefill), not a new turn
>>> pipe([messages, other_messages], batch_size=2)  # one list of results per conversation
>>> pipe(KeyDataset(dataset, "messages"), batch_size=8)  # lazily, as with every pipeline
>>> pipe(audio="speech.flac", text="What is that sound?")  # the any-to-any form, same as `prompt=`
>>> pipe("speech.flac", task="transcribe", language="en", return_timestamps="word")
{'text': 'mister quilter is ...', 'chunks': [{'text': 'mister', 'timestamp': (0.0, 0.41)}, ...]}
```

`return_timestamps="word"` gives one chunk per word, `True` (or `"segment"`) one per segment (runs of words cut at
silences and at 30 s windows), as the ASR pipeline means them. Long audio: `long_audio="chunk"` answers a task per
30 s window (a `ChunkPipeline`) with timestamps on the recording's time line; `"truncate"` keeps the first 30 s.

Base or chat checkpoint (it decides how task requests are written): `chat_format="raw"` or `"chatml"` (argument of
`pipeline(...)` or of the call), else the processor's `chat_format`, else the checkpoint's
`generation_config.chat_format`; unknown means a chat checkpoint, with a warning.

Download and file policy: `{"type": "audio", "url": ...}` parts are only fetched with `allow_urls=True`, and
`<audio>PATH</audio>` written in a message's text is refused unless `allow_audio_paths_in_text=True` (the original's
format; never for text from untrusted users, since the text would decide which local file is read).

Bad inputs: an error names the input's index in the call (`"Input 1: Message 0 has unknown role 'human'..."`). With
`errors="return"` the other inputs are still answered and a failed one gives `{"error": message}` in place of its
result (inside a one-element list for a conversation). Generation errors always raise.

Streaming: `pipe.stream(messages, max_new_tokens=...)` yields the reply's text as it is generated.
"""

import os
import threading
from collections.abc import Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import GenerationConfig, TextIteratorStreamer
from transformers.pipelines.base import ChunkPipeline
from transformers.pipelines.image_text_to_text import ReturnType
from transformers.pipelines.pt_utils import PipelineChunkIterator, PipelineIterator, PipelinePackIterator
from transformers.utils import logging
from transformers.utils.chat_template_utils import Chat, is_valid_message

from .audio_io import QWEN_AUDIO_SAMPLING_RATE, is_single_clip
from .conversation import is_conversation, is_message, load_clip, validate_conversation
from .processing_qwen_audio import CHAT_FORMATS, MAX_AUDIO_SECONDS, TIMESTAMP_MODES, split_into_windows


logger = logging.get_logger(__name__)

DEFAULT_MODEL = "Qwen/Qwen-Audio-Chat"
ERROR_MODES = ("raise", "return")


class DefaultCheckpoint(os.PathLike):
    """
    The task's default model, registered as a path-like rather than a string so that `pipeline("audio-chat")` hands
    it to `AudioChatPipeline` unloaded: the pipeline then loads it itself and, without network, says so plainly.
    """

    def __fspath__(self) -> str:
        return DEFAULT_MODEL

    __str__ = __repr__ = __fspath__


def load_checkpoint(name: str, dtype="auto", device_map=None, is_default: bool = False):
    """Model and processor of a checkpoint (local folder, native or released layout, or Hub repo id)."""
    from transformers import AutoModelForCausalLM, AutoProcessor

    try:
        return AutoModelForCausalLM.from_pretrained(name, dtype=dtype, device_map=device_map), AutoProcessor.from_pretrained(name)
    except OSError as error:
        if is_default:
            raise OSError(
                f"pipeline('audio-chat') without `model=` uses {name} from the Hugging Face Hub, which could not be "
                f"loaded (no network and no cached copy?). Pass `model=` a local checkpoint folder, or download "
                f"{name} first (`huggingface-cli download {name}`). Cause: {' '.join(str(error).split())[:300]}"
            ) from None
        raise


class _NumberedInputs:
    """The inputs with their index, so that an error names its input (a class, to stay picklable for workers)."""

    def __init__(self, inputs):
        self.inputs = inputs

    def __iter__(self):
        return enumerate(self.inputs)


def _with_message(error: Exception, message: str) -> Exception:
    try:
        return type(error)(message)
    except Exception:  # an exception type whose constructor takes other arguments
        return ValueError(message)


def _as_chat(item):
    """A conversation as transformers' `Chat` (so that it is not taken for a batch); anything else unchanged. A
    conversation the `Chat` class would refuse stays a list: `preprocess` validates it and names what is wrong."""
    if is_conversation(item) and all(is_valid_message(message) for message in item):
        return Chat(list(item))
    return item


class AudioChatPipeline(ChunkPipeline):
    """
    Conversations with Qwen-Audio-Chat (any number of turns and clips, optional system message, a final assistant
    message continued) and task requests (`task="transcribe"`, `"translate"`, `"caption"`, ...; `prompt=` or
    `text=` for a question) on base and chat checkpoints, batched with left padding so that each reply is exactly
    the one its input gets alone. See the module docstring for examples and policies.

    Generation stops at the checkpoint's end ids plus `<|im_end|>`, `<|endoftext|>` and `<|im_start|>` (as the
    original's `chat()`), with at most 256 new tokens unless the checkpoint's generation config says otherwise.

    Pipeline arguments (at construction or per call), besides generation parameters (`max_new_tokens`, ...):
        chat_format (`str`, *optional*): `"chatml"` (chat checkpoint) or `"raw"` (base checkpoint).
        long_audio (`str`, *optional*): `"truncate"` or `"chunk"`; defaults to the processor's `long_audio`.
        sampling_rate (`int`, *optional*): rate of raw arrays passed without one (default 16000).
        allow_urls (`bool`, *optional*, defaults to `False`): whether http(s) audio sources may be downloaded.
        allow_audio_paths_in_text (`bool`, *optional*, defaults to `False`): read `<audio>PATH</audio>` in text.
        continue_final_message (`bool`, *optional*): continue a final assistant message (the default when the
            conversation ends with one) rather than start a new reply.
        errors (`str`, *optional*, defaults to `"raise"`): `"return"` gives `{"error": ...}` for a failed input.
    """

    # Optional rather than required: a loaded model may come without its processor; `__init__` then loads it.
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
            kwargs["processor"] = kwargs.get("processor") or processor
        super().__init__(model, *args, **kwargs)
        if self.processor is None:
            self.processor = self._load_processor_of_model()
        if not hasattr(self.processor, "apply_task_request"):
            raise TypeError(f"The audio-chat pipeline needs a QwenAudioProcessor, got {type(self.processor).__name__}.")
        self.tokenizer = self.processor.tokenizer
        self.feature_extractor = self.processor.feature_extractor
        self._generation_defaults["pad_token_id"] = self.tokenizer.pad_token_id
        self.chat_format = (
            chat_format
            or getattr(self.processor, "chat_format", None)
            or getattr(self.model.generation_config, "chat_format", None)
        )
        if self.chat_format is None:
            logger.warning(
                "The checkpoint does not say whether it is a chat or a base model; task requests are written for a "
                "chat model (Qwen-Audio-Chat). Pass `chat_format='raw'` for a base Qwen-Audio checkpoint."
            )
            self.chat_format = "chatml"
        if self.chat_format not in CHAT_FORMATS:
            raise ValueError(f"`chat_format` must be one of {CHAT_FORMATS}, got {self.chat_format!r}.")
        model_eos = self.model.generation_config.eos_token_id
        model_eos = [] if model_eos is None else [model_eos] if isinstance(model_eos, int) else list(model_eos)
        self._stop_ids = list(dict.fromkeys(model_eos + self.processor.chat_stop_token_ids))

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
            raise ValueError(f"Could not load the processor of {source!r} ({error}); pass `processor=` explicitly.") from None

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
        allow_audio_paths_in_text=None,
        continue_final_message=None,
        errors=None,
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
        if return_timestamps not in TIMESTAMP_MODES:
            raise ValueError(f"`return_timestamps` must be False, 'word', True or 'segment', got {return_timestamps!r}.")
        if chat_format is not None and chat_format not in CHAT_FORMATS:
            raise ValueError(f"`chat_format` must be one of {CHAT_FORMATS}, got {chat_format!r}.")
        if errors is not None and errors not in ERROR_MODES:
            raise ValueError(f"`errors` must be one of {ERROR_MODES}, got {errors!r}.")
        preprocess_params = {
            name: value
            for name, value in dict(
                prompt=prompt, task=task, language=language, output_language=output_language,
                return_timestamps=return_timestamps, system_prompt=system_prompt, chat_format=chat_format,
                long_audio=long_audio, sampling_rate=sampling_rate, allow_urls=allow_urls,
                allow_audio_paths_in_text=allow_audio_paths_in_text,
                continue_final_message=continue_final_message, errors=errors,
            ).items()
            if value is not None
        }
        # As in ImageTextToTextPipeline; what is left over is a generation parameter (`do_sample`, `streamer`, ...).
        generate_kwargs = {**(generate_kwargs or {}), **kwargs}
        if max_new_tokens is not None:
            if "max_new_tokens" in generate_kwargs:
                raise ValueError("`max_new_tokens` is given twice: as an argument and in `generate_kwargs`.")
            generate_kwargs["max_new_tokens"] = max_new_tokens
        if stop_sequence is not None:
            generate_kwargs["stop_strings"] = [stop_sequence] if isinstance(stop_sequence, str) else stop_sequence
            generate_kwargs["tokenizer"] = self.processor.tokenizer
        forward_params = {"generate_kwargs": generate_kwargs} if generate_kwargs else {}

        postprocess_params = {}
        if return_full_text is not None and return_type is None:
            if return_tensors:
                raise ValueError("`return_full_text` and `return_tensors` are mutually exclusive.")
            return_type = ReturnType.FULL_TEXT if return_full_text else ReturnType.NEW_TEXT
        elif return_tensors and return_type is None:
            return_type = ReturnType.TENSORS
        for name, value in dict(
            return_type=return_type, return_timestamps=return_timestamps, skip_special_tokens=skip_special_tokens,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
        ).items():
            if value is not None:
                postprocess_params[name] = value
        return preprocess_params, forward_params, postprocess_params

    def __call__(self, inputs=None, text=None, audio=None, **kwargs):
        """
        Answers conversation(s) or task requests; batching (`batch_size`), `num_workers`, generators and datasets
        as in every transformers pipeline.

        Args:
            inputs:
                - a conversation: a list of `{"role", "content"}` messages (see `conversation.py`); or a list, a
                  generator, or a dataset (e.g. `KeyDataset`) of them;
                - an audio clip (path, array, `{"array", "sampling_rate"}`, bytes), or a list, generator or dataset
                  of clips, with `task=` or `prompt=`; or `{"audio": clip, "text": question}` dicts.
            text: a conversation (or list of them) as in `image-text-to-text`; with `audio`, the question asked.
            audio: clip(s) of the any-to-any form `pipe(audio=clip, text="question")`.
            prompt (`str`, *optional*): the question asked about each clip.
            task (`str`, *optional*): one of `task_prompts.supported_tasks()`.
            language / output_language (`str`, *optional*): spoken language / language of the answer.
            return_timestamps (`bool` or `str`, *optional*): `"word"` (word chunks) or `True` (segment chunks).
            system_prompt (`str`, *optional*): system message of a task request on a chat checkpoint.
            return_full_text (`bool`, *optional*, defaults to `True`): the conversation with the reply, or the reply.
            return_tensors (`bool`, *optional*): the new token ids instead of text.
            **kwargs: the pipeline arguments of the class docstring and generation parameters.

        Return:
            For a conversation: a list (one entry per returned sequence) of `{"input_text", "generated_text"}`. For
            a task request: `{"text"}`, plus `"chunks": [{"text", "timestamp": (start, end)}]` with timestamps. A
            list, generator or dataset gives one such result per input.
        """
        if audio is not None:
            if inputs is not None:
                raise ValueError("Give the audio once: as `inputs` with `task=`/`prompt=`, or as `audio=`.")
            if is_single_clip(audio):
                inputs = {"audio": audio, "text": text}
            else:
                clips = list(audio)
                texts = list(text) if isinstance(text, (list, tuple)) else [text] * len(clips)
                if len(texts) != len(clips):
                    raise ValueError(f"Got {len(clips)} clips but {len(texts)} texts: give one text per clip, or one.")
                inputs = [{"audio": clip, "text": question} for clip, question in zip(clips, texts)]
        elif text is not None:
            if inputs is not None:
                raise ValueError("Give the input once: positionally or as `text=`.")
            inputs = [{"role": "user", "content": text}] if isinstance(text, str) else text
        if inputs is None:
            raise ValueError("Nothing to do: pass a conversation, a list of conversations, or audio with a task/prompt.")
        if is_message(inputs) or is_conversation(inputs):
            conversation = [inputs] if is_message(inputs) else list(inputs)
            try:
                chat = Chat(conversation)
            except ValueError:
                validate_conversation(conversation)  # says what is wrong, where `Chat` only says it is
                raise
            return super().__call__(chat, **kwargs)
        if isinstance(inputs, (list, tuple)):
            if len(inputs) == 0:
                raise ValueError("Got an empty list of inputs.")
            if is_single_clip(inputs):  # a list of samples is one clip, not a batch
                return super().__call__(np.asarray(inputs, dtype=np.float32), **kwargs)
            inputs = [_as_chat(item) for item in inputs]
        elif hasattr(inputs, "__next__") and hasattr(inputs, "send"):  # a generator: stays lazy
            inputs = (_as_chat(item) for item in inputs)
        return super().__call__(inputs, **kwargs)

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        # ChunkPipeline's, with inputs numbered (errors name them) and our collate (clips concatenated).
        if "TOKENIZERS_PARALLELISM" not in os.environ:
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
        if num_workers > 1:
            logger.warning("A ChunkPipeline preprocesses in one worker at most: using `num_workers=1`.")
            num_workers = 1
        rows = PipelineChunkIterator(_NumberedInputs(inputs), self._preprocess_numbered, preprocess_params)
        dataloader = DataLoader(rows, num_workers=num_workers, batch_size=batch_size, collate_fn=self._collate)
        model_iterator = PipelinePackIterator(dataloader, self.forward, forward_params, loader_batch_size=batch_size)
        model_iterator.loader_batch_size = batch_size  # `_collate` batches even one row: always unbatch
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

    def _preprocess_numbered(self, numbered, errors="raise", **preprocess_params):
        index, item = numbered
        try:
            yield from self.preprocess(item, **preprocess_params)
        except (ValueError, TypeError, OSError) as error:
            message = f"Input {index}: {error}"
            if errors == "raise":
                raise _with_message(error, message) from None
            failure = {"error": message}
            if isinstance(item, Chat) or is_conversation(item) or is_message(item):
                failure = [{"input_text": getattr(item, "messages", item), **failure}]
            yield {"is_last": True, "meta": {"error": failure}}

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
        allow_urls=False,
        allow_audio_paths_in_text=False,
        continue_final_message=None,
    ):
        """Yields the model rows of one input (one per 30 s window of a chunked task request), each with `meta`."""
        long_audio = long_audio or self.processor.long_audio
        processor_kwargs = {
            "sampling_rate": sampling_rate or QWEN_AUDIO_SAMPLING_RATE, "allow_urls": allow_urls, "long_audio": long_audio,
        }
        if isinstance(inputs, Chat) or is_message(inputs) or is_conversation(inputs):
            if task is not None or prompt is not None or return_timestamps:
                raise ValueError("`task`, `prompt` and `return_timestamps` apply to audio; a conversation says it all.")
            messages = inputs.messages if isinstance(inputs, Chat) else [inputs] if is_message(inputs) else list(inputs)
            if continue_final_message is None:  # as ImageTextToTextPipeline: a final assistant message is a prefill
                continue_final_message = messages[-1].get("role") == "assistant"
            row = self.processor.apply_chat_template(
                messages,
                add_generation_prompt=not continue_final_message,
                continue_final_message=continue_final_message,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
                processor_kwargs={**processor_kwargs, "allow_audio_paths_in_text": allow_audio_paths_in_text},
            )
            yield {**row, "is_last": True, "meta": {"messages": messages, "continue": continue_final_message}}
            return
        audio = inputs
        if isinstance(inputs, Mapping) and "text" in inputs:  # {"audio": clip, "text": question}
            if inputs.get("text") is not None:
                if prompt is not None:
                    raise ValueError("Give the question once: as `text` or as `prompt=`.")
                prompt = inputs["text"]
            audio = inputs.get("audio")
        if task is None and prompt is None:
            raise ValueError(
                f"Got {type(inputs).__name__} without `prompt=` or `task=`: audio needs a question or a task; "
                "a conversation is a list of {'role', 'content'} messages."
            )
        waveform = load_clip(audio, "Audio", sampling_rate=sampling_rate, allow_urls=allow_urls)
        # "truncate": the processor keeps the first 30 s and warns.
        windows = split_into_windows(waveform) if long_audio == "chunk" else [waveform]
        for number, window in enumerate(windows):
            row = self.processor.apply_task_request(
                window, task=task, language=language, timestamps=bool(return_timestamps), prompt=prompt,
                output_language=output_language, chat_format=chat_format or self.chat_format,
                system_prompt=system_prompt, return_tensors="pt", long_audio="truncate",
            )
            yield {**row, "is_last": number == len(windows) - 1, "meta": {"time_offset": number * float(MAX_AUDIO_SECONDS)}}

    def _collate(self, rows: list[dict]) -> dict:
        """Left-pads the rows' ids (the tokenizer's `pad`) and concatenates their clips in row order (= span order);
        rows of failed inputs only carry their `meta`."""
        valid = [row for row in rows if "input_ids" in row]
        batch = {}
        if valid:
            ids = [{key: row[key][0] for key in ("input_ids", "attention_mask")} for row in valid]
            batch = dict(self.tokenizer.pad(ids, padding_side="left", return_tensors="pt"))
        with_audio = [row for row in valid if "input_features" in row]
        if with_audio:
            dtype = self.dtype if self.dtype is not None and self.dtype.is_floating_point else torch.float32
            batch["input_features"] = torch.cat([row["input_features"] for row in with_audio]).to(dtype)
            batch["feature_attention_mask"] = torch.cat([row["feature_attention_mask"] for row in with_audio])
        return {**batch, "is_last": [row["is_last"] for row in rows], "meta": [row["meta"] for row in rows]}

    def _forward(self, model_inputs, generate_kwargs=None):
        meta, is_last = model_inputs.pop("meta"), model_inputs.pop("is_last")
        valid = [index for index, row_meta in enumerate(meta) if "error" not in row_meta]
        new_tokens = torch.empty((len(meta), 1, 0), dtype=torch.long)
        if valid:
            generate_kwargs = dict(generate_kwargs or {})
            user_config = generate_kwargs.get("generation_config")
            overrides = {}
            if "eos_token_id" not in {**self._generate_kwargs, **generate_kwargs} and getattr(user_config, "eos_token_id", None) is None:
                overrides["eos_token_id"] = self._stop_ids
            generate_kwargs = self._prepare_generate_kwargs(generate_kwargs, **overrides)
            if generate_kwargs.get("streamer") is not None and len(valid) > 1:
                raise ValueError("A `streamer` follows one sequence: call with one input and batch_size=1.")
            prompt_length = model_inputs["input_ids"].shape[1]
            generated = self.model.generate(**model_inputs, **generate_kwargs)[:, prompt_length:]
            generated = generated.reshape(len(valid), -1, generated.shape[-1])  # [rows, num_return_sequences, T]
            new_tokens = torch.full((len(meta), *generated.shape[1:]), self.tokenizer.pad_token_id, dtype=torch.long)
            new_tokens[valid] = generated
        return {"new_tokens": new_tokens, "is_last": is_last, "meta": meta}

    def postprocess(
        self,
        model_outputs,
        return_type=ReturnType.FULL_TEXT,
        return_timestamps=None,
        skip_special_tokens=True,
        clean_up_tokenization_spaces=None,
    ):
        for output in model_outputs:
            if "error" in output["meta"]:
                return output["meta"]["error"]
        # One list of candidates (num_return_sequences) per window; the tokens after a stop are batch padding.
        windows = [[self._until_stop(tokens) for tokens in output["new_tokens"][0]] for output in model_outputs]
        decode_kwargs = {}
        if clean_up_tokenization_spaces is not None:
            decode_kwargs["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        meta = model_outputs[0]["meta"]
        if "messages" not in meta:  # a task request: one answer per window, read on the recording's time line
            first = [candidates[0] for candidates in windows]
            if return_type == ReturnType.TENSORS:
                return {"generated_token_ids": first}
            if not return_timestamps:
                texts = [self.processor.decode(tokens, skip_special_tokens=True, **decode_kwargs).strip() for tokens in first]
                return {"text": " ".join(text for text in texts if text)}
            decoded = [
                self.processor.decode(tokens, return_timestamps=return_timestamps, time_offset=output["meta"]["time_offset"], **decode_kwargs)
                for tokens, output in zip(first, model_outputs)
            ]
            return {
                "text": " ".join(item["text"] for item in decoded if item["text"]),
                "chunks": [chunk for item in decoded for chunk in item["chunks"]],
            }
        messages = meta["messages"]
        records = []
        for tokens in windows[0]:
            if return_type == ReturnType.TENSORS:
                records.append({"input_text": messages, "generated_token_ids": tokens})
                continue
            reply = self.tokenizer.decode(tokens, skip_special_tokens=skip_special_tokens, **decode_kwargs)
            if return_type == ReturnType.NEW_TEXT:
                generated = reply
            elif meta["continue"]:  # the reply continues the final message
                generated = messages[:-1] + [{**messages[-1], "content": _continued(messages[-1]["content"], reply)}]
            else:
                generated = messages + [{"role": "assistant", "content": reply}]
            records.append({"input_text": messages, "generated_text": generated})
        return records

    def _until_stop(self, tokens: torch.Tensor) -> torch.Tensor:
        stops = [index for index, token in enumerate(tokens.tolist()) if token in self._stop_ids]
        return tokens[: stops[0]] if stops else tokens

    def stream(self, inputs, **kwargs):
        """
        Generates the reply to ONE conversation (or task request) in a background thread and yields its text as it
        comes: `for piece in pipe.stream(messages, max_new_tokens=128): print(piece, end="")`.
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


def _continued(content, reply: str):
    """The content of a final (prefilled) message with the reply appended, as ImageTextToTextPipeline does it."""
    if isinstance(content, str):
        return content + reply
    content = list(content)
    if content and isinstance(content[-1], Mapping) and isinstance(content[-1].get("text"), str):
        return content[:-1] + [{**content[-1], "text": content[-1]["text"] + reply}]
    return content + [{"type": "text", "text": reply}]


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


__all__ = ["AudioChatPipeline", "register_pipeline"]
