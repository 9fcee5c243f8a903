"""The fast tokenizer against the original QWenTokenizer of Qwen-Audio (ids and decoding from the fixtures)."""

import json
import shutil

import pytest
from transformers import AutoTokenizer

from transformers_qwen_audio import QwenAudioTokenizerFast


def _manifest(reference_dir):
    return json.loads((reference_dir / "manifest.json").read_text(encoding="utf-8"))


TOKENIZER_CASE_KEYS = [str(index) for index in range(30)]
DECODE_CASE_INDICES = list(range(5))

# Ids verified against the fixtures of the original tokenizer.
KNOWN_SPECIAL_TOKEN_IDS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|extra_0|>": 151646,
    "<|extra_204|>": 151850,
    "[[[AUDIO:modality]]]": 151851,
    "<|startoftranscript|>": 151852,
    "<|startofanalysis|>": 151853,
    "<|translate|>": 151854,
    "<|transcribe|>": 151855,
    "<|caption|>": 151856,
    "<|keyword|>": 151857,
    "<|unknown|>": 151858,
    "<|en|>": 151859,
    "<|notimestamps|>": 151868,
    "<|sil|>": 151869,
    "<|timestamps|>": 151870,
    "<|0.00|>": 151871,
    "<|30.00|>": 154871,
    "<|caption_clotho|>": 154873,
    "<|wo_itn|>": 154877,
    "<|pitch|>": 154890,
    "<|midi_pitch_60|>": 154951,
    "<|velocity|>": 155019,
    "<|midi_velocity_100|>": 155120,
    "<|instrument|>": 155149,
    "<|question|>": 155152,
    "<|answer|>": 155153,
    "<audio>": 155163,
    "</audio>": 155164,
}


def test_case_count_matches_manifest(manifest):
    assert sorted(manifest["tokenizer_cases"], key=int) == TOKENIZER_CASE_KEYS
    assert len(manifest["decode_cases"]) == len(DECODE_CASE_INDICES)


@pytest.mark.parametrize("case_key", TOKENIZER_CASE_KEYS)
def test_encode_matches_original(tokenizer, manifest, case_key):
    case = manifest["tokenizer_cases"][case_key]
    assert tokenizer(case["text"])["input_ids"] == case["ids"]


@pytest.mark.parametrize("case_index", DECODE_CASE_INDICES)
def test_decode_matches_original(tokenizer, manifest, case_index):
    case = manifest["decode_cases"][case_index]
    assert tokenizer.decode(case["ids"]) == case["text"]


@pytest.mark.parametrize("token, token_id", sorted(KNOWN_SPECIAL_TOKEN_IDS.items(), key=lambda item: item[1]))
def test_special_token_ids(tokenizer, token, token_id):
    assert tokenizer.convert_tokens_to_ids(token) == token_id
    assert tokenizer(token)["input_ids"] == [token_id]


def test_vocabulary_size_and_named_tokens(tokenizer):
    assert len(tokenizer) == 155165
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.eos_token_id == 151643
    assert tokenizer.pad_token_id == 151643
    assert tokenizer.padding_side == "left"
    assert (tokenizer.audio_start_token_id, tokenizer.audio_end_token_id, tokenizer.audio_pad_token_id) == (
        155163,
        155164,
        151851,
    )


def test_skip_special_tokens_drops_every_special_token(tokenizer):
    ids = tokenizer("<|startoftranscript|><|en|>hello<|0.54|> world<|endoftext|>")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "hello world"


def test_batch_padding_is_left(tokenizer):
    batch = tokenizer(["a", "a b c d"], padding=True)
    assert batch["attention_mask"][0][0] == 0 and batch["attention_mask"][0][-1] == 1
    assert batch["input_ids"][0][0] == tokenizer.pad_token_id


def test_save_and_reload_is_identical(tokenizer, manifest, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    assert not (tmp_path / "qwen.tiktoken").exists()
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert "auto_map" not in config
    for reloaded in (QwenAudioTokenizerFast.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)):
        assert isinstance(reloaded, QwenAudioTokenizerFast)
        assert reloaded.padding_side == "left" and reloaded.pad_token_id == tokenizer.pad_token_id
        for case in manifest["tokenizer_cases"].values():
            assert reloaded(case["text"])["input_ids"] == case["ids"]
        for case in manifest["decode_cases"]:
            assert reloaded.decode(case["ids"]) == case["text"]


def _trapped_copy(released_dir, tmp_path):
    """A copy of the released folder whose remote code raises if anything executes it."""
    trapped = tmp_path / "released"
    shutil.copytree(released_dir, trapped)
    for module in ("tokenization_qwen.py", "configuration_qwen.py", "modeling_qwen.py"):
        (trapped / module).write_text('raise RuntimeError("remote code of the released folder was executed")\n')
    return trapped


def test_auto_tokenizer_on_released_layout_runs_no_remote_code(released_dir, manifest, tmp_path):
    trapped = _trapped_copy(released_dir, tmp_path)
    tokenizer_config = json.loads((trapped / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "QWenTokenizer" and "auto_map" in tokenizer_config
    for loaded in (AutoTokenizer.from_pretrained(trapped), QwenAudioTokenizerFast.from_pretrained(trapped)):
        assert isinstance(loaded, QwenAudioTokenizerFast)
        for case in manifest["tokenizer_cases"].values():
            assert loaded(case["text"])["input_ids"] == case["ids"]


def test_missing_vocabulary_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="qwen.tiktoken|not found"):
        QwenAudioTokenizerFast(vocab_file=str(tmp_path / "qwen.tiktoken"))
    with pytest.raises(ValueError, match="tokenizer.json"):
        QwenAudioTokenizerFast()
