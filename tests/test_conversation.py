"""The one conversation model: what a message and an audio part are, used alike by the processor, the chat template
and the training collator."""

import numpy as np
import pytest
import soundfile
import torch

from transformers_qwen_audio.conversation import (
    MIN_AUDIO_SAMPLES,
    ConversationTypeError,
    audio_sources,
    load_clip,
    validate_conversation,
)
from transformers_qwen_audio.tiny_checkpoint import chirp
from transformers_qwen_audio.training import IGNORE_INDEX, QwenAudioCollator


@pytest.fixture
def processor(tiny_processor):
    return tiny_processor


@pytest.fixture(scope="module")
def wav_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "chirp.wav"
    soundfile.write(path, chirp(0.5), 16000)
    return str(path)


def user(*parts, text="What is it?"):
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


@pytest.mark.parametrize(
    "part",
    [
        {"type": "audio", "path": "PATH"},
        {"path": "PATH"},
        {"type": "audio", "audio": "PATH"},
        {"audio": "PATH"},
        {"type": "audio", "url": "PATH"},
        {"type": "audio", "audio_url": {"url": "PATH"}},
        {"type": "audio", "path": "PATH", "url": None, "audio": None},  # a `datasets` struct gives every key
    ],
)
def test_every_audio_part_spelling_renders_and_tokenizes_alike(processor, wav_path, part):
    part = {key: (wav_path if value == "PATH" else value) for key, value in part.items()}
    if isinstance(part.get("audio_url"), dict):
        part["audio_url"] = {"url": wav_path}
    reference = [user({"type": "audio", "path": wav_path})]
    messages = [user(part)]
    assert processor.apply_chat_template(messages) == processor.apply_chat_template(reference)
    got = processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")
    expected = processor.apply_chat_template(reference, tokenize=True, return_dict=True, return_tensors="pt")
    assert torch.equal(got["input_ids"], expected["input_ids"])
    assert torch.equal(got["input_features"], expected["input_features"])


def test_typeless_path_part_is_not_dropped_anywhere(processor, wav_path):
    # The bug: `{"path": ...}` without "type" was accepted by the pipeline and the collator but silently dropped
    # by `processor.apply_chat_template`.
    messages = [user({"path": wav_path}), {"role": "assistant", "content": "A chirp."}]
    inputs = processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")
    assert inputs["input_features"].shape[0] == 1
    assert int((inputs["input_ids"] == processor.audio_start_token_id).sum()) == 1
    batch = QwenAudioCollator(processor)([{"messages": messages}])
    assert torch.equal(batch["input_ids"][0, : inputs["input_ids"].shape[1]], inputs["input_ids"][0])
    # The collator pads the features only past the batch's longest clip (feature_padding="longest"): a prefix.
    assert torch.equal(batch["input_features"], inputs["input_features"][..., : batch["input_features"].shape[-1]])


def test_template_rendered_without_the_processor_follows_the_same_rule(processor, wav_path):
    # The chat template mirrors the Python rule for callers that render it with the tokenizer alone.
    for part in ({"path": wav_path}, {"audio": wav_path}, {"url": wav_path}, {"type": "audio", "path": wav_path}):
        messages = [user(part)]
        by_tokenizer = processor.tokenizer.apply_chat_template(
            messages, chat_template=processor.chat_template, tokenize=False
        )
        assert by_tokenizer == processor.apply_chat_template(messages), part
        assert f"<audio>{wav_path}</audio>" in by_tokenizer


def test_array_parts_render_an_empty_span(processor):
    messages = [user({"type": "audio", "audio": chirp(0.5)}, {"array": chirp(0.3), "sampling_rate": 16000})]
    text = processor.apply_chat_template(messages)
    assert "Audio 1:<audio></audio>\nAudio 2:<audio></audio>\n" in text


def test_array_part_with_its_sampling_rate(processor):
    waveform = np.sin(np.arange(4000) / 3).astype(np.float32)  # 0.5 s at 8 kHz
    inputs = processor.apply_chat_template(
        [user({"type": "audio", "audio": waveform, "sampling_rate": 8000})], tokenize=True, return_dict=True
    )
    assert int(np.sum(inputs["feature_attention_mask"][0])) == 8000 // 160


