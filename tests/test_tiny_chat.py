"""The tiny chat dialogues (`data.tiny_chat`), their scorer (`evaluation.dialogues`) and a few steps of the main job's
stage 2 (`recipes/tiny/sft.yaml`) on a tiny checkpoint: shapes, timestamps, assistant-only labels, a falling loss."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from transformers_qwen_audio.data.sounds import SOUND_LABELS
from transformers_qwen_audio.data.tiny_chat import QUESTION_TYPES, TinyChatConfig, build_tiny_chat, ensure_tiny_chat
from transformers_qwen_audio.evaluation.dialogues import reply_requests, score_dialogue_replies
from transformers_qwen_audio.recipes import recipe_path
from transformers_qwen_audio.tiny_checkpoint import build_released_checkpoint


SAMPLING_RATE = 16000
WORDS = ("left", "turn", "seven", "red", "dog", "open")
SMALL = TinyChatConfig(seed=3, num_train_dialogues=300, num_validation_dialogues=120, num_test_dialogues=120)
GROUNDING_REPLY = re.compile(r'^The word "(\w+)" starts at <\|(\d+\.\d\d)\|> seconds and ends at <\|(\d+\.\d\d)\|> seconds\.$')


def write_multitask_folder(root: Path, rows_per_split: int = 12) -> Path:
    """A stand-in for the tiny multitask dataset (no speech synthesis): word rows with times, labelled sounds."""
    rng = np.random.default_rng(0)
    for split in ("train", "validation", "test"):
        for subset in ("speech", "sounds"):
            (root / subset / split).mkdir(parents=True)
            rows = []
            for index in range(rows_per_split):
                clip = (0.1 * rng.standard_normal(int(rng.uniform(0.8, 2.0) * SAMPLING_RATE))).astype(np.float32)
                row = {"audio": f"{subset}/{split}/{index:05d}.flac", "duration": round(len(clip) / SAMPLING_RATE, 3)}
                soundfile.write(root / row["audio"], clip, SAMPLING_RATE, format="FLAC")
                if subset == "speech":
                    words = [WORDS[i] for i in rng.choice(len(WORDS), size=int(rng.integers(2, 5)))]
                    bounds = np.sort(rng.uniform(0.05, row["duration"] - 0.05, size=2 * len(words)))
                    row["words"] = [{"word": word, "start": round(float(bounds[2 * k]), 3),
                                     "end": round(float(bounds[2 * k + 1]), 3)} for k, word in enumerate(words)]
                    row["text"] = " ".join(words)
                else:
                    row["label"] = SOUND_LABELS[index % len(SOUND_LABELS)]
                rows.append(row)
            (root / subset / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


@pytest.fixture(scope="module")
def chat_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-chat")
    multitask = write_multitask_folder(root / "multitask")
    return multitask, build_tiny_chat(multitask, root / "chat", SMALL)


def read_rows(folder: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]


def audio_parts(message: dict) -> list[str]:
    return [part["audio"] for part in message["content"] if part["type"] == "audio"]


def text_of(message: dict) -> str:
    return "".join(part["text"] for part in message["content"] if part["type"] == "text")


def test_dialogues_alternate_turns_cover_every_question_type_and_use_their_own_split(chat_data):
    multitask, chat = chat_data
    for split in ("train", "validation", "test"):
        rows = read_rows(chat, split)
        assert len(rows) == SMALL.num_dialogues(split)
        for row in rows:
            roles = [message["role"] for message in row["messages"]]
            assert roles == ["user", "assistant"] * (len(roles) // 2) and 2 <= len(roles) <= 6
            assert len(row["question_types"]) == len(roles) // 2
            assert set(row["question_types"]) <= set(QUESTION_TYPES)
            for message in row["messages"]:
                for clip in audio_parts(message):
                    assert clip.split("/")[1] == split and (multitask / clip).is_file()
        assert {kind for row in rows for kind in row["question_types"]} == set(QUESTION_TYPES)


def test_question_types_have_their_shape(chat_data):
    _, chat = chat_data
    for row in read_rows(chat, "test"):
        users = row["messages"][0::2]
        for turn, question_type in enumerate(row["question_types"]):
            clips = audio_parts(users[turn])
            if question_type == "pure_text":
                assert not any(audio_parts(message) for message in users)
            elif question_type == "two_clips":
                assert len(clips) == 2
            elif question_type == "follow_up":
                # About the first turn's clip, two turns later, without repeating it.
                assert turn == 2 and not clips and text_of(users[2]).startswith("Back to the first clip: ")
                assert len(audio_parts(users[0])) == 1 and len(audio_parts(users[1])) == 1


def test_grounding_replies_are_the_released_format_on_the_timestamp_grid_within_the_clip(chat_data):
    multitask, chat = chat_data
    speech = {row["audio"]: row for row in read_rows(multitask / "speech", "test")}
    checked = 0
    for row in read_rows(chat, "test"):
        clip = None
        for turn, question_type in enumerate(row["question_types"]):
            user, reply = row["messages"][2 * turn], text_of(row["messages"][2 * turn + 1])
            clip = (audio_parts(user) or [clip])[0]
            if question_type != "grounding":
                continue
            word = re.fullmatch(r'Find the start time and end time of the word "(\w+)"', text_of(user)).group(1)
            match = GROUNDING_REPLY.match(reply)
            assert match and match.group(1) == word, reply
            start, end = float(match.group(2)), float(match.group(3))
            # Two decimals (the regular expression): the 10 ms grid of the timestamp tokens.
            assert 0 <= start < end <= speech[clip]["duration"] + 0.005
            timing = next(item for item in speech[clip]["words"] if item["word"] == word)
            assert abs(start - timing["start"]) <= 0.0051 and abs(end - timing["end"]) <= 0.0051  # rounded to 0.01
            checked += 1
    assert checked > 5


def test_transcript_first_replies_say_the_transcript_unless_the_conversation_holds_it(chat_data, tmp_path):
    multitask, direct = chat_data
    chat = build_tiny_chat(multitask, tmp_path / "first", TinyChatConfig(**{**SMALL.__dict__, "transcript_first": True}))
    speech = {row["audio"]: row for row in read_rows(multitask / "speech", "train")}
    led = plain = 0
    for row in read_rows(chat, "train"):
        clips, said = [], set()  # the clips of the turns so far; the transcripts replies gave
        for turn, question_type in enumerate(row["question_types"]):
            user, reply = row["messages"][2 * turn], text_of(row["messages"][2 * turn + 1])
            clips += audio_parts(user)
            if not clips:
                continue
            # The clip the turn asks about: its own, the one before it, or the first one in a follow-up.
            clip = clips[0] if text_of(user).startswith("Back to the first clip") else clips[-1]
            if clip not in speech or len(audio_parts(user)) > 1:
                continue
            lead = f'The person says: "{speech[clip]["text"]}". '
            if re.search(r"How many words|word\?$", text_of(user)):  # a count or position question
                # A question that comes with its clip is answered whole; one about an earlier clip copies.
                if speech[clip]["text"] in said and not audio_parts(user):
                    assert not reply.startswith("The person says: "), reply
                    plain += 1
                else:
                    assert reply.startswith(lead) and len(reply) > len(lead), reply
                    led += 1
            said.update(re.findall(r'^The person says: "([a-z ]+)"\.', reply))
    assert led > 10 and plain > 5
    # Without it (the default) the replies answer at once, and the dialogues are otherwise the same.
    rows, direct_rows = read_rows(chat, "train"), read_rows(direct, "train")
    assert [row["question_types"] for row in rows] == [row["question_types"] for row in direct_rows]
    assert not any(text_of(message).startswith("The person says: ") and text_of(message).count(". ")
                   for row in direct_rows for message in row["messages"][1::2])


def test_the_answer_scored_is_the_last_sentence_of_a_reply():
    requests = [{"type": "word_position", "reference": 'The person says: "left turn". The second word is "turn".',
                 "messages": []}] * 4
    replies = ['The second word is "turn".', 'The person says: "left burn". The second word is "turn".',
               'The person says: "left turn". The second word is "left".', 'The person says: "left turn".']
    scored = score_dialogue_replies(requests[:1], replies[:1], "tiny-chat", "test")[0]["metrics"]["accuracy"]
    assert scored == 1.0
    assert score_dialogue_replies(requests, replies, "tiny-chat", "test")[0]["metrics"]["accuracy"] == 0.5


def test_task_shorthands_are_answered_as_the_pipeline_asks_a_chat_checkpoint(chat_data):
    from transformers_qwen_audio.task_prompts import chat_task_instruction

    _, chat = chat_data
    asked = {text_of(row["messages"][0]) for row in read_rows(chat, "train")}
    assert {chat_task_instruction("transcribe"), chat_task_instruction("transcribe", audio_language="en"),
            chat_task_instruction("event")} <= asked


def test_generation_is_seeded_and_reused(chat_data, tmp_path):
    multitask, chat = chat_data
    again = build_tiny_chat(multitask, tmp_path / "again", SMALL)
    assert (again / "test.jsonl").read_text() == (chat / "test.jsonl").read_text()
    stamp = (again / "train.jsonl").stat().st_mtime_ns
    assert ensure_tiny_chat(multitask, again, SMALL) == again and (again / "train.jsonl").stat().st_mtime_ns == stamp
    other = build_tiny_chat(multitask, tmp_path / "other", TinyChatConfig(seed=4, num_train_dialogues=300,
                                                                         num_validation_dialogues=120, num_test_dialogues=120))
    assert (other / "test.jsonl").read_text() != (chat / "test.jsonl").read_text()


def test_a_folder_without_the_dataset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a tiny multitask dataset folder"):
        build_tiny_chat(tmp_path, tmp_path / "chat", SMALL)


def test_the_scorer_gives_reference_replies_full_marks_and_wrong_ones_less(chat_data):
    multitask, chat = chat_data
    requests = reply_requests(read_rows(chat, "test"), multitask)
    assert all(Path(part["audio"]).is_absolute() for request in requests for message in request["messages"]
               for part in message["content"] if part["type"] == "audio")
    perfect = {result["benchmark"]: result["metrics"]
               for result in score_dialogue_replies(requests, [r["reference"] for r in requests], "tiny-chat", "test")}
    assert set(perfect) == {f"tiny_chat_{kind}" for kind in QUESTION_TYPES}
    assert perfect["tiny_chat_transcription"]["wer"] == 0.0
    assert perfect["tiny_chat_grounding"] == {"within_tolerance": 1.0, "boundary_mae": 0.0}
    assert all(metrics["accuracy"] == 1.0 for name, metrics in perfect.items()
               if name not in ("tiny_chat_transcription", "tiny_chat_grounding"))

    def shifted(request):  # timestamps 0.2 s late, other replies wrong
        if request["type"] == "grounding":
            return re.sub(r"<\|(\d+\.\d\d)\|>", lambda m: f"<|{float(m.group(1)) + 0.2:.2f}|>", request["reference"])
        return "I do not know."

    wrong = {result["benchmark"]: result["metrics"]
             for result in score_dialogue_replies(requests, [shifted(r) for r in requests], "tiny-chat", "test")}
    assert wrong["tiny_chat_grounding"]["within_tolerance"] == 0.0
    assert math.isclose(wrong["tiny_chat_grounding"]["boundary_mae"], 0.2, abs_tol=1e-6)
    assert wrong["tiny_chat_transcription"]["wer"] >= 1.0 and wrong["tiny_chat_pure_text"]["accuracy"] == 0.0
    # A transcript with word times (a chat checkpoint asked for them) is scored on its words.
    timed = [{"type": "transcription", "reference": "stop go", "messages": []}]
    for reply, wer in (("<|0.00|><|sil|><|0.31|> stop<|0.60|> go<|0.99|>", 0.0), ("<|0.00|> stop<|0.60|>", 0.5)):
        assert score_dialogue_replies(timed, [reply], "tiny-chat", "test")[0]["metrics"]["wer"] == wer


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_released_checkpoint(tmp_path_factory.mktemp("tiny-model") / "model")


def test_stage_two_labels_are_the_assistant_replies_only(chat_data, tiny_model):
    from transformers import AutoProcessor

    from transformers_qwen_audio.training.collators import QwenAudioCollator

    multitask, chat = chat_data
    processor = AutoProcessor.from_pretrained(tiny_model)
    collator = QwenAudioCollator(processor=processor, assistant_only_loss=True, audio_base_dir=str(multitask))
    rows = read_rows(chat, "test")[:6]
    batch = collator(rows)
    for row, labels in zip(rows, batch["labels"]):
        trained = processor.tokenizer.decode(labels[labels != -100])
        replies = "".join(text_of(message) + "<|im_end|>" for message in row["messages"][1::2])
        assert trained == replies


def test_a_few_steps_of_stage_two_lower_the_loss(chat_data, tiny_model, tmp_path):
    from transformers_qwen_audio.recipes import sft as sft_recipe
    from transformers_qwen_audio.training.run_checks import parse_recipe
    from transformers_qwen_audio.training.runs import run_sft

    multitask, chat = chat_data
    trainer = run_sft(*parse_recipe(sft_recipe.make_parser(), [
        "--config", str(recipe_path("tiny/sft.yaml")), "--model_name_or_path", str(tiny_model),
        "--dataset_name", str(chat / "train.jsonl"), "--audio_base_dir", str(multitask), "--output_dir", str(tmp_path / "chat"),
        "--max_steps", "8", "--per_device_train_batch_size", "2", "--learning_rate", "1e-2", "--warmup_steps", "0",
        "--lr_scheduler_type", "constant", "--logging_steps", "2", "--save_strategy", "no",
    ]))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 4 and all(math.isfinite(loss) for loss in losses)
    # The replies' wording repeats across dialogues: a few steps of a random model already learn some of it.
    assert losses[-1] < losses[0] - 1.0, losses
    assert (tmp_path / "chat" / "config.json").is_file() and (tmp_path / "chat" / "README.md").is_file()


def test_chat_without_a_model_uses_the_main_jobs_chat_model_or_says_it_falls_back(tiny_model, tmp_path, monkeypatch,
                                                                                    capsys):
    import shutil

    from transformers_qwen_audio.cli import main

    clip = tmp_path / "clip.wav"
    soundfile.write(clip, np.zeros(SAMPLING_RATE // 2, dtype=np.float32), SAMPLING_RATE)
    monkeypatch.chdir(tmp_path)
    arguments = ["chat", str(clip), "--prompt", "What is this?", "--max-new-tokens", "2", "--greedy"]
    assert main(arguments) == 0
    assert "no trained chat model in qwen-audio-demo/chat" in capsys.readouterr().err

    # A finished main job (its stage-2 folder with train_results.json) is what it uses then.
    shutil.copytree(tiny_model, tmp_path / "qwen-audio-demo" / "chat")
    (tmp_path / "qwen-audio-demo" / "chat" / "train_results.json").write_text("{}")
    assert main(arguments) == 0
    assert "using the main job's tiny Qwen-Audio-Chat in qwen-audio-demo/chat" in capsys.readouterr().err


def test_the_plain_cpu_loss_is_trls_fused_loss(chat_data, tiny_model, tmp_path):
    """`sft_loss.PlainLossWithoutTriton`: on CPU the model's own loss replaces TRL's fused LM head; same value, same
    gradients, same token accuracy."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForMultimodalLM, AutoProcessor
    from trl import SFTConfig, SFTTrainer

    from transformers_qwen_audio.training.collators import QwenAudioCollator
    from transformers_qwen_audio.training.runs import sft_trainer_class

    multitask, chat = chat_data
    processor = AutoProcessor.from_pretrained(tiny_model)
    model = AutoModelForMultimodalLM.from_pretrained(tiny_model).train()  # no dropout in the tiny config
    collator = QwenAudioCollator(processor=processor, assistant_only_loss=True, audio_base_dir=str(multitask))
    rows = read_rows(chat, "train")[:6]
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", max_steps=1, assistant_only_loss=True,
                     remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True})
    trainer = sft_trainer_class()(model=model, args=args, data_collator=collator, processing_class=processor,
                                  train_dataset=Dataset.from_list(rows))
    losses, gradients, accuracies = [], [], []
    for compute_loss in (trainer.compute_loss, lambda *a, **k: SFTTrainer.compute_loss(trainer, *a, **k)):
        model.zero_grad()
        batch = {key: value for key, value in collator(rows).items() if isinstance(value, torch.Tensor)}
        loss = compute_loss(model, batch)
        loss.backward()
        losses.append(loss.item())
        gradients.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
        accuracies.append(trainer._metrics["train"]["mean_token_accuracy"][-1])
    assert math.isclose(losses[0], losses[1], rel_tol=1e-5), losses
    torch.testing.assert_close(gradients[0], gradients[1], rtol=1e-4, atol=1e-6)
    assert math.isclose(accuracies[0], accuracies[1], abs_tol=1e-6), accuracies
    # Training computes the logits of the reply positions only; evaluation keeps them all (for `compute_metrics`).
    model.eval()
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    assert outputs.logits.shape[:2] == batch["input_ids"].shape
    assert math.isclose(loss.item(), losses[0], rel_tol=1e-5)


def test_the_length_column_follows_the_rendered_tokens(chat_data, tiny_model):
    """`length` (for `group_by_length`) is an estimate: close to the tokens the collator makes of each dialogue,
    and in the same order."""
    from transformers import AutoProcessor

    from transformers_qwen_audio.training.collators import QwenAudioCollator

    multitask, chat = chat_data
    processor = AutoProcessor.from_pretrained(tiny_model)
    collator = QwenAudioCollator(processor=processor, assistant_only_loss=True, audio_base_dir=str(multitask))
    rows = read_rows(chat, "train")[:40]
    tokens = np.array([int(collator([row])["attention_mask"].sum()) for row in rows])
    estimates = np.array([row["length"] for row in rows])
    assert np.all(np.abs(estimates - tokens) <= 0.25 * tokens + 20), np.c_[estimates, tokens]
    assert np.corrcoef(estimates, tokens)[0, 1] > 0.95
