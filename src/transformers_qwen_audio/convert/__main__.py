"""`python -m transformers_qwen_audio.convert` runs the `qwen-audio convert` command."""

import sys

from ..cli.convert import main


sys.exit(main())
