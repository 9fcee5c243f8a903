# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""Fast (🤗 tokenizers) tokenizer for Qwen-Audio, built from the released `qwen.tiktoken`."""

import functools
import os

from tokenizers import AddedToken, Tokenizer, normalizers
from transformers import PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import TikTokenConverter
from transformers.utils import logging


logger = logging.get_logger(__name__)

VOCAB_FILES_NAMES = {"vocab_file": "qwen.tiktoken", "tokenizer_file": "tokenizer.json"}

# Qwen's pre-tokenization pattern: unlike tiktoken's cl100k pattern (the converter's default) digits are split
# one by one (`\p{N}` instead of `\p{N}{1,3}`).
QWEN_PRETOKENIZE_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

ENDOFTEXT_TOKEN = "<|endoftext|>"
IM_START_TOKEN = "<|im_start|>"
IM_END_TOKEN = "<|im_end|>"
AUDIO_START_TOKEN = "<audio>"
AUDIO_END_TOKEN = "</audio>"
AUDIO_PAD_TOKEN = "[[[AUDIO:modality]]]"

# Audio languages known to the base model, in the order of their ids.
AUDIO_LANGUAGES = ("en", "zh", "de", "es", "ko", "fr", "ja", "it")


def qwen_audio_special_tokens() -> list[str]:
    """
    Every special token of Qwen-Audio in id order. The first one gets the id right after the BPE ranks (151643 for
    the released vocabulary). The order is what the released checkpoints were trained with, so it must not change.
    """
    chat_tokens = [ENDOFTEXT_TOKEN, IM_START_TOKEN, IM_END_TOKEN] + [f"<|extra_{i}|>" for i in range(205)]
    audio_tokens = [
        AUDIO_PAD_TOKEN,
        "<|startoftranscript|>",
        "<|startofanalysis|>",
        "<|translate|>",
        "<|transcribe|>",
        "<|caption|>",
        "<|keyword|>",
        "<|unknown|>",
        *[f"<|{language}|>" for language in AUDIO_LANGUAGES],
        "<|zh_tr|>",
        "<|notimestamps|>",
        "<|sil|>",
        "<|timestamps|>",
        *[f"<|{step * 0.01:.2f}|>" for step in range(3001)],
        "<|caption_audiocaps|>",
        "<|caption_clotho|>",
        "<|audioset_ontology|>",
        "<|caption_plain|>",
        "<|itn|>",
        "<|wo_itn|>",
        "<|startofentityvalue|>",
        "<|endofentityvalue|>",
        "<|startofentitytype|>",
        "<|endofentitytype|>",
        "<|named_entity_recognition|>",
        "<|audio_grounding|>",
        "<|startofword|>",
        "<|endofword|>",
        "<|delim|>",
        "<|emotion_recognition|>",
        "<|music_description|>",
        "<|note_analysis|>",
        "<|pitch|>",
        *[f"<|midi_pitch_{pitch}|>" for pitch in range(128)],
        "<|velocity|>",
        *[f"<|midi_velocity_{velocity}|>" for velocity in range(128)],
        "<|sonic|>",
        "<|instrument|>",
        "<|speaker_meta|>",
        "<|song_meta|>",
        "<|question|>",
        "<|answer|>",
        "<|choice|>",
        "<|scene|>",
        "<|event|>",
        "<|vocal_classification|>",
        "<|speech_understanding|>",
        "<|scenario|>",
        "<|action|>",
        "<|entities|>",
        "<|speech_edit|>",
        AUDIO_START_TOKEN,
        AUDIO_END_TOKEN,
    ]
    return chat_tokens + audio_tokens


@functools.lru_cache(maxsize=4)
def _converted_backend_json(vocab_file: str, size: int, mtime_ns: int) -> str:
    # Converting 151k BPE ranks into merges takes seconds; AutoTokenizer and AutoProcessor on the same released
    # folder would otherwise do it twice. The cache key includes size and mtime so an edited file is re-read.
    converter = TikTokenConverter(vocab_file=vocab_file, pattern=QWEN_PRETOKENIZE_PATTERN)
    backend = converter.converted()
    # The original normalises every input to NFC before encoding.
    backend.normalizer = normalizers.NFC()
    special_tokens = qwen_audio_special_tokens()
    first_special_id = backend.get_vocab_size()
    backend.add_special_tokens(
        [AddedToken(token, special=True, normalized=False, single_word=False) for token in special_tokens]
    )
    # Ids are assigned in insertion order right after the BPE ranks; verify rather than trust it.
    if backend.token_to_id(AUDIO_END_TOKEN) != first_special_id + len(special_tokens) - 1:
        raise ValueError(f"{vocab_file} did not produce the Qwen-Audio special token ids; is it the released file?")
    return backend.to_str()


