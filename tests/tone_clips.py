"""A 400 Hz tone written as a 16 kHz WAV: the stand-in clip of the collator and augmentation tests."""

import numpy as np
import soundfile


def write_tone(path, seconds: float, rate: int = 16000) -> None:
    time_axis = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 400 * time_axis)).astype(np.float32), rate)
