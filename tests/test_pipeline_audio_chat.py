"""The `audio-chat` pipeline against the original's greedy replies (real-vocabulary tiny Qwen-Audio-Chat)."""

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import pipeline

import transformers_qwen_audio  # noqa: F401  (registers "audio-chat")
from transformers_qwen_audio.pipeline_audio_chat import AudioChatPipeline, DEFAULT_MODEL
from transformers_qwen_audio.feature_extraction_qwen_audio import split_into_windows

RELEASED_FOLDER = "tiny_real_vocab_original_layout"
GREEDY_10 = {"min_new_tokens": 10, "max_new_tokens": 10, "do_sample": False}
SPEECH = "1272-128104-0000.flac"


def case_messages(case, audio_value):
    def content(query):
        return [
            {"type": "audio", "audio": audio_value(part["audio"])} if "audio" in part else {"type": "text", "text": part["text"]}
            for part in query
        ]

    messages = []
    for query, answer in case["history"] or []:
        messages += [{"role": "user", "content": content(query)}, {"role": "assistant", "content": answer}]
    return messages + [{"role": "user", "content": content(case["query"])}]


@pytest.fixture(scope="module")
def manifest(reference_dir):
    return json.loads((reference_dir / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def waveforms(reference_dir, manifest):
    stored = load_file(reference_dir / "audio_features.safetensors")
    return {info["file"]: stored[f"{key}.waveform_16k"] for key, info in manifest["audio"].items()}


@pytest.fixture(scope="module")
def released_pipe(reference_dir):
    return pipeline("audio-chat", model=str(reference_dir / RELEASED_FOLDER))


@pytest.fixture(scope="module")
def native_pipe(reference_dir, tmp_path_factory):
    from transformers_qwen_audio.convert import convert

    native = convert(reference_dir / RELEASED_FOLDER, tmp_path_factory.mktemp("native") / "qwen-audio-chat-tiny")
    return pipeline("audio-chat", model=str(native))


@pytest.fixture(scope="module")
def expected_replies(manifest, released_pipe):
    return [released_pipe.tokenizer.decode(case["greedy_new_tokens"], skip_special_tokens=True) for case in manifest["chat_cases"]]


def file_messages(manifest, reference_dir):
    return [case_messages(case, lambda name: str(reference_dir / "audio" / name)) for case in manifest["chat_cases"]]


# --- parity with the original ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case_index", range(3))
def test_chat_cases_released_layout_from_files(released_pipe, manifest, reference_dir, expected_replies, case_index):
    messages = file_messages(manifest, reference_dir)[case_index]
    result = released_pipe(messages, **GREEDY_10)
    assert len(result) == 1
    conversation = result[0]["generated_text"]
    assert conversation[:-1] == messages and result[0]["input_text"] == messages
    assert conversation[-1] == {"role": "assistant", "content": expected_replies[case_index]}


@pytest.mark.parametrize("case_index", range(3))
def test_chat_cases_native_layout_from_waveforms(native_pipe, manifest, waveforms, expected_replies, case_index):
    assert native_pipe.chat_format == "chatml"
    messages = case_messages(manifest["chat_cases"][case_index], lambda name: waveforms[name])
    reply = native_pipe(messages, return_full_text=False, **GREEDY_10)[0]["generated_text"]
    assert reply == expected_replies[case_index]


def test_batched_replies_equal_single_ones(released_pipe, manifest, reference_dir, expected_replies):
    conversations = file_messages(manifest, reference_dir)
    # Different lengths and clip counts in one batch, plus a batch size that leaves a partial last batch.
    for batch_size in (3, 2):
        results = released_pipe(conversations, batch_size=batch_size, return_full_text=False, **GREEDY_10)
        assert [result[0]["generated_text"] for result in results] == expected_replies


def test_batched_text_only_and_audio_conversations(released_pipe, manifest, reference_dir):
    text_only = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]
    with_audio = file_messages(manifest, reference_dir)[1]
    alone = [released_pipe(c, return_full_text=False, **GREEDY_10)[0]["generated_text"] for c in (text_only, with_audio)]
    together = released_pipe([text_only, with_audio], batch_size=2, return_full_text=False, **GREEDY_10)
    assert [result[0]["generated_text"] for result in together] == alone


def test_multi_turn_continuation(released_pipe, manifest, reference_dir, expected_replies):
    first = released_pipe(file_messages(manifest, reference_dir)[0], max_new_tokens=4, do_sample=False)
    conversation = first[0]["generated_text"]
    assert [message["role"] for message in conversation] == ["user", "assistant"]
    # Continue with the answer the original's history held: that is chat case 2.
    history_answer = manifest["chat_cases"][2]["history"][0][1]
    conversation[-1] = {"role": "assistant", "content": history_answer}
    conversation.append({"role": "user", "content": [{"type": "text", "text": manifest["chat_cases"][2]["query"][0]["text"]}]})
    reply = released_pipe(conversation, return_full_text=False, **GREEDY_10)[0]["generated_text"]
    assert reply == expected_replies[2]


def test_string_content_and_path_part(released_pipe, reference_dir, expected_replies):
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "audio", "path": str(reference_dir / "audio" / SPEECH)},
                                     {"type": "text", "text": "what does the person say?"}]},
    ]
    assert released_pipe(messages, return_full_text=False, **GREEDY_10)[0]["generated_text"] == expected_replies[0]
    assert released_pipe(text=messages, return_full_text=False, **GREEDY_10)[0]["generated_text"] == expected_replies[0]


