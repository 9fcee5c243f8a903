"""`python -m transformers_qwen_audio.cli` runs `qwen-audio`."""

import sys

from . import main


sys.exit(main())
