"""Shared pytest fixtures: the reference fixtures of the original Qwen-Audio implementation."""

import os
from pathlib import Path

import pytest


REPO_ROOT = Path(__file__).resolve().parent.parent


def _reference_dir() -> Path:
    override = os.environ.get("QWEN_AUDIO_REFERENCE_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "qwen_audio_reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference folder (`../shared/qwen_audio_reference` or `$QWEN_AUDIO_REFERENCE_DIR`); skips when absent."""
    path = _reference_dir()
    if not (path / "manifest.json").is_file():
        pytest.skip(f"Qwen-Audio reference fixtures not found at {path}")
    return path