def test_prompt_shorthand_is_a_chat_turn(released_pipe, reference_dir, expected_replies):
    result = released_pipe(str(reference_dir / "audio" / SPEECH), prompt="what does the person say?", **GREEDY_10)
    assert result == {"text": expected_replies[0].strip()}


def test_stream_yields_the_reply(released_pipe, manifest, reference_dir, expected_replies):
    pieces = list(released_pipe.stream(file_messages(manifest, reference_dir)[0], **GREEDY_10))
    assert len(pieces) >= 1 and "".join(pieces) == expected_replies[0]


def test_return_tensors_and_stop_ids(released_pipe, manifest, reference_dir):
    result = released_pipe(file_messages(manifest, reference_dir)[0], return_tensors=True, **GREEDY_10)
    assert result[0]["generated_token_ids"].tolist() == manifest["chat_cases"][0]["greedy_new_tokens"]
    # The released folder has no generation config: the original's ChatML stop ids are used anyway.
    captured = {}
    original_generate = released_pipe.model.generate

    def spy(**kwargs):
        captured.update(kwargs)
        return original_generate(**kwargs)

    released_pipe.model.generate = spy
    try:
        released_pipe([{"role": "user", "content": "hi"}], max_new_tokens=2)
    finally:
        del released_pipe.model.generate
    # The released folder has no generation config: loading adds the original's ChatML stop ids to the model's.
    effective_eos = captured.get("eos_token_id") or released_pipe.model.generation_config.eos_token_id
    assert set(effective_eos) >= {151643, 151645}
    assert captured["max_new_tokens"] == 2


def test_loaded_model_and_processor(released_pipe, manifest, reference_dir, expected_replies):
    pipe = pipeline("audio-chat", model=released_pipe.model, processor=released_pipe.processor)
    assert isinstance(pipe, AudioChatPipeline)
    reply = pipe(file_messages(manifest, reference_dir)[0], return_full_text=False, **GREEDY_10)[0]["generated_text"]
    assert reply == expected_replies[0]


# --- task shorthands ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("timestamps", [False, True])
def test_base_task_prompt_matches_original(released_pipe, manifest, reference_dir, timestamps):
    wanted = "<|timestamps|>" if timestamps else "<|notimestamps|><|wo_itn|>"
    base = next(p for p in manifest["base_prompts"] if p["prompt"].startswith("<audio>1089") and "<|transcribe|>" in p["prompt"] and wanted in p["prompt"])
    rows = list(released_pipe.preprocess(
        str(reference_dir / "audio" / "1089_134686_000007_000004_person_name.wav"),
        task="transcribe", language="en", return_timestamps=timestamps, chat_format="raw",
    ))
    assert len(rows) == 1 and rows[0]["input_ids"][0].tolist() == base["input_ids"]


