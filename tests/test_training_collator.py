"""QwenAudioCollator: label masking, clips in span order, right padding, dataset formats, malformed examples."""

import io

import numpy as np
import pytest
import soundfile
import torch
from processor_fixtures import decoded_runs

from transformers_qwen_audio.tiny_checkpoint import chirp
from transformers_qwen_audio.feature_extraction_qwen_audio import audio_span_length
from transformers_qwen_audio.training import IGNORE_INDEX, QwenAudioCollator


SAMPLING_RATE = 16000
TRANSCRIBE_PROMPT = "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"


@pytest.fixture(scope="module")
def tiny_dir(tiny_checkpoint_dir):
    return tiny_checkpoint_dir


@pytest.fixture(scope="module")
def processor(tiny_processor):
    return tiny_processor


@pytest.fixture(scope="module")
def collator(processor):
    return QwenAudioCollator(processor)


def tone(seconds: float, frequency: float = 440.0, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    time_axis = np.arange(int(seconds * sampling_rate)) / sampling_rate
    return (0.3 * np.sin(2 * np.pi * frequency * time_axis)).astype(np.float32)


def wav_bytes(waveform: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sampling_rate, format="WAV")
    return buffer.getvalue()


def trained_segments(tokenizer, input_ids: torch.Tensor, labels: torch.Tensor) -> list[str]:
    """The decoded runs of consecutive trainable positions of one row."""
    trained = labels != IGNORE_INDEX
    assert torch.equal(labels[trained], input_ids[trained])
    return decoded_runs(tokenizer, input_ids, trained)


def audio_chat(clip, question="What is that sound?", answer="A rising chirp."):
    return {
        "messages": [
            {"role": "user", "content": [{"type": "audio", "audio": clip}, {"type": "text", "text": question}]},
            {"role": "assistant", "content": answer},
        ]
    }


def test_only_assistant_replies_and_their_im_end_are_trained(processor, collator):
    example = {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": [{"type": "audio", "audio": chirp(0.5)}, {"type": "text", "text": "Hi?"}]},
            {"role": "assistant", "content": "A rising chirp."},
            {"role": "user", "content": "And again?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Still a chirp."}]},
        ]
    }
    batch = collator([example])
    segments = trained_segments(processor.tokenizer, batch["input_ids"][0], batch["labels"][0])
    assert segments == ["A rising chirp.<|im_end|>", "Still a chirp.<|im_end|>"]
    # The role header right before each reply is not trained.
    first_trained = int((batch["labels"][0] != IGNORE_INDEX).nonzero()[0])
    assert processor.tokenizer.decode(batch["input_ids"][0, :first_trained]).endswith("<|im_start|>assistant\n")


def test_full_sequence_loss_trains_everything_but_audio_and_padding(processor):
    collator = QwenAudioCollator(processor, completion_only_loss=False)
    batch = collator([audio_chat(chirp(0.5)), {"messages": [{"role": "user", "content": "x"}]}])
    input_ids, labels, attention_mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    audio_ids = {processor.audio_start_token_id, processor.audio_token_id, processor.audio_end_token_id}
    in_audio = torch.isin(input_ids, torch.tensor(sorted(audio_ids)))
    expected = torch.where(attention_mask.bool() & ~in_audio, input_ids, IGNORE_INDEX)
    assert torch.equal(labels, expected)
    assert processor.tokenizer.decode(input_ids[0][labels[0] != IGNORE_INDEX]).startswith("<|im_start|>system\n")


