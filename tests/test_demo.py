"""The README's main job: an embedded tiny released checkpoint, converted, then a batched audio chat turn."""

from transformers_qwen_audio import demo


def test_demo_converts_and_chats(tmp_path, capsys):
    assert demo.main(["--workdir", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    assert '"bit_identical_logits_released_vs_native": true' in report
    assert '"audio_tokens_in_prompt_1": 62' in report  # 2.5 s -> 250 mel frames -> 125 conv frames -> 62 tokens
    assert (tmp_path / "native" / "tokenizer.json").is_file()
    assert not (tmp_path / "native" / "qwen.tiktoken").exists()