def test_transcribe_with_word_timestamps(released_pipe, reference_dir):
    result = released_pipe(str(reference_dir / "audio" / SPEECH), task="transcribe", language="en",
                           return_timestamps="word", chat_format="raw", max_new_tokens=8)
    assert set(result) == {"text", "chunks"}
    for chunk in result["chunks"]:
        assert set(chunk) == {"text", "timestamp"} and len(chunk["timestamp"]) == 2
    results = released_pipe([str(reference_dir / "audio" / SPEECH)] * 2, task="caption", max_new_tokens=3, batch_size=2)
    assert len(results) == 2 and results[0] == results[1] and set(results[0]) == {"text"}


def fake_outputs(tokenizer, rows, answers):
    """What `_forward` gives for `rows` (from `preprocess`) had the model answered `answers` (text, one per row)."""
    return [
        {"new_tokens": torch.tensor([[tokenizer(answer)["input_ids"]]]), "meta": row["meta"]}
        for row, answer in zip(rows, answers)
    ]


def test_long_audio_chunks_are_offset(released_pipe, reference_dir):
    music = str(reference_dir / "audio" / "music.wav")
    rows = list(released_pipe.preprocess(music, task="transcribe", language="en", return_timestamps=True,
                                         long_audio="chunk", chat_format="raw"))
    assert [row["meta"]["time_offset"] for row in rows] == [0.0, 30.0, 60.0, 90.0]
    assert [row["is_last"] for row in rows] == [False, False, False, True]
    fake = fake_outputs(released_pipe.tokenizer, rows, [f" word{i}<|1.50|><|endoftext|>" for i in range(4)])
    result = released_pipe.postprocess(fake, return_timestamps="word")
    assert result["text"] == "word0 word1 word2 word3"
    assert [chunk["timestamp"] for chunk in result["chunks"]] == [(0.0, 1.5), (30.0, 31.5), (60.0, 61.5), (90.0, 91.5)]
    # And end to end: every window is generated, in batches that mix windows.
    result = released_pipe(music, task="transcribe", language="en", return_timestamps=True, long_audio="chunk",
                           chat_format="raw", max_new_tokens=2, batch_size=3)
    assert set(result) == {"text", "chunks"}


def test_split_into_windows():
    windows = split_into_windows(np.zeros(30 * 16000 * 2 + 100, dtype=np.float32))
    assert [len(window) for window in windows] == [480000, 480000]


def test_chat_format_rule(released_pipe):
    # The call's or the pipeline's argument, else the processor's attribute, else the checkpoint's generation
    # config; never the model's name. Unknown means a chat checkpoint.
    model, processor = released_pipe.model, released_pipe.processor
    original_name = model.config._name_or_path
    try:
        model.config._name_or_path = "Qwen/Qwen-Audio"  # a base model's name: not read
        assert pipeline("audio-chat", model=model, processor=processor).chat_format == "chatml"
        assert pipeline("audio-chat", model=model, processor=processor, chat_format="raw").chat_format == "raw"
        model.generation_config.chat_format = "raw"
        assert pipeline("audio-chat", model=model, processor=processor).chat_format == "raw"
        processor.chat_format = "chatml"
        assert pipeline("audio-chat", model=model, processor=processor).chat_format == "chatml"
    finally:
        model.config._name_or_path = original_name
        del model.generation_config.chat_format
        processor.chat_format = None
    with pytest.raises(ValueError, match="chat_format"):
        pipeline("audio-chat", model=model, processor=processor, chat_format="plain")