def test_multi_clip_and_text_only_rows_in_one_batch(processor, collator):
    clips = [chirp(0.5), tone(0.3, 440), tone(0.8, 880)]
    examples = [
        audio_chat(clips[0]),
        {"messages": [{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "Hello!"}]},
        {
            "messages": [
                {"role": "user", "content": [
                    {"type": "audio", "audio": clips[1]},
                    {"type": "audio", "audio": clips[2]},
                    {"type": "text", "text": "Which clip is higher?"},
                ]},
                {"role": "assistant", "content": "The second one."},
            ]
        },
    ]
    batch = collator(examples)
    # Clips in span order, row by row, with their own mel lengths.
    assert batch["input_features"].shape == (3, 80, 82)  # padded just past the longest clip (0.8 s), not to 30 s
    assert batch["feature_attention_mask"].sum(-1).tolist() == [len(clip) // 160 for clip in clips]
    starts_per_row = (batch["input_ids"] == processor.audio_start_token_id).sum(-1).tolist()
    assert starts_per_row == [1, 0, 2]
    audio_tokens_row_2 = int((batch["input_ids"][2] == processor.audio_token_id).sum())
    assert audio_tokens_row_2 == audio_span_length(len(clips[1])) + audio_span_length(len(clips[2])) - 4
    segments = [trained_segments(processor.tokenizer, ids, labels) for ids, labels in zip(batch["input_ids"], batch["labels"])]
    assert segments == [["A rising chirp.<|im_end|>"], ["Hello!<|im_end|>"], ["The second one.<|im_end|>"]]


def test_right_padding(processor, collator):
    batch = collator([audio_chat(chirp(0.5)), {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}])
    lengths = batch["attention_mask"].sum(-1)
    assert int(lengths[0]) == batch["input_ids"].shape[1] > int(lengths[1])
    short = int(lengths[1])
    assert batch["attention_mask"][1, :short].all() and not batch["attention_mask"][1, short:].any()
    assert (batch["input_ids"][1, short:] == processor.tokenizer.pad_token_id).all()
    assert (batch["labels"][1, short:] == IGNORE_INDEX).all()
    assert processor.tokenizer.decode(batch["input_ids"][1, :short]).startswith("<|im_start|>system")


def test_model_forward_on_a_collated_batch_gives_a_finite_loss(tiny_dir, collator):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    batch = collator([audio_chat(chirp(0.5)), audio_chat(tone(0.4), "Again?", "A tone.")])
    loss = model(**batch).loss
    assert torch.isfinite(loss) and loss.item() > 0


def test_audio_sources_paths_bytes_and_datasets_dicts(tmp_path, processor, collator):
    from datasets import Audio, Dataset

    waveform = tone(0.5)
    path = tmp_path / "tone.wav"
    soundfile.write(path, waveform, SAMPLING_RATE)
    resampled = {"array": tone(0.5, sampling_rate=8000), "sampling_rate": 8000}
    examples = [
        audio_chat(str(path)),
        audio_chat({"path": str(path)}),
        audio_chat({"bytes": wav_bytes(waveform), "path": "not-read.wav"}),  # datasets' Audio(decode=False)
        audio_chat(resampled),
        {"messages": [{"role": "user", "content": [{"type": "audio", "path": "tone.wav"}]},
                      {"role": "assistant", "content": "A tone."}]},
    ]
    batch = QwenAudioCollator(processor, audio_base_dir=tmp_path)(examples)
    assert batch["feature_attention_mask"].sum(-1).tolist() == [len(waveform) // 160] * 5
    assert torch.allclose(batch["input_features"][0], batch["input_features"][2])

    # A real `datasets` column, never decoded by `datasets` (no torchcodec needed).
    dataset = Dataset.from_dict(
        {"audio": [str(path)], "prompt": [TRANSCRIBE_PROMPT], "completion": ["a tone"]}
    ).cast_column("audio", Audio(decode=False))
    row = dataset[0]
    assert isinstance(row["audio"], dict) and "path" in row["audio"]
    batch = collator([row])
    assert trained_segments(processor.tokenizer, batch["input_ids"][0], batch["labels"][0]) == ["a tone<|endoftext|>"]


def test_decoded_clip_cache_gives_the_same_batches_and_decodes_each_file_once(tmp_path, processor, monkeypatch):
    from transformers_qwen_audio.training import collators

    paths = []
    for index, frequency in enumerate((330.0, 440.0, 550.0)):
        paths.append(tmp_path / f"tone{index}.wav")
        soundfile.write(paths[-1], tone(0.5, frequency), SAMPLING_RATE)
    examples = [audio_chat(str(paths[0])), audio_chat({"path": "tone1.wav", "bytes": None}), audio_chat(paths[2]),
                audio_chat({"bytes": wav_bytes(tone(0.5)), "path": "tone0.wav"})]  # bytes: never taken for tone0
    plain = QwenAudioCollator(processor, audio_base_dir=tmp_path)(examples)
    reads = []
    real_load_clip = collators.load_clip
    monkeypatch.setattr(collators, "load_clip", lambda clip, *a, **k: reads.append(clip) or real_load_clip(clip, *a, **k))
    cached = QwenAudioCollator(processor, audio_base_dir=tmp_path, decoded_clip_cache_mb=1)
    for _ in range(3):  # three epochs
        batch = cached(examples)
        for key in ("input_ids", "labels", "input_features", "feature_attention_mask"):
            assert torch.equal(batch[key], plain[key]), key
    # The three files once each; the bytes clip at every read (its name is no key for its samples).
    assert len(reads) == 3 + 3 and cached.clip_cache.hits == 6
    assert sum(isinstance(clip, dict) and clip.get("bytes") is not None for clip in reads) == 3
    with pytest.raises(ValueError, match="decoded_clip_cache_mb"):
        QwenAudioCollator(processor, decoded_clip_cache_mb=-1)


def test_decoded_clip_cache_keeps_to_its_budget_and_hands_out_read_only_clips():
    from transformers_qwen_audio.training.clip_cache import DecodedClipCache

    cache = DecodedClipCache(max_bytes=3 * 4000)  # room for three clips of 1,000 float32 samples
    for name in "abcd":
        cache.put(name, np.zeros(1000, np.float32))
    assert cache.bytes == 12000 and cache.get("a") is None and cache.get("b") is not None  # a, the oldest, went
    cache.put("e", np.zeros(1000, np.float32))  # b was just used: c goes
    assert cache.get("c") is None and cache.get("b") is not None
    huge = cache.put("huge", np.zeros(10000, np.float32))  # over the whole budget: handed back, not kept
    assert cache.get("huge") is None and cache.bytes == 12000
    with pytest.raises(ValueError):
        huge[0] = 1.0
    assert DecodedClipCache.key("x.wav", "/data") == "/data/x.wav"
    assert DecodedClipCache.key({"path": "/data/x.wav", "bytes": None}) == "/data/x.wav"
    assert DecodedClipCache.key({"path": "x.wav", "bytes": b"RIFF"}) is None
    assert DecodedClipCache.key("https://example.com/x.wav") is None
    assert DecodedClipCache.key({"array": np.zeros(4), "sampling_rate": 16000}) is None


def test_audios_column_fills_audio_parts_without_source(processor, collator):
    example = {
        "messages": [
            {"role": "user", "content": [{"type": "audio"}, {"type": "audio"}, {"type": "text", "text": "Compare."}]},
            {"role": "assistant", "content": "Same."},
        ],
        "audios": [tone(0.3), tone(0.6)],
    }
    batch = collator([example])
    assert batch["feature_attention_mask"].sum(-1).tolist() == [30, 60]


def test_base_model_prompt_completion(processor, collator):
    example = {"audio": tone(0.5), "prompt": TRANSCRIBE_PROMPT, "completion": "hello world"}
    batch = collator([example, {**example, "completion": "bye<|endoftext|>"}])
    tokenizer = processor.tokenizer
    prompt_end = tokenizer.decode(batch["input_ids"][0]).index(TRANSCRIBE_PROMPT)
    assert tokenizer.decode(batch["input_ids"][0]).startswith("<audio>")
    assert prompt_end > 0
    assert trained_segments(tokenizer, batch["input_ids"][0], batch["labels"][0]) == ["hello world<|endoftext|>"]
    # An eos already there is not doubled.
    assert trained_segments(tokenizer, batch["input_ids"][1], batch["labels"][1]) == ["bye<|endoftext|>"]


def test_conversational_prompt_completion_trains_the_completion_only(processor, collator):
    example = {
        "prompt": [
            {"role": "user", "content": [{"type": "audio", "audio": tone(0.3)}, {"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": "Earlier reply."},
            {"role": "user", "content": "Now?"},
        ],
        "completion": [{"role": "assistant", "content": "Now this."}],
    }
    batch = collator([example])
    assert trained_segments(processor.tokenizer, batch["input_ids"][0], batch["labels"][0]) == ["Now this.<|im_end|>"]


def test_max_length_never_splits_an_audio_span(processor, collator):
    long_example = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "x" * 40}, {"type": "audio", "audio": tone(0.5)}]},
            {"role": "assistant", "content": "ok"},
        ]
    }
    short_example = {
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": [{"type": "audio", "audio": tone(0.3)}]},
            {"role": "assistant", "content": "A"},
        ]
    }
    uncut = collator([long_example])["input_ids"][0].tolist()
    span_start = uncut.index(processor.audio_start_token_id)
    max_length = span_start + 5  # inside the first row's audio span
    batch = QwenAudioCollator(processor, max_length=max_length, pad_to_multiple_of=8)([long_example, short_example])
    lengths = batch["attention_mask"].sum(-1).tolist()
    # The cut moved to the start of the span and the clip it held is dropped; the other row keeps its clip.
    assert lengths[0] == span_start and batch["input_ids"].shape[1] % 8 == 0
    assert batch["input_ids"][0, :span_start].tolist() == uncut[:span_start]
    assert (batch["labels"][0] == IGNORE_INDEX).all()
    assert batch["feature_attention_mask"].sum(-1).tolist() == [len(tone(0.3)) // 160]
    assert trained_segments(processor.tokenizer, batch["input_ids"][1], batch["labels"][1]) == ["A<|im_end|>"]


@pytest.mark.parametrize(
    "example, message",
    [
        ({"text": "hello"}, "expected a `messages` conversation"),
        ("not a dict", "must be a dict"),
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"role": "user"}]}, "`role` and `content`"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "unknown role"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "starts with an assistant"),
        ({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "y"}]}, "string or a list"),
        ({"messages": [{"role": "user", "content": "x"}]}, "no assistant message"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "image": "a.png"}]},
                       {"role": "assistant", "content": "y"}]}, "unsupported part type"),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]},
                       {"role": "assistant", "content": "y"}]}, "has no source"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": None}]},
                       {"role": "assistant", "content": "y"}]}, "string `text`"),
        (audio_chat("/does/not/exist.wav"), "not found"),
        (audio_chat(np.zeros(100, dtype=np.float32)), "too short"),
        (audio_chat({"array": [0.0] * 1000}), "sampling_rate"),
        ({"prompt": "tags", "completion": [{"role": "assistant", "content": "x"}]}, "must both be strings"),
        ({"audio": [tone(0.3), tone(0.3)], "prompt": "<audio></audio>tags", "completion": "x"}, "1 <audio></audio> spans but 2"),
    ],
)
def test_malformed_examples_raise_value_error(collator, example, message):
    with pytest.raises(ValueError, match=message):
        collator([audio_chat(tone(0.3)), example])


