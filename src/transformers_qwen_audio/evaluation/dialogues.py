# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Scores a chat checkpoint on generated dialogues (`data.tiny_chat`): every assistant turn of a split is answered by
the model through `pipeline("audio-chat")`, greedy, given the conversation before it with the reference replies of
the earlier turns, and scored by its question type:

- `transcription`: corpus WER of the transcript (the quoted text of `The person says: "..."`, or the bare reply
  without its word times);
- `grounding`: the share of replies whose two timestamps are both within `GROUNDING_TOLERANCE` seconds of the
  reference's, and the mean absolute error of the start and end times found;
- every other type: exact match of the answer with the reference's (case, spaces and a final period aside), the
  answer being the reply's last sentence: a count or position reply may say the transcript first (`The person
  says: "left turn seven". The third word is "seven".`), and only what follows it answers the question.

Results have the shape of `evaluation.runner`'s (one per question type), so that `results.markdown_table` and the
model card's `model-index` take them as they are.
"""

import json
import math
import re
from pathlib import Path

from ..word_timestamps import parse_word_timestamps
from .metrics import corpus_word_error_rate


GROUNDING_TOLERANCE = 0.15
_QUOTED_TRANSCRIPT = re.compile(r'^The person says: "(.*)"\.?$')
_TIMESTAMP = re.compile(r"<\|(\d{1,2}\.\d{2})\|>")
# A sentence ends at a period (after a closing quote or not) followed by a capitalised word.
_SENTENCE_END = re.compile(r'(?<=\.)\s+(?=[A-Z])')


def absolute_audio(messages: list[dict], audio_base_dir: Path) -> list[dict]:
    """The conversation with each clip path resolved against the dataset's clip folder."""
    return [
        {**message, "content": [
            {**part, "audio": str(audio_base_dir / part["audio"])} if part["type"] == "audio" else part
            for part in message["content"]
        ]}
        for message in messages
    ]


def reply_requests(dialogues: list[dict], audio_base_dir: Path) -> list[dict]:
    """One request per assistant turn: the conversation before it, its reference reply and question type."""
    requests = []
    for index, dialogue in enumerate(dialogues):
        messages = absolute_audio(dialogue["messages"], audio_base_dir)
        replies = [position for position, message in enumerate(messages) if message["role"] == "assistant"]
        if len(replies) != len(dialogue["question_types"]):
            raise ValueError(f"Dialogue {index}: {len(replies)} replies but "
                             f"{len(dialogue['question_types'])} question types.")
        for position, question_type in zip(replies, dialogue["question_types"]):
            reference = "".join(part["text"] for part in messages[position]["content"])
            requests.append({"messages": messages[:position], "reference": reference, "type": question_type})
    return requests


def normalized(text: str) -> str:
    return " ".join(text.strip().lower().split()).removesuffix(".")


def answer(reply: str) -> str:
    """The last sentence of a reply, normalized."""
    return normalized(_SENTENCE_END.split(reply.strip())[-1])


def transcript(reply: str) -> str:
    """The words of a transcription reply: the quoted text, or the bare reply without its word times, if any."""
    match = _QUOTED_TRANSCRIPT.match(reply.strip())
    return match.group(1) if match else " ".join(word["text"] for word in parse_word_timestamps(reply))


def timestamps(reply: str) -> list[float]:
    return [float(value) for value in _TIMESTAMP.findall(reply)]


def score_type(question_type: str, references: list[str], replies: list[str]) -> dict:
    """The metrics of one question type's replies."""
    if question_type == "transcription":
        return {"wer": corpus_word_error_rate([transcript(text) for text in references],
                                              [transcript(text) for text in replies])}
    if question_type == "grounding":
        errors = []
        for reference, reply in zip(references, replies, strict=True):
            expected, found = timestamps(reference), timestamps(reply)
            errors.append([abs(a - b) for a, b in zip(expected, found)] if len(found) == len(expected) else None)
        found_errors = [error for pair in errors if pair is not None for error in pair]
        return {
            "within_tolerance": sum(pair is not None and max(pair) <= GROUNDING_TOLERANCE
                                    for pair in errors) / len(errors),
            "boundary_mae": sum(found_errors) / len(found_errors) if found_errors else math.nan,
        }
    matches = [answer(reference) == answer(reply) for reference, reply in zip(references, replies, strict=True)]
    return {"accuracy": sum(matches) / len(matches)}


def score_dialogue_replies(requests: list[dict], replies: list[str], dataset: str, split: str) -> list[dict]:
    """One result per question type present, in the shape of the benchmark runner's results."""
    results = []
    for question_type in dict.fromkeys(request["type"] for request in requests):
        chosen = [index for index, request in enumerate(requests) if request["type"] == question_type]
        metrics = score_type(question_type, [requests[index]["reference"] for index in chosen],
                             [replies[index] for index in chosen])
        results.append({
            "benchmark": f"tiny_chat_{question_type}", "task": "aqa", "dataset": dataset, "split": split,
            "metrics": metrics, "paper": {}, "num_samples": len(chosen),
        })
    return results


def evaluate_dialogues(model_dir: str, chat_data_dir: str, split: str = "test", batch_size: int = 16,
                       max_dialogues: int | None = None, max_new_tokens: int = 96,
                       output_dir: str | None = None, update_model_card: bool = False) -> list[dict]:
    """Answers and scores the dialogues of `split`; writes `results.json` / `results.md` and the predictions to
    `output_dir` when given, and the results into the checkpoint's model card with `update_model_card`."""
    from transformers import pipeline

    from .results import atomic_write_text, write_results
    from .runner import _update_model_card

    chat_data_dir = Path(chat_data_dir)
    build = json.loads((chat_data_dir / "build_config.json").read_text())
    lines = (chat_data_dir / f"{split}.jsonl").read_text().splitlines()
    dialogues = [json.loads(line) for line in lines[:max_dialogues]]
    requests = reply_requests(dialogues, Path(build["audio_base_dir"]))
    pipe = pipeline("audio-chat", model=str(model_dir))
    outputs = pipe([request["messages"] for request in requests], batch_size=batch_size, do_sample=False,
                   max_new_tokens=max_new_tokens, return_full_text=False, skip_special_tokens=False)
    replies = [output[0]["generated_text"].strip() for output in outputs]
    results = score_dialogue_replies(requests, replies, dataset=str(chat_data_dir), split=split)
    if output_dir is not None:
        predictions = [{"type": request["type"], "reference": request["reference"], "reply": reply}
                       for request, reply in zip(requests, replies)]
        atomic_write_text(Path(output_dir) / "predictions" / "tiny_chat.jsonl",
                          "".join(json.dumps(line) + "\n" for line in predictions))
        write_results(results, output_dir, model_name=Path(model_dir).name)
    if update_model_card:
        _update_model_card(str(model_dir), Path(model_dir).name, results)
    return results


__all__ = ["GROUNDING_TOLERANCE", "evaluate_dialogues", "reply_requests", "score_dialogue_replies"]