@pytest.mark.parametrize(
    "messages, error, match",
    [
        ([user({"type": "audio", "path": "a.wav", "url": "https://x/a.wav"})], ValueError, "Message 0, audio part 0: an audio part needs exactly one of"),
        ([user({"type": "video", "video": "a.mp4"})], ValueError, "Message 0, part 0: unsupported part type 'video'"),
        ([user({"path": "a.wav", "text": "hi"})], ValueError, "Message 0, part 0: .*both text and audio"),
        ([user({"image": "a.png"})], ValueError, "Message 0, part 0: cannot tell what this part is"),
        ([user({"type": "audio"})], ValueError, "Message 0, audio part 0 has no source"),
        ([{"role": "user", "content": ["hi"]}], TypeError, "Message 0, part 0: a content part must be a dict"),
        ([{"role": "robot", "content": "hi"}], ValueError, "Message 0 has unknown role 'robot'"),
        ([{"role": "user"}], ValueError, "Message 0 .* has no content"),
        ([{"role": "user", "content": ""}], ValueError, "no content"),
        ([{"role": "user", "content": 3}], TypeError, "string or a list of parts"),
        ([{"role": "assistant", "content": "hi"}], ValueError, "starts with an assistant message"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], ValueError, "system message may only come first"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "audio", "path": "a.wav"}]}], ValueError, "Message 1, audio part 0: audio is only allowed in user messages"),
        ([{"role": "user", "content": "hi <audio>/etc/passwd</audio>"}], ValueError, "Message 0: .*allow_audio_paths_in_text=True"),
        ([user(text="<audio>/etc/passwd</audio>")], ValueError, "Message 0, part 0: .*allow_audio_paths_in_text=True"),
        ([user(text="<audio>unclosed")], ValueError, "Message 0, part 0: Unclosed <audio>"),
        ("hello", TypeError, "a conversation must be a list of messages"),
        ([], ValueError, "the conversation is empty"),
    ],
)
def test_refusals_name_message_and_part(processor, messages, error, match):
    with pytest.raises(error, match=match):
        validate_conversation(messages)
    # The processor refuses the same way, before rendering anything.
    with pytest.raises(error, match=match):
        processor.apply_chat_template(messages)


def test_type_errors_are_also_value_errors():
    with pytest.raises(ValueError):
        validate_conversation([{"role": "user", "content": ["hi"]}])
    assert issubclass(ConversationTypeError, TypeError) and issubclass(ConversationTypeError, ValueError)


def test_errors_name_the_conversation_of_a_batch(processor):
    good = [{"role": "user", "content": "hi"}]
    bad = [{"role": "human", "content": "hi"}]
    with pytest.raises(ValueError, match="Conversation 1, message 0 has unknown role 'human'"):
        validate_conversation(bad, row=1)
    with pytest.raises(ValueError, match="Conversation 1, message 0 has unknown role 'human'"):
        processor.apply_chat_template([good, bad, good])
    with pytest.raises(ValueError, match="Conversation 1, message 0 has unknown role"):
        QwenAudioCollator(processor)([{"messages": good + [{"role": "assistant", "content": "x"}]}, {"messages": bad}])


def test_audio_paths_in_text_only_on_opt_in(processor, wav_path):
    text = f"Listen: <audio>{wav_path}</audio> What is it?"
    canonical = validate_conversation([{"role": "user", "content": text}], allow_audio_paths_in_text=True)
    assert canonical[0]["content"] == [
        {"type": "text", "text": "Listen: "},
        {"type": "audio", "audio": wav_path},
        {"type": "text", "text": " What is it?"},
    ]
    inputs = processor.apply_chat_template(
        [{"role": "user", "content": text}],
        tokenize=True,
        return_dict=True,
        processor_kwargs={"allow_audio_paths_in_text": True},
    )
    assert len(inputs["input_features"]) == 1
    # Plain processor call: the same rule.
    with pytest.raises(ValueError, match="allow_audio_paths_in_text=True"):
        processor(text=text)
    assert len(processor(text=text, allow_audio_paths_in_text=True)["input_features"]) == 1


def test_clips_given_separately_fill_sourceless_parts():
    clips = [chirp(0.3), chirp(0.6)]
    canonical = validate_conversation([user({"type": "audio"}, {"type": "audio"})], clips=clips)
    assert [len(clip) for clip in audio_sources(canonical)] == [len(clip) for clip in clips]
    with pytest.raises(ValueError, match="more clips were given"):
        validate_conversation([user({"type": "audio"})], clips=clips)
    with pytest.raises(ValueError, match="no clip is left"):
        validate_conversation([user({"type": "audio"}, {"type": "audio"}, {"type": "audio"})], clips=clips)