# --- bad inputs -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda pipe, audio: pipe(audio, task="sing"), ValueError, "Unknown task 'sing'"),
        (lambda pipe, audio: pipe(audio, task="transcribe", language="xx"), ValueError, "Unknown audio language"),
        (lambda pipe, audio: pipe(audio, task="caption", return_timestamps=True), ValueError, "timestamps"),
        (lambda pipe, audio: pipe(audio), ValueError, "prompt"),
        (lambda pipe, audio: pipe([{"role": "user", "content": ""}]), ValueError, "no content"),
        (lambda pipe, audio: pipe([{"role": "user", "content": []}]), ValueError, "no content"),
        (lambda pipe, audio: pipe([{"role": "user"}]), ValueError, "no content"),
        (lambda pipe, audio: pipe([{"role": "robot", "content": "hi"}]), ValueError, "role"),
        (lambda pipe, audio: pipe([{"role": "user", "content": ["hi"]}]), TypeError, "part must be a dict"),
        (lambda pipe, audio: pipe([{"role": "user", "content": [{"type": "video", "video": "x"}]}]), ValueError, "unsupported (content )?part type"),
        (lambda pipe, audio: pipe([{"role": "user", "content": [{"type": "audio"}]}]), ValueError, "exactly one of"),
        (lambda pipe, audio: pipe([{"role": "user", "content": [{"type": "audio", "path": "/no/such.wav"}]}]), FileNotFoundError, "Message 0, audio part 0"),
        (lambda pipe, audio: pipe([{"role": "user", "content": [{"type": "audio", "audio": b"not audio at all"}]}]), ValueError, "Could not decode"),
        (lambda pipe, audio: pipe("/no/such.wav", task="caption"), FileNotFoundError, "not found"),
        (lambda pipe, audio: pipe(audio, prompt="hi", batch_size=0), ValueError, "batch_size"),
        (lambda pipe, audio: pipe([]), ValueError, "empty list"),
        (lambda pipe, audio: pipe(audio, prompt="hi", text="hi"), ValueError, "once"),
        (lambda pipe, audio: pipe(audio, task="transcribe", language="en", return_timestamps="char"), ValueError, "return_timestamps"),
    ],
)
def test_bad_inputs(released_pipe, reference_dir, call, error, match):
    with pytest.raises(error, match=match):
        call(released_pipe, str(reference_dir / "audio" / SPEECH))


def test_default_model_fails_clearly_offline(monkeypatch):
    # Offline mode fails at once where an unreachable Hub would first retry (the sandbox has no network either way).
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match=DEFAULT_MODEL + ".*Pass `model=`"):
        pipeline("audio-chat")


# --- transformers' Pipeline machinery, driven as users of other pipelines call it ----------------------------------
def test_num_workers_goes_to_the_dataloader_not_generate(released_pipe, manifest, reference_dir, expected_replies):
    conversations = file_messages(manifest, reference_dir)
    for num_workers in (0, 1):
        results = released_pipe(conversations, num_workers=num_workers, batch_size=2, return_full_text=False, **GREEDY_10)
        assert [result[0]["generated_text"] for result in results] == expected_replies


def test_generator_and_dataset_inputs_stream_lazily(released_pipe, manifest, reference_dir, expected_replies):
    from datasets import Dataset
    from transformers.pipelines.pt_utils import KeyDataset

    conversations = file_messages(manifest, reference_dir)
    pulled = []

    def generate_conversations():
        for conversation in conversations:
            pulled.append(conversation)
            yield conversation

    results = released_pipe(generate_conversations(), return_full_text=False, **GREEDY_10)
    assert not isinstance(results, list)  # an iterable consumed on demand, as for every pipeline
    results = iter(results)
    first = next(results)
    assert first[0]["generated_text"] == expected_replies[0] and len(pulled) == 1  # nothing read ahead
    assert [result[0]["generated_text"] for result in results] == expected_replies[1:]

    speech = str(reference_dir / "audio" / SPEECH)
    dataset = Dataset.from_dict({"audio": [speech, speech], "question": ["what does the person say?"] * 2})
    answers = list(released_pipe(KeyDataset(dataset, "audio"), prompt="what does the person say?", batch_size=2, **GREEDY_10))
    assert answers == [{"text": expected_replies[0].strip()}] * 2


def test_a_list_is_not_preprocessed_before_the_first_generation(released_pipe, manifest, reference_dir):
    conversations = file_messages(manifest, reference_dir)
    preprocessed, at_first_generate = [], []
    original_preprocess, original_generate = released_pipe.preprocess, released_pipe.model.generate

    def counting_preprocess(*args, **kwargs):
        preprocessed.append(1)
        yield from original_preprocess(*args, **kwargs)

    def spying_generate(**kwargs):
        at_first_generate.append(len(preprocessed))
        return original_generate(**kwargs)

    released_pipe.preprocess, released_pipe.model.generate = counting_preprocess, spying_generate
    try:
        released_pipe(conversations, max_new_tokens=1)
    finally:
        del released_pipe.preprocess, released_pipe.model.generate
    assert at_first_generate == [1, 2, 3]


