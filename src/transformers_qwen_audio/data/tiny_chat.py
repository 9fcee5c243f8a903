# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
Instruction dialogues for the tiny Qwen-Audio-Chat (the paper's second stage), generated, seeded, from the tiny
multitask dataset (`tiny_multitask.py`): each split's dialogues use the clips of the same split, so `validation` is
the one to tune on and `test` stays held out.

Every dialogue is a `messages` conversation in the released chat format (the chat template renders each clip as
`Audio N:<audio>...</audio>\\n`, `assets/sft_sample.txt`), one to three turns, and a `question_types` column naming
each assistant reply's question type (`QUESTION_TYPES`), which `evaluation.dialogues` scores, and a `length` column
(an estimate of its tokens, for length-grouped batches: `train_sampling_strategy: group_by_length`):

- `transcription`: what is said (`The person says: "..."`), and the plain instruction `task="transcribe"` sends to a
  chat checkpoint (`task_prompts.chat_task_instruction`), answered with the bare transcript;
- `word_position`, `word_count`: the word at a position, the number of words;
- `grounding`: `Find the start time and end time of the word "X"` -> `The word "X" starts at <|a|> seconds and ends
  at <|b|> seconds.` (the 10 ms grid of the timestamp tokens), for words said once;
- `sound_kind`: what kind of sound a clip is (speech or one of the five classes), and `task="event"`'s instruction,
  answered with the bare label as in pre-training;
- `two_clips`: two clips in one turn: which one is speech / a given sound, are they the same kind of sound;
- `follow_up`: a question about the first turn's clip asked two turns later without repeating it;
- `pure_text`: questions about the vocabulary's words and numbers that need no audio (the paper mixes pure-text
  dialogues in). Their pool of facts is small and finite, so the held-out splits ask the same facts as train.

