"""The fine-tuning recipe with a weighted mixture of audio-chat and pure-text chat sources (held-out loss drops), and
`qwen-audio merge-lora` (merged logits equal base + adapter; the adapter loads with PEFT on the released layout)."""

import json
import math

import numpy as np
import pytest
import soundfile
import torch

from test_recipe_sft import TINY_DATASET, TINY_SFT, argv, load_recipe, tiny_setup, train  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def recipe():
    return load_recipe()


@pytest.fixture(scope="module")
def chat_sources(tiny_setup, tmp_path_factory):  # noqa: F811
    """An audio-chat source (train/test jsonl, relative clip paths) and a text-only chat source (parquet)."""
    from datasets import Dataset

    _, audio_root = tiny_setup
    folder = tmp_path_factory.mktemp("chat-sources")
    (folder / "audio").mkdir()
    rows = {"train": [], "test": []}
    time_axis = np.arange(8000) / 16000
    for index, frequency in enumerate((300, 500, 700, 900, 1100, 1300, 1500, 1700)):
        name = f"audio/tone_{frequency}.wav"
        soundfile.write(folder / name, (0.3 * np.sin(2 * np.pi * frequency * time_axis)).astype(np.float32), 16000)
        answer = "A low tone." if frequency < 1000 else "A high tone."
        rows["test" if index in (2, 6) else "train"].append({"messages": [
            {"role": "user", "content": [{"type": "audio", "audio": name}, {"type": "text", "text": "What is it?"}]},
            {"role": "assistant", "content": answer},
        ]})
    for split, split_rows in rows.items():
        (folder / f"audio_chat_{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in split_rows))
    words = ["apple", "river", "stone", "cloud", "green", "seven"]
    text_rows = [{"messages": [{"role": "user", "content": f"Repeat: {word}"}, {"role": "assistant", "content": word}]}
                 for word in words]
    (folder / "text_chat").mkdir()
    Dataset.from_list(text_rows[:4]).to_parquet(str(folder / "text_chat" / "train.parquet"))
    Dataset.from_list(text_rows[4:]).to_parquet(str(folder / "text_chat" / "test.parquet"))
    return folder


def test_weighted_audio_and_text_chat_mixture_lowers_held_out_loss(recipe, tiny_setup, chat_sources, tmp_path):  # noqa: F811
    model_dir, _ = tiny_setup
    config = tmp_path / "mixture.yaml"
    config.write_text(
        TINY_SFT.read_text().replace("dataset_name: examples/data/tiny_sft.jsonl", "")
        + f"""
chat_datasets:
  - path: json
    data_files: {{train: {chat_sources / 'audio_chat_train.jsonl'}, test: {chat_sources / 'audio_chat_test.jsonl'}}}
    data_dir: {chat_sources}
    split: train
    eval_split: test
    weight: 2.0
  - path: {chat_sources / 'text_chat'}
    data_files: {{train: train.parquet, test: test.parquet}}
    split: train
    eval_split: test
    weight: 1.0
"""
    )
    trainer = train(recipe, argv(
        config, "--model_name_or_path", model_dir, "--output_dir", tmp_path / "out", "--audio_base_dir", "",
        "--use_peft", "false", "--max_steps", "12", "--per_device_train_batch_size", "4", "--learning_rate", "3e-3",
        "--eval_strategy", "steps", "--eval_steps", "12", "--eval_on_start", "true", "--save_strategy", "no",
    ))
    data = trainer.train_dataset
    kinds = [isinstance(row["messages"][0]["content"], str) for row in data]
    assert 0 < sum(kinds) < len(kinds)  # text-only and audio conversations in one training set
    eval_losses = [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(eval_losses) >= 2 and all(math.isfinite(loss) for loss in eval_losses)
    assert eval_losses[-1] < 0.7 * eval_losses[0], eval_losses


def test_merge_lora_gives_the_logits_of_base_plus_adapter(recipe, tiny_setup, tmp_path):  # noqa: F811
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoProcessor

    from transformers_qwen_audio.cli import main as cli_main

    model_dir, audio_dir = tiny_setup
    adapter_dir = tmp_path / "adapter"
    train(recipe, argv(
        TINY_SFT, "--model_name_or_path", model_dir, "--dataset_name", TINY_DATASET,
        "--audio_base_dir", audio_dir, "--output_dir", adapter_dir, "--save_strategy", "no",
        # A large learning rate so that the adapter really moves the logits.
        "--learning_rate", "5e-2", "--max_steps", "2",
    ))
    merged_dir = tmp_path / "merged"
    assert cli_main(["merge-lora", str(model_dir), str(adapter_dir), str(merged_dir)]) == 0
    assert not (merged_dir / "adapter_config.json").exists()
    assert not any(path.name.startswith(".merged.partial") for path in tmp_path.iterdir())

    processor = AutoProcessor.from_pretrained(merged_dir)
    conversation = [{"role": "user", "content": [
        {"type": "audio", "audio": str(audio_dir / "audio" / "chirp_up.wav")}, {"type": "text", "text": "What?"}]}]
    inputs = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(model_dir).eval()  # the released layout
    with torch.no_grad():
        base_logits = base(**inputs).logits
        with_adapter = PeftModel.from_pretrained(base, adapter_dir).eval()(**inputs).logits
        merged_logits = AutoModelForCausalLM.from_pretrained(merged_dir).eval()(**inputs).logits
    assert not torch.allclose(base_logits, with_adapter, atol=1e-3)  # the adapter matters
    torch.testing.assert_close(merged_logits, with_adapter, atol=1e-4, rtol=1e-4)

    # Refuses to overwrite without --overwrite, and names a missing adapter.
    assert cli_main(["merge-lora", str(model_dir), str(adapter_dir), str(merged_dir)]) == 2
    assert cli_main(["merge-lora", str(model_dir), str(tmp_path / "nothing"), str(tmp_path / "x")]) == 2