def build_backend_tokenizer_from_tiktoken(vocab_file: str | os.PathLike) -> Tokenizer:
    """
    Builds the 🤗 tokenizers backend equivalent to the original tiktoken encoding: byte-level BPE from the ranks of
    `qwen.tiktoken` (transformers' `TikTokenConverter`), Qwen's split pattern, NFC normalisation and every special
    token of the original with its original id.
    """
    vocab_file = os.fspath(vocab_file)
    if not os.path.isfile(vocab_file):
        raise FileNotFoundError(f"Qwen-Audio vocabulary file not found: {vocab_file}")
    stat = os.stat(vocab_file)
    return Tokenizer.from_str(_converted_backend_json(os.path.realpath(vocab_file), stat.st_size, stat.st_mtime_ns))


class QwenAudioTokenizerFast(PreTrainedTokenizerFast):
    """
    Qwen-Audio tokenizer backed by 🤗 tokenizers.

    Loads either a native `tokenizer.json` or the released `qwen.tiktoken` (converted on the fly). Special tokens
    written inside the text (`<|en|>`, `<|0.54|>`, `<audio>`, ...) are recognised as in the original; anything that
    only looks like one (`<|30.01|>`) is plain text. Decoding replaces invalid UTF-8 with U+FFFD like the original's
    `errors="replace"`.

    Args:
        vocab_file (`str`, *optional*):
            Path to the released `qwen.tiktoken` (base64 token, rank per line).
        tokenizer_file (`str`, *optional*):
            Path to a `tokenizer.json` written by `save_pretrained`.
        eos_token (`str`, *optional*, defaults to `"<|endoftext|>"`):
            End of sequence (the original's `eod_id`).
        pad_token (`str`, *optional*, defaults to `"<|endoftext|>"`):
            Padding token, as in the original's fine-tuning recipes.
        padding_side (`str`, *optional*, defaults to `"left"`):
            Left padding so that batched generation continues right after each prompt.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]
    padding_side = "left"

    def __init__(
        self,
        vocab_file=None,
        tokenizer_file=None,
        tokenizer_object=None,
        eos_token=ENDOFTEXT_TOKEN,
        pad_token=ENDOFTEXT_TOKEN,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        **kwargs,
    ):
        # The released folder names the remote-code class; it must not be written back into native files.
        kwargs.pop("auto_map", None)
        kwargs.pop("tokenizer_class", None)
        if tokenizer_object is None and (tokenizer_file is None or not os.path.isfile(tokenizer_file)):
            if vocab_file is None:
                raise ValueError("QwenAudioTokenizerFast needs a `tokenizer.json` or the released `qwen.tiktoken`.")
            tokenizer_object = build_backend_tokenizer_from_tiktoken(vocab_file)
        if tokenizer_object is not None:
            # Hand the backend over directly: passing it as `tokenizer_object` would deep-copy 151k merges.
            self._tokenizer = tokenizer_object
        else:
            self._tokenizer = Tokenizer.from_file(tokenizer_file)
        super().__init__(
            vocab_file=vocab_file,
            eos_token=eos_token,
            pad_token=pad_token,
            padding_side=padding_side,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **kwargs,
        )
        self.audio_start_token = AUDIO_START_TOKEN
        self.audio_end_token = AUDIO_END_TOKEN
        self.audio_pad_token = AUDIO_PAD_TOKEN
        self.audio_start_token_id = self.convert_tokens_to_ids(AUDIO_START_TOKEN)
        self.audio_end_token_id = self.convert_tokens_to_ids(AUDIO_END_TOKEN)
        self.audio_pad_token_id = self.convert_tokens_to_ids(AUDIO_PAD_TOKEN)
        self.im_start_token_id = self.convert_tokens_to_ids(IM_START_TOKEN)
        self.im_end_token_id = self.convert_tokens_to_ids(IM_END_TOKEN)

    @classmethod
    def convert_to_native_format(cls, trust_remote_code=False, **kwargs):
        # transformers would otherwise unpack `tokenizer.json` into vocab/merges for classes with their own
        # `__init__`; ours reads the serialized backend (or converts `qwen.tiktoken`) itself.
        return kwargs


__all__ = ["QwenAudioTokenizerFast", "build_backend_tokenizer_from_tiktoken", "qwen_audio_special_tokens"]