Layout: `DIR/{train,validation,test}.jsonl` and a dataset card declaring them (so `load_dataset(DIR)` reads those
files only); clip paths are relative to the tiny multitask folder, recorded in `DIR/build_config.json`
(`audio_base_dir` of the SFT recipe).
"""

import argparse
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..checkpoint_files import staged_output
from ..task_prompts import chat_task_instruction
from ..word_timestamps import timestamp_token
from .sounds import SOUND_LABELS
from .tiny_multitask import SPLITS, WORDS


# Bump when the generated dialogues change, so that an older build is not reused.
CHAT_DATA_VERSION = 2
QUESTION_TYPES = (
    "transcription", "word_position", "word_count", "grounding", "sound_kind", "two_clips", "follow_up", "pure_text",
)
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
OPPOSITES = {"yes": "no", "up": "down", "left": "right", "on": "off", "stop": "go", "black": "white",
             "big": "small", "open": "close"}
OPPOSITES.update({second: first for first, second in list(OPPOSITES.items())})
# How a reply names each kind of sound ("This is a chirp.").
SOUND_PHRASES = {"speech": "speech", "tone": "a tone", "chirp": "a chirp", "white noise": "white noise",
                 "brown noise": "brown noise", "clicks": "clicks"}
SOUND_KINDS = ("speech",) + SOUND_LABELS
TRANSCRIPTION_QUESTIONS = ("What does the person say?", "What is said in this clip?", "What words are spoken?")
COUNT_QUESTIONS = ("How many words are spoken?", "How many words does the person say?")
KIND_QUESTIONS = ("What kind of sound is this?", "What sound is this?")
# The `length` estimate (tokens of the tiny models' byte-level vocabulary): a character a token, the ChatML markers
# of a turn, and for a clip its `Audio N:<audio>...</audio>` text and its audio tokens (Whisper's 50 frames a second,
# pooled by 2).
TURN_TOKENS, AUDIO_SPAN_TOKENS, AUDIO_TOKENS_PER_SECOND = 24, 12, 25
# The dialogue shapes, with the share of each split's dialogues they get.
DIALOGUE_SHARES = {"speech": 0.3, "sound": 0.08, "task": 0.12, "two_clips": 0.18, "follow_up": 0.17, "text": 0.15}


@dataclass
class TinyChatConfig:
    """What to generate. The defaults are the dialogues of the tiny SFT recipe (`recipes/tiny/sft.yaml`)."""

    seed: int = 0
    num_train_dialogues: int = 8000
    num_validation_dialogues: int = 250
    num_test_dialogues: int = 250
    # Count and position replies say the transcript first when the conversation does not hold it yet (`The person
    # says: "left turn seven". The third word is "seven".`), so that the answer is a copy from text the model has just
    # written rather than a count over the audio. Off: the tiny chat model copies poorly from its context (it wrote
    # "The first word is" to "What is the last word?"), and on validation word position fell 0.59 -> 0.13 while the
    # count rose 0.49 -> 0.60 (docs/main_job.md, stop 34).
    transcript_first: bool = False

    def num_dialogues(self, split: str) -> int:
        return getattr(self, f"num_{split}_dialogues")


def user(*parts) -> dict:
    """A user message: clips (dataset rows) as audio parts in order, strings as text parts."""
    content = [{"type": "text", "text": part} if isinstance(part, str) else {"type": "audio", "audio": part["audio"]}
               for part in parts]
    return {"role": "user", "content": content}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def kind_of(clip: dict) -> str:
    return "speech" if "words" in clip else clip["label"]


def transcription_reply(clip: dict) -> str:
    return f'The person says: "{clip["text"]}".'


def kind_reply(clip: dict) -> str:
    return f"This is {SOUND_PHRASES[kind_of(clip)]}."


class DialogueGenerator:
    """Dialogues over one split's clips: `generator.dialogue()` -> {"messages", "question_types"}."""

    def __init__(self, speech: list[dict], sounds: list[dict], rng: np.random.Generator,
                 transcript_first: bool = TinyChatConfig.transcript_first):
        if not speech or not sounds:
            raise ValueError("Dialogues need both speech and sound clips; one of the lists is empty.")
        self.speech, self.sounds, self.rng, self.transcript_first = speech, sounds, rng, transcript_first
        self.durations = {clip["audio"]: clip["duration"] for clip in speech + sounds}

    def choice(self, options):
        return options[int(self.rng.integers(len(options)))]

    def any_clip(self) -> dict:
        return self.choice(self.speech) if self.rng.random() < 0.4 else self.choice(self.sounds)

    # One question about a speech clip (its text, and whether it holds the clip) -------------------------------------
    def speech_question(self, clip: dict, question_type: str, transcript_known: bool = False) -> tuple[str, str]:
        """`transcript_known`: the conversation already holds the clip's transcript; otherwise the count and position
        replies say it first (`transcript_first`)."""
        words = [item["word"] for item in clip["words"]]
        if question_type == "transcription":
            return self.choice(TRANSCRIPTION_QUESTIONS), transcription_reply(clip)
        lead = f"{transcription_reply(clip)} " if self.transcript_first and not transcript_known else ""
        if question_type == "word_count":
            return self.choice(COUNT_QUESTIONS), lead + f"The person says {NUMBER_WORDS[len(words)]} words."
        if question_type == "word_position":
            if self.rng.random() < 0.2:
                return "What is the last word?", lead + f'The last word is "{words[-1]}".'
            position = int(self.rng.integers(len(words)))
            return (f"What is the {ORDINALS[position]} word?",
                    lead + f'The {ORDINALS[position]} word is "{words[position]}".')
        if question_type == "grounding":
            said_once = [item for item in clip["words"] if words.count(item["word"]) == 1]
            item = self.choice(said_once or clip["words"][:1])
            start, end = timestamp_token(item["start"]), timestamp_token(item["end"])
            return (f'Find the start time and end time of the word "{item["word"]}"',
                    f'The word "{item["word"]}" starts at {start} seconds and ends at {end} seconds.')
        raise ValueError(f"No speech question of type {question_type!r}.")

    def grounding_possible(self, clip: dict) -> bool:
        words = [item["word"] for item in clip["words"]]
        return any(words.count(word) == 1 for word in words)

    def speech_question_type(self, clip: dict, exclude: tuple = ()) -> str:
        options = [name for name in ("transcription", "word_count", "word_position", "grounding")
                   if name not in exclude and (name != "grounding" or self.grounding_possible(clip))]
        return self.choice(options)

    def clip_question(self, clip: dict) -> tuple[str, str, str]:
        """A question about any clip: (question, reply, type)."""
        if "words" in clip:
            question_type = self.speech_question_type(clip)
            return (*self.speech_question(clip, question_type), question_type)
        return self.choice(KIND_QUESTIONS), kind_reply(clip), "sound_kind"

    @staticmethod
    def says_transcript(clip: dict, reply: str) -> bool:
        return "words" in clip and transcription_reply(clip) in reply

    # Pure text ------------------------------------------------------------------------------------------------------
    def text_question(self) -> tuple[str, str]:
        form = int(self.rng.integers(5))
        if form == 0:
            number = int(self.rng.integers(9))
            return f"What number comes after {NUMBER_WORDS[number]}?", f"{NUMBER_WORDS[number + 1].capitalize()}."
        if form == 1:
            number = int(self.rng.integers(1, 10))
            return f"What number comes before {NUMBER_WORDS[number]}?", f"{NUMBER_WORDS[number - 1].capitalize()}."
        if form == 2:
            first = int(self.rng.integers(10))
            second = int(self.rng.integers(10 - first))
            return (f"What is {NUMBER_WORDS[first]} plus {NUMBER_WORDS[second]}?",
                    f"{NUMBER_WORDS[first]} plus {NUMBER_WORDS[second]} is "
                    f"{NUMBER_WORDS[first + second]}.".capitalize())
        if form == 3:
            word = self.choice(sorted(OPPOSITES))
            return f'What is the opposite of "{word}"?', f'The opposite of "{word}" is "{OPPOSITES[word]}".'
        word = self.choice(WORDS)
        return (f'How many letters are in the word "{word}"?',
                f'The word "{word}" has {NUMBER_WORDS[len(word)]} letters.')

    # The dialogue shapes --------------------------------------------------------------------------------------------
    def speech_dialogue(self):
        """One speech clip, then one or two text-only questions about it (as the second sample of sft_sample.txt)."""
        clip = self.choice(self.speech)
        # What is said first, more often than not (the base of the other questions, as in sft_sample.txt).
        first_type = "transcription" if self.rng.random() < 0.4 else self.speech_question_type(clip)
        question, reply = self.speech_question(clip, first_type)
        turns = [(user(clip, question), reply, first_type)]
        known = self.says_transcript(clip, reply)
        for _ in range(int(self.rng.integers(0, 3))):
            question_type = self.speech_question_type(clip, exclude=("transcription",))
            question, reply = self.speech_question(clip, question_type, transcript_known=known)
            turns.append((user(question), reply, question_type))
            known = known or self.says_transcript(clip, reply)
        return turns

    def sound_dialogue(self):
        clip = self.choice(self.sounds)
        return [(user(clip, self.choice(KIND_QUESTIONS)), kind_reply(clip), "sound_kind")]

    def task_dialogue(self):
        """What `pipeline(task="transcribe" / "event")` asks a chat checkpoint, answered as the base model does."""
        if self.rng.random() < 0.5:
            clip = self.choice(self.speech)
            instruction = chat_task_instruction("transcribe", audio_language=self.choice((None, "en")))
            return [(user(clip, instruction), clip["text"], "transcription")]
        clip = self.any_clip()
        return [(user(clip, chat_task_instruction("event")), kind_of(clip), "sound_kind")]

    def two_clips_dialogue(self):
        first, second = self.any_clip(), self.any_clip()
        kinds = [kind_of(first), kind_of(second)]
        form = int(self.rng.integers(3))
        if form < 2 and kinds[0] != kinds[1]:
            # Which one is speech (when one is), else which one is a sound only one of them is.
            target = "speech" if form == 0 and "speech" in kinds else self.choice(kinds)
            which = "first" if kinds[0] == target else "second"
            question = f"Which clip is {SOUND_PHRASES[target]}?"
            reply = f"The {which} clip is {SOUND_PHRASES[target]}."
        else:
            question = "Are the two clips the same kind of sound?"
            if kinds[0] == kinds[1]:
                reply = f"Yes, both are {SOUND_PHRASES[kinds[0]]}."
            else:
                reply = f"No, the first is {SOUND_PHRASES[kinds[0]]} and the second is {SOUND_PHRASES[kinds[1]]}."
        return [(user(first, second, question), reply, "two_clips")]

    def follow_up_dialogue(self):
        """A clip, another clip, then a question about the first one that does not repeat it."""
        first, second = self.any_clip(), self.any_clip()
        turns = []
        for clip in (first, second):
            question, reply, question_type = self.clip_question(clip)
            turns.append((user(clip, question), reply, question_type))
        if "words" in first:
            question_type = self.speech_question_type(first, exclude=("grounding",))
            question, reply = self.speech_question(first, question_type,
                                                   transcript_known=any(self.says_transcript(first, earlier)
                                                                        for _, earlier, _ in turns))
        else:
            question, reply = self.choice(KIND_QUESTIONS), kind_reply(first)
        turns.append((user(f"Back to the first clip: {question[0].lower()}{question[1:]}"), reply, "follow_up"))
        return turns

    def text_dialogue(self):
        return [(user(question), reply, "pure_text")
                for question, reply in (self.text_question() for _ in range(int(self.rng.integers(1, 3))))]

    def dialogue(self, shape: str) -> dict:
        turns = getattr(self, f"{shape}_dialogue")()
        messages, length = [], 0
        for user_message, reply, _ in turns:
            messages += [user_message, assistant(reply)]
            length += TURN_TOKENS + len(reply) + sum(
                len(part["text"]) if part["type"] == "text"
                else AUDIO_SPAN_TOKENS + AUDIO_TOKENS_PER_SECOND * self.durations.get(part["audio"], 0.0)
                for part in user_message["content"])
        return {"messages": messages, "question_types": [question_type for *_, question_type in turns],
                "length": int(length)}


