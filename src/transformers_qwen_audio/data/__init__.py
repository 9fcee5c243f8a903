"""The tiny multitask dataset (synthetic speech from a 40-word vocabulary + five sound classes), built on first use."""

from .sounds import SOUND_LABELS, generate_sound
from .tiny_multitask import WORDS, TinyMultitaskConfig, build_tiny_multitask, ensure_tiny_multitask


__all__ = ["SOUND_LABELS", "WORDS", "TinyMultitaskConfig", "build_tiny_multitask", "ensure_tiny_multitask", "generate_sound"]
