"""Shared pytest fixtures: the reference fixtures of the original Qwen-Audio implementation."""

from pathlib import Path

import pytest

from reference_cases import reference_path

# Session fixtures over the reference folder (manifest, features, processor, ...), available to every test.
pytest_plugins = ["processor_fixtures"]


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference folder (`../shared/qwen_audio_reference` or `$QWEN_AUDIO_REFERENCE_DIR`); skips when absent."""
    path = reference_path()
    if not (path / "manifest.json").is_file():
        pytest.skip(f"Qwen-Audio reference fixtures not found at {path}")
    return path