def test_final_assistant_message_is_continued(released_pipe, manifest, reference_dir):
    messages = file_messages(manifest, reference_dir)[0]
    greedy = manifest["chat_cases"][0]["greedy_new_tokens"]
    tokenizer = released_pipe.tokenizer
    # A prefix of the original's greedy reply that tokenizes back to the same ids.
    size = next(k for k in range(4, 1, -1) if tokenizer(tokenizer.decode(greedy[:k]))["input_ids"] == greedy[:k])
    prefill = tokenizer.decode(greedy[:size])
    conversation = messages + [{"role": "assistant", "content": prefill}]
    greedy_rest = {"max_new_tokens": 10 - size, "min_new_tokens": 10 - size, "do_sample": False}
    for flag in (None, True):  # the default continues a final assistant message, as ImageTextToTextPipeline does
        kwargs = {} if flag is None else {"continue_final_message": flag}
        result = released_pipe(conversation, return_tensors=True, **kwargs, **greedy_rest)
        assert result[0]["generated_token_ids"].tolist() == greedy[size:10]
        full = released_pipe(conversation, **kwargs, **greedy_rest)[0]["generated_text"]
        assert len(full) == 2 and full[-1] == {"role": "assistant", "content": tokenizer.decode(greedy[:10])}
    # Asked for, a new assistant turn follows instead.
    new_turn = released_pipe(conversation, continue_final_message=False, max_new_tokens=2)[0]["generated_text"]
    assert [message["role"] for message in new_turn] == ["user", "assistant", "assistant"]
    assert new_turn[1]["content"] == prefill


def test_any_to_any_form(released_pipe, reference_dir, expected_replies):
    speech = str(reference_dir / "audio" / SPEECH)
    expected = {"text": expected_replies[0].strip()}
    assert released_pipe(audio=speech, text="what does the person say?", **GREEDY_10) == expected
    assert released_pipe(audio=[speech, speech], text="what does the person say?", batch_size=2, **GREEDY_10) == [expected] * 2
    assert released_pipe({"audio": speech, "text": "what does the person say?"}, **GREEDY_10) == expected
    with pytest.raises(ValueError, match="one text per clip"):
        released_pipe(audio=[speech, speech], text=["a", "b", "c"])
    # `text` alone is a user turn, as in image-text-to-text.
    hello = [{"role": "user", "content": "Hello!"}]
    assert released_pipe(text="Hello!", max_new_tokens=3)[0]["generated_text"][:1] == hello
    assert released_pipe(text="Hello!", return_full_text=False, **GREEDY_10) == released_pipe(hello, return_full_text=False, **GREEDY_10)


def test_several_sequences_per_conversation_in_a_batch(released_pipe, manifest, reference_dir):
    conversations = file_messages(manifest, reference_dir)[:2]
    results = released_pipe(conversations, batch_size=2, num_return_sequences=2, do_sample=True, max_new_tokens=3)
    assert [len(result) for result in results] == [2, 2]
    assert all(record["input_text"] == conversation for result, conversation in zip(results, conversations) for record in result)


def test_word_and_segment_timestamps(released_pipe, reference_dir):
    rows = list(released_pipe.preprocess(str(reference_dir / "audio" / SPEECH), task="transcribe", language="en",
                                         return_timestamps=True, chat_format="raw"))
    answer = " hello<|0.50|> world<|1.00|><|sil|><|2.00|> again<|2.50|><|endoftext|>"
    fake = fake_outputs(released_pipe.tokenizer, rows, [answer])
    words = released_pipe.postprocess(fake, return_timestamps="word")
    assert words["chunks"] == [
        {"text": "hello", "timestamp": (0.0, 0.5)},
        {"text": "world", "timestamp": (0.5, 1.0)},
        {"text": "again", "timestamp": (2.0, 2.5)},
    ]
    segments = released_pipe.postprocess(fake, return_timestamps=True)
    assert segments["chunks"] == [
        {"text": "hello world", "timestamp": (0.0, 1.0)},
        {"text": "again", "timestamp": (2.0, 2.5)},
    ]
    assert words["text"] == segments["text"] == "hello world again"
    # Windows of long audio cut segments too.
    music = str(reference_dir / "audio" / "music.wav")
    rows = list(released_pipe.preprocess(music, task="transcribe", language="en", return_timestamps=True,
                                         long_audio="chunk", chat_format="raw"))[:2]
    fake = fake_outputs(released_pipe.tokenizer, rows, [" one<|29.00|> two<|30.00|>", " three<|1.00|>"])
    assert released_pipe.postprocess(fake, return_timestamps="segment")["chunks"] == [
        {"text": "one two", "timestamp": (0.0, 30.0)},
        {"text": "three", "timestamp": (30.0, 31.0)},
    ]