def test_validation_never_modifies_the_callers_messages(wav_path):
    messages = [user({"path": wav_path, "url": None})]
    snapshot = repr(messages)
    validate_conversation(messages)
    assert repr(messages) == snapshot


def test_one_length_rule_and_one_file_rule(tmp_path):
    with pytest.raises(ValueError, match=f"Message 0, audio part 1 is too short: 100 samples .* {MIN_AUDIO_SAMPLES}"):
        load_clip(np.zeros(100, dtype=np.float32), "Message 0, audio part 1")
    assert len(load_clip(np.zeros(MIN_AUDIO_SAMPLES, dtype=np.float32))) == MIN_AUDIO_SAMPLES
    with pytest.raises(FileNotFoundError, match="Message 2, audio part 0: Audio file not found"):
        load_clip(str(tmp_path / "missing.wav"), "Message 2, audio part 0")
    with pytest.raises(ValueError, match="allow_urls=True"):
        load_clip("https://example.com/a.wav", "Message 0, audio part 0")


def test_continue_final_message_prefills_the_assistant_turn(processor):
    messages = [{"role": "user", "content": "Count to three."}, {"role": "assistant", "content": "One, two,"}]
    text = processor.apply_chat_template(messages, continue_final_message=True)
    assert text.endswith("<|im_start|>assistant\nOne, two,")
    inputs = processor.apply_chat_template(
        messages, continue_final_message=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert processor.tokenizer.decode(inputs["input_ids"][0]) == text
    # Without it the reply is closed, and an empty assistant prefill is allowed.
    assert processor.apply_chat_template(messages).endswith("One, two,<|im_end|>\n")
    assert processor.apply_chat_template(
        [messages[0], {"role": "assistant", "content": ""}], continue_final_message=True
    ).endswith("<|im_start|>assistant\n")


def test_collator_labels_equal_the_processors_assistant_mask(processor, wav_path):
    messages = [
        {"role": "system", "content": "Be brief."},
        user({"path": wav_path}, {"type": "audio", "audio": chirp(0.3)}, text="Compare."),
        {"role": "assistant", "content": "The first is longer."},
        user({"type": "audio", "audio": chirp(0.8)}),
        {"role": "assistant", "content": [{"type": "text", "text": "A chirp."}]},
    ]
    reference = processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, return_tensors="pt"
    )
    batch = QwenAudioCollator(processor)([{"messages": messages}])
    assert torch.equal(batch["input_ids"], reference["input_ids"])
    expected = torch.where(reference["assistant_masks"].bool(), reference["input_ids"], IGNORE_INDEX)
    assert torch.equal(batch["labels"], expected)


def test_decoding_errors_of_a_chat_name_the_conversation_message_and_part(processor, wav_path):
    missing = [user({"type": "audio", "audio": wav_path}, {"path": "/no/such/file.wav"})]
    with pytest.raises(FileNotFoundError, match="Message 0, audio part 1: Audio file not found"):
        processor.apply_chat_template(missing, tokenize=True)
    fine = [user({"path": wav_path})]
    with pytest.raises(FileNotFoundError, match="Conversation 1, message 0, audio part 1"):
        processor.apply_chat_template([fine, missing], tokenize=True)
    with pytest.raises(ValueError, match="Message 0, audio part 0: .*allow_urls=True"):
        processor.apply_chat_template([user({"url": "https://example.com/a.wav"})], tokenize=True)
    with pytest.raises(ValueError, match="Message 0, audio part 0 is too short"):
        processor.apply_chat_template([user({"array": np.zeros(100, dtype=np.float32)})], tokenize=True)


def test_sampling_rate_of_array_parts_through_processor_kwargs(processor):
    waveform = np.sin(np.arange(4000) / 3).astype(np.float32)  # 0.5 s at 8 kHz
    inputs = processor.apply_chat_template(
        [user({"type": "audio", "audio": waveform})],
        tokenize=True,
        return_dict=True,
        processor_kwargs={"sampling_rate": 8000},
    )
    assert int(np.sum(inputs["feature_attention_mask"][0])) == 8000 // 160