def read_split(multitask_dir: Path, subset: str, split: str) -> list[dict]:
    path = Path(multitask_dir) / subset / f"{split}.jsonl"
    if not path.is_file():
        raise ValueError(f"{multitask_dir} is not a tiny multitask dataset folder: {path} is missing.")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def generate_dialogues(multitask_dir: Path, split: str, count: int, seed: int,
                       transcript_first: bool = TinyChatConfig.transcript_first) -> list[dict]:
    """`count` dialogues over the clips of `split`, the shapes in the proportions of `DIALOGUE_SHARES`."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    generator = DialogueGenerator(read_split(multitask_dir, "speech", split), read_split(multitask_dir, "sounds", split),
                                  rng, transcript_first=transcript_first)
    shapes = list(DIALOGUE_SHARES)
    quotas = np.floor(np.array(list(DIALOGUE_SHARES.values())) * count).astype(int)
    quotas[0] += count - quotas.sum()
    order = rng.permutation(np.repeat(np.arange(len(shapes)), quotas))
    return [generator.dialogue(shapes[index]) for index in order]


DATASET_CARD = """---
configs:
- config_name: default
  data_files:
  - {{split: train, path: train.jsonl}}
  - {{split: validation, path: validation.jsonl}}
  - {{split: test, path: test.jsonl}}