# --- TRL's meanings of assistant_only_loss and completion_only_loss ------------------------------------------------


def chat_prompt_completion():
    return {
        "prompt": [
            {"role": "user", "content": [{"type": "audio", "audio": tone(0.3)}, {"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": "Earlier reply."},
            {"role": "user", "content": "Now?"},
        ],
        "completion": [{"role": "assistant", "content": "Now this."}],
    }


def test_completion_only_loss_trains_the_rendered_completion(processor):
    collator = QwenAudioCollator(processor, completion_only_loss=True, assistant_only_loss=False)
    batch = collator([chat_prompt_completion()])
    # TRL renders the prompt with the generation prompt: the completion is what follows it.
    assert trained_segments(processor.tokenizer, batch["input_ids"][0], batch["labels"][0]) == ["Now this.<|im_end|>\n"]
    # A conversation without a completion has nothing to restrict: every non-audio token is trained.
    everything = collator([audio_chat(tone(0.3))])
    audio = torch.isin(everything["input_ids"], torch.tensor([processor.audio_start_token_id, processor.audio_token_id, processor.audio_end_token_id]))
    assert torch.equal(everything["labels"] != IGNORE_INDEX, ~audio)


def test_assistant_only_loss_without_completion_only_loss(processor):
    collator = QwenAudioCollator(processor, completion_only_loss=False, assistant_only_loss=True)
    batch = collator([chat_prompt_completion(), audio_chat(tone(0.4))])
    assert [trained_segments(processor.tokenizer, ids, labels) for ids, labels in zip(batch["input_ids"], batch["labels"])] == [
        ["Earlier reply.<|im_end|>", "Now this.<|im_end|>"],
        ["A rising chirp.<|im_end|>"],
    ]


def test_neither_option_trains_every_token_of_a_prompt_completion_example(processor):
    collator = QwenAudioCollator(processor, completion_only_loss=False, assistant_only_loss=False)
    batch = collator([chat_prompt_completion()])
    decoded = processor.tokenizer.decode(batch["input_ids"][0][batch["labels"][0] != IGNORE_INDEX])
    assert decoded.startswith("<|im_start|>system") and decoded.endswith("Now this.<|im_end|>\n")


def test_typeless_audio_part_and_clips_column_in_prompt_completion(processor):
    example = {
        "prompt": [{"role": "user", "content": [{"path": None, "audio": None, "type": "audio"}, {"text": "Hi"}]}],
        "completion": [{"role": "assistant", "content": "A tone."}],
        "audios": [tone(0.5)],
    }
    batch = QwenAudioCollator(processor)([example])
    assert batch["feature_attention_mask"].sum(-1).tolist() == [50]
    assert trained_segments(processor.tokenizer, batch["input_ids"][0], batch["labels"][0]) == ["A tone.<|im_end|>"]


# --- clips that cannot be read: skipped and counted (training runs set max_bad_row_share) ---------------------------


def test_bad_clips_are_skipped_named_by_row_and_an_all_bad_batch_repeats_the_previous_one(processor):
    collator = QwenAudioCollator(processor, max_bad_row_share=0.05, return_example_rows=True)
    good = {**audio_chat(tone(0.3)), "source": "tones", "row": 3}
    missing = {**audio_chat("/does/not/exist.wav"), "source": "tones", "row": 7}
    batch = collator([good, missing])
    assert batch["example_rows"] == ["Source tones, row 3"] and batch["input_ids"].shape[0] == 1
    assert len(collator.skipped) == 1 and "Source tones, row 7" in collator.skipped[0]
    assert "exist.wav" in collator.skipped[0]
    # Every example bad: the previous batch again (the step keeps its place), still counted.
    again = collator([missing, missing])
    assert again["example_rows"] == ["Source tones, row 3"] and torch.equal(again["input_ids"], batch["input_ids"])
    assert len(collator.skipped) == 3
    # Past the share (5 % of at least MIN_ROWS_FOR_BAD_SHARE rows): stop with the list.
    with pytest.raises(ValueError, match=r"max_bad_row_share.*Source tones, row 7"):
        for _ in range(5):
            collator([missing])
    with pytest.raises(ValueError, match="Every example of the first batch.*row 7"):
        QwenAudioCollator(processor, max_bad_row_share=0.5)([missing])
