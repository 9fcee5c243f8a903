"""The end of a recipe: every process saves (so sharded weights can be gathered), only the main process writes the
card and uploads, and nobody leaves before the upload is done."""

from types import SimpleNamespace

import pytest

from transformers_qwen_audio.training import save_and_push


class FakeTrainer:
    def __init__(self, is_main_process: bool, push_to_hub: bool, calls: list):
        self.calls = calls
        self.args = SimpleNamespace(output_dir="out", push_to_hub=push_to_hub, hub_model_id="me/model", hub_token=None,
                                    hub_revision=None)
        self.accelerator = SimpleNamespace(is_main_process=is_main_process,
                                           wait_for_everyone=lambda: calls.append("wait"))
        self.model = SimpleNamespace(config=SimpleNamespace(use_cache=False,
                                                            save_pretrained=lambda folder: calls.append("config")))

    def save_model(self, folder):
        self.calls.append("save_model")

    def create_model_card(self, **kwargs):
        self.calls.append(("card", kwargs))


@pytest.mark.parametrize("is_main_process", [True, False])
def test_only_the_main_process_writes_the_card_and_uploads(monkeypatch, is_main_process):
    import huggingface_hub

    calls, uploads = [], []
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kwargs: uploads.append(kwargs))
    trainer = FakeTrainer(is_main_process, push_to_hub=True, calls=calls)
    save_and_push(trainer, {"model_name": "model"})
    assert calls[0] == "save_model" and calls[-1] == "wait"  # every process saves, then waits for the upload
    if is_main_process:
        assert ("card", {"model_name": "model"}) in calls and "config" in calls
        assert trainer.model.config.use_cache is True
        assert len(uploads) == 1 and uploads[0]["repo_id"] == "me/model" and uploads[0]["folder_path"] == "out"
        assert "checkpoint-*" in uploads[0]["ignore_patterns"]
    else:
        assert calls == ["save_model", "wait"] and uploads == []


def test_no_upload_without_push_to_hub(monkeypatch):
    import huggingface_hub

    uploads = []
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kwargs: uploads.append(kwargs))
    save_and_push(FakeTrainer(True, push_to_hub=False, calls=[]), {})
    assert uploads == []