# --- one bad input, downloads and paths in text ---------------------------------------------------------------------
def test_bad_row_is_named_and_errors_return_keeps_the_others(released_pipe, manifest, reference_dir, expected_replies):
    good = file_messages(manifest, reference_dir)[0]
    bad = [{"role": "human", "content": "hi"}]
    with pytest.raises(ValueError, match=r"^Input 1: Message 0 has unknown role 'human'"):
        released_pipe([good, bad, good], batch_size=3, **GREEDY_10)
    results = released_pipe([good, bad, good], batch_size=3, errors="return", return_full_text=False, **GREEDY_10)
    assert results[0] == results[2] == [{"input_text": good, "generated_text": expected_replies[0]}]
    assert results[1] == [{"input_text": bad, "error": "Input 1: Message 0 has unknown role 'human'; expected one of ('system', 'user', 'assistant')."}]
    speech = str(reference_dir / "audio" / SPEECH)
    results = released_pipe([speech, "/no/such.wav", speech], prompt="what does the person say?", batch_size=2,
                            errors="return", **GREEDY_10)
    assert results[0] == results[2] == {"text": expected_replies[0].strip()}
    assert set(results[1]) == {"error"} and results[1]["error"].startswith("Input 1: ") and "not found" in results[1]["error"]
    with pytest.raises(ValueError, match="errors"):
        released_pipe(good, errors="ignore")
    # A single input too, whatever is wrong with it.
    no_content = [{"role": "user"}]
    assert released_pipe(no_content, errors="return") == [
        {"input_text": no_content, "error": "Input 0: Message 0 (user) has no content: a message is a dict with `role` and `content`."}
    ]


def test_urls_are_refused_unless_allowed(released_pipe):
    url = "http://127.0.0.1:9/clip.wav"  # nothing listens there: an allowed download fails at once, offline
    chat = [{"role": "user", "content": [{"type": "audio", "url": url}, {"type": "text", "text": "What is it?"}]}]
    for call in (lambda **kw: released_pipe(chat, **kw), lambda **kw: released_pipe(url, prompt="What is it?", **kw)):
        with pytest.raises(ValueError, match="allow_urls=True"):
            call(max_new_tokens=1)
        with pytest.raises(ValueError, match="Could not download"):  # the opt-in reaches the loader
            call(max_new_tokens=1, allow_urls=True)


def test_audio_paths_in_text_need_the_opt_in(released_pipe, reference_dir, expected_replies):
    path = str(reference_dir / "audio" / SPEECH)
    in_text = [{"role": "user", "content": f"<audio>{path}</audio>what does the person say?"}]
    with pytest.raises(ValueError, match="allow_audio_paths_in_text"):
        released_pipe(in_text, **GREEDY_10)
    reply = released_pipe(in_text, allow_audio_paths_in_text=True, return_full_text=False, **GREEDY_10)
    assert reply[0]["generated_text"] == expected_replies[0]


def test_generation_stops_at_the_chat_stop_ids_of_any_vocabulary(tmp_path):
    """A checkpoint whose generation config names only its <|endoftext|> (the tiny byte-level ones): `generate` is
    told to stop at <|im_end|> too, in a call and in `stream` (whose text would otherwise run on past the reply)."""
    from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint

    pipe = pipeline("audio-chat", model=str(build_released_checkpoint(tmp_path / "tiny")))
    stop_ids = set(pipe.processor.chat_stop_token_ids)
    assert not stop_ids <= set(np.atleast_1d(pipe.model.generation_config.eos_token_id).tolist())
    seen, original_generate = [], pipe.model.generate

    def spy(**kwargs):
        seen.append(kwargs.get("eos_token_id"))
        return original_generate(**kwargs)

    pipe.model.generate = spy
    messages = [{"role": "user", "content": "Hello"}]
    pipe(messages, max_new_tokens=2, do_sample=False)
    "".join(pipe.stream(messages, max_new_tokens=2, do_sample=False))
    assert len(seen) == 2 and all(stop_ids <= set(ids) for ids in seen), seen
    pipe(messages, max_new_tokens=2, do_sample=False, eos_token_id=5)  # the caller's own choice is kept
    assert seen[-1] == 5
