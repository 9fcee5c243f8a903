# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The metrics of the original evaluation (QwenLM/Qwen-Audio `eval_audio/evaluate_*.py`), with its text normalisation,
computed with jiwer and sacrebleu (`evaluate.load` would fetch metric code from the Hub).

- ASR / SRWT word error rate: special tokens removed (`remove_special_tokens`), sacrebleu's `none` tokeniser,
  lowercased, then corpus edit distance / reference length; Chinese by character. English ASR adds two named
  columns that the paper does not report: `wer_whisper_basic` (Whisper's basic normaliser) and
  `wer_english_normalizer` (the Open ASR leaderboard's: Whisper's English normaliser with its spelling mapping).
- Translation: `sacrebleu.corpus_bleu` with the `13a` tokeniser, `zh` for Chinese and `ja-mecab` for Japanese output.
- Classification / AQA: exact-match accuracy of the stripped reply (the original's `accuracy_score(refs, hyps)`).
- SRWT: WER plus the average shift of the word boundaries (`AverageShiftCalculator`).
- Captions: BLEU-1..4, ROUGE-L and CIDEr-D with pycocoevalcap's scorers; METEOR and SPICE need Java and Stanford
  models (the original downloads them), so they are optional and reported as missing here.
"""

import math
import re
import unicodedata

import jiwer

from ..word_timestamps import parse_word_timestamps


PUNCTUATION = "!,.?;:"
_SPECIAL_TOKEN = re.compile(r"<\|.*?\|>")


def remove_special_tokens(text: str, language: str = "en") -> str:
    """The original's `remove_sp`: `<|...|>` tokens become spaces, spaces are collapsed and removed before
    punctuation; Chinese loses every space."""
    text = _SPECIAL_TOKEN.sub(" ", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(f" ?([{re.escape(PUNCTUATION)}])", r"\1", text)
    text = text.lstrip(" ")
    if language == "zh":
        text = re.sub(r"\s+", "", text)
    return text


def _evaluation_tokens(text: str, language: str) -> list[str]:
    """The original's `EvaluationTokenizer(tokenizer_type="none", lowercase=True)` then split; characters for zh."""
    from sacrebleu.tokenizers.tokenizer_none import NoneTokenizer  # sacrebleu's "none": the text as it is

    items = NoneTokenizer()(text).lower().split()
    if language == "zh":
        items = list("".join(items))
    return items


def corpus_word_error_rate(references: list[str], hypotheses: list[str], language: str = "en") -> float:
    """Sum of edit distances over sum of reference lengths (words; characters for zh), after the original's
    normalisation of both sides. Texts may still hold special tokens: they are removed here."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses.")
    errors = reference_length = 0
    for reference, hypothesis in zip(references, hypotheses):
        reference_items = _evaluation_tokens(remove_special_tokens(reference, language), language)
        hypothesis_items = _evaluation_tokens(remove_special_tokens(hypothesis, language), language)
        reference_length += len(reference_items)
        errors += _edit_distance(reference_items, hypothesis_items)
    if reference_length == 0:
        raise ValueError("The references are empty: a word error rate needs reference words.")
    return errors / reference_length


def _edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    if not reference:
        return len(hypothesis)
    # jiwer joins the items with spaces and splits them again: items never contain spaces here.
    output = jiwer.process_words(" ".join(reference), " ".join(hypothesis) if hypothesis else "")
    return output.substitutions + output.deletions + output.insertions


def whisper_basic_word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """A second column, named as such: Whisper's `BasicTextNormalizer` (lowercase, no punctuation or marks) then
    corpus WER. Not what the paper reports."""
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    return _normalized_word_error_rate(BasicTextNormalizer(), references, hypotheses)


def english_normalizer_word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """A second column, named as such: the Open ASR leaderboard's normalisation (transformers' Whisper
    `EnglishTextNormalizer` with Whisper's British -> American spelling mapping: numbers, contractions, fillers,
    punctuation) then corpus WER. Not what the paper reports."""
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    from .english_spelling import ENGLISH_SPELLING

    return _normalized_word_error_rate(EnglishTextNormalizer(ENGLISH_SPELLING), references, hypotheses)


def _normalized_word_error_rate(normalizer, references: list[str], hypotheses: list[str]) -> float:
    return corpus_word_error_rate(
        [normalizer(remove_special_tokens(text)) for text in references],
        [normalizer(remove_special_tokens(text)) for text in hypotheses],
    )


SACREBLEU_TOKENIZER = {"zh": "zh", "ja": "ja-mecab"}  # every other output language: 13a


def corpus_bleu(references: list[str], hypotheses: list[str], output_language: str = "en") -> float:
    """sacrebleu corpus BLEU (0-100) with the original's tokeniser choice for the output language."""
    import sacrebleu

    return sacrebleu.corpus_bleu(
        hypotheses, [references], tokenize=SACREBLEU_TOKENIZER.get(output_language, "13a")
    ).score


def exact_match_accuracy(references: list[str], hypotheses: list[str]) -> float:
    """`accuracy_score(refs, hyps)` of the original: the stripped reply must equal the label."""
    if not references:
        raise ValueError("No examples to score.")
    return sum(ref.strip() == hyp.strip() for ref, hyp in zip(references, hypotheses, strict=True)) / len(references)


def yes_no_accuracy(references: list[str], hypotheses: list[str]) -> float | None:
    """ClothoAQA's `bi_ACC`: accuracy on the questions whose answer is yes or no (None when there are none)."""
    pairs = [(ref, hyp) for ref, hyp in zip(references, hypotheses) if ref.strip().lower() in ("yes", "no")]
    return exact_match_accuracy(*zip(*pairs)) if pairs else None


def nsynth_instrument(text: str) -> str:
    """The instrument of a note-analysis reply (`...<|instrument|>NAME<...`), as the original's `get_note_info`."""
    found = re.findall(r"<\|instrument\|>(.*)", text)
    return found[0].split("<")[0] if found else ""


def instrument_accuracy(references: list[str], hypotheses: list[str]) -> float:
    return exact_match_accuracy([nsynth_instrument(r) for r in references], [nsynth_instrument(h) for h in hypotheses])


def _aligned_equal_pairs(reference_words: list[str], hypothesis_words: list[str]) -> list[tuple[int, int]]:
    """Index pairs of the words that an edit-distance alignment matches as equal."""
    if not reference_words or not hypothesis_words:
        return []
    alignment = jiwer.process_words(" ".join(reference_words), " ".join(hypothesis_words)).alignments[0]
    pairs = []
    for chunk in alignment:
        if chunk.type == "equal":
            pairs.extend(zip(range(chunk.ref_start_idx, chunk.ref_end_idx), range(chunk.hyp_start_idx, chunk.hyp_end_idx)))
    return pairs


def word_boundary_errors(reference_words: list[list[dict]], hypothesis_texts: list[str]) -> dict:
    """
    Timing of the words both sides agree on (aligned by edit distance, as the original's `AverageShiftCalculator`).

    `reference_words[i]` is `[{"word", "start", "end"}, ...]`; `hypothesis_texts[i]` the raw timestamped output,
    starting with the prompt's first timestamp (`<|0.00|>`), parsed by `word_timestamps.parse_word_timestamps`.

    Returns `average_shift` (the original's figure: |start error| + |end error| summed over matched words, divided
    by their number, in seconds), `boundary_mae` (the mean absolute error of one boundary: half of it),
    `matched_words` and `reference_words`.
    """
    shift = 0.0
    matched = total = 0
    for words, text in zip(reference_words, hypothesis_texts, strict=True):
        total += len(words)
        hypothesis = [chunk for chunk in parse_word_timestamps(text) if None not in chunk["timestamp"]]
        reference_tokens = [word["word"].lower() for word in words]
        hypothesis_tokens = [chunk["text"].lower().replace(" ", "_") for chunk in hypothesis]
        for ref_index, hyp_index in _aligned_equal_pairs(reference_tokens, hypothesis_tokens):
            start, end = hypothesis[hyp_index]["timestamp"]
            shift += abs(start - words[ref_index]["start"]) + abs(end - words[ref_index]["end"])
            matched += 1
    average_shift = shift / matched if matched else math.nan
    return {
        "average_shift": average_shift,
        "boundary_mae": average_shift / 2 if matched else math.nan,
        "matched_words": matched,
        "reference_words": total,
    }


def caption_scores(references: list[list[str]], hypotheses: list[str]) -> dict:
    """BLEU-1..4, ROUGE-L, CIDEr(-D) with pycocoevalcap's scorers (pure Python) on lowercased, punctuation-free
    tokens (what the PTB tokenizer of the original gives for captions, without Java). METEOR/SPICE: not computed."""
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError as error:
        raise ImportError(
            "Caption metrics need pycocoevalcap: pip install 'transformers-qwen-audio[captions]' (SPICE and METEOR "
            "additionally need Java and the Stanford models, and are not computed)."
        ) from error

    def tokenize(text: str) -> str:
        text = remove_special_tokens(text).lower()
        kept = "".join(" " if unicodedata.category(char)[0] == "P" else char for char in text)
        return " ".join(kept.split())

    gts = {index: [tokenize(ref) for ref in refs] for index, refs in enumerate(references)}
    res = {index: [tokenize(hyp)] for index, hyp in enumerate(hypotheses)}
    scores = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores.update({f"BLEU_{n}": value for n, value in enumerate(bleu, start=1)})
    scores["ROUGE_L"], _ = Rouge().compute_score(gts, res)
    scores["CIDEr"], _ = Cider().compute_score(gts, res)
    return {name: float(value) for name, value in scores.items()}