task_categories:
- audio-text-to-text
language:
- en
---
# tiny-chat

Instruction dialogues built by `transformers_qwen_audio.data.tiny_chat` (version {version}, seed {seed}) from the
tiny multitask dataset in `{multitask_dir}`; clip paths are relative to that folder. Columns: `messages` (the chat
conversation), `question_types` (one per assistant reply: {types}). Dialogues per split: {counts}.
"""


def build_tiny_chat(multitask_dir: str | os.PathLike, output_dir: str | os.PathLike,
                    config: TinyChatConfig | None = None) -> Path:
    """Writes the three splits into `output_dir`, replaced whole (`checkpoint_files.staged_output`)."""
    config = config or TinyChatConfig()
    multitask_dir, output_dir = Path(multitask_dir).resolve(), Path(output_dir)
    with staged_output(output_dir) as staging:
        counts = {}
        for split in SPLITS:
            dialogues = generate_dialogues(multitask_dir, split, config.num_dialogues(split), config.seed,
                                           config.transcript_first)
            with open(staging / f"{split}.jsonl", "w") as handle:
                for dialogue in dialogues:
                    handle.write(json.dumps(dialogue) + "\n")
            counts[split] = len(dialogues)
        (staging / "README.md").write_text(DATASET_CARD.format(
            version=CHAT_DATA_VERSION, seed=config.seed, multitask_dir=multitask_dir,
            types=", ".join(QUESTION_TYPES), counts=", ".join(f"{split} {count}" for split, count in counts.items()),
        ))
        (staging / "build_config.json").write_text(json.dumps(build_record(multitask_dir, config), indent=1))
    return output_dir


def build_record(multitask_dir: Path, config: TinyChatConfig) -> dict:
    return {"version": CHAT_DATA_VERSION, "audio_base_dir": str(Path(multitask_dir).resolve()), **asdict(config)}


def ensure_tiny_chat(multitask_dir: str | os.PathLike, output_dir: str | os.PathLike,
                     config: TinyChatConfig | None = None) -> Path:
    """The dialogues folder, generated unless a build from the same dataset and settings is there."""
    config, output_dir = config or TinyChatConfig(), Path(output_dir)
    marker = output_dir / "build_config.json"
    if marker.is_file() and json.loads(marker.read_text()) == build_record(Path(multitask_dir), config):
        return output_dir
    return build_tiny_chat(multitask_dir, output_dir, config)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Generate the tiny chat dialogues from a tiny multitask dataset.")
    parser.add_argument("--multitask-dir", type=Path, required=True, help="a folder built by tiny_multitask")
    parser.add_argument("--output-dir", type=Path, required=True)
    for field, default in asdict(TinyChatConfig()).items():
        if isinstance(default, bool):
            parser.add_argument(f"--{field.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(f"--{field.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args(argv)
    settings = {field: getattr(args, field) for field in asdict(TinyChatConfig())}
    try:
        print(ensure_tiny_chat(args.multitask_dir, args.output_dir, TinyChatConfig(**settings)))
    except ValueError as error:
        parser.error(str(error))
    return 0


__all__ = ["QUESTION_TYPES", "TinyChatConfig", "build_tiny_chat", "ensure_tiny_chat", "generate_dialogues"]


if __name__ == "__main__":
    raise SystemExit(main())
