"""`python -m transformers_qwen_audio.demo` runs the `qwen-audio demo` command."""

import sys

from ..cli.demo import main


sys.exit(main())
