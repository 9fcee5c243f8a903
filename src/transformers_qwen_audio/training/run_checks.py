# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
What stops a training run, and how it says so: the recipe's arguments checked before anything loads (unknown keys
named with the closest known one, the seed, local paths that do not exist), and a non-finite loss, which stops the
run at its step naming the dataset rows of the batch (`StopOnNonFiniteLoss`, mixed into both stages' trainers).
`run_script` is what `python -m transformers_qwen_audio.recipes.NAME` runs: user errors as one line, exit status 2.
"""

import difflib
import os
import re
import sys

import torch
import yaml


# The collator's batch key (`QwenAudioCollator(return_example_rows=True)`) naming each example's dataset row; the
# trainers pop it before the model runs.
EXAMPLE_ROWS = "example_rows"
LOCAL_DATA_EXTENSIONS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
MAX_SEED = 2**32 - 1  # numpy's limit, which `set_seed` reaches
EXIT_USAGE_ERROR = 2
_UNUSED_ARGUMENTS = re.compile(r"^Some specified arguments are not used by the HfArgumentParser: (.*)$", re.S)


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite; the message names the step and the batch's dataset rows."""


class StopOnNonFiniteLoss:
    """
    Trainer mixin: a training step whose loss is NaN or infinite stops the run (`NonFiniteLossError`, naming the
    step and the dataset rows of the batch from the collator's `example_rows`) instead of training on: by default
    `Trainer` replaces such a loss in the log by the running mean (`logging_nan_inf_filter`) and goes on updating the
    weights with non-finite gradients. The test costs one host sync a step, in place of `logging_nan_inf_filter`'s
    (turned off: it would never filter); with several processes their flags are gathered, so that every process
    stops at the same step.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A non-finite loss stops the run here, so the Trainer's own filter would never filter: turning it off
        # keeps this test the step's only host sync for the loss.
        self.args.logging_nan_inf_filter = False

    def training_step(self, model, inputs, num_items_in_batch=None):
        rows = inputs.pop(EXAMPLE_ROWS, None)
        loss = super().training_step(model, inputs, num_items_in_batch)
        finite = torch.isfinite(loss).all().reshape(1).float()
        if self.accelerator.num_processes > 1:
            finite = self.accelerator.gather(finite)
        if not bool(finite.all()):
            step = self.state.global_step + 1
            if torch.isfinite(loss).all():
                failed = [index for index, flag in enumerate(finite.tolist()) if not flag]
                where = f"the batch of process(es) {failed} (their log names its rows)"
            else:
                where = f"the batch of {', '.join(rows)}" if rows else "this batch"
            raise NonFiniteLossError(
                f"Training stopped at step {step}: the loss is {float(loss)} on {where}. The weights were not updated "
                "with it; check those rows and the starting weights, or lower the learning rate."
            )
        return loss

    def prediction_step(self, model, inputs, *args, **kwargs):
        inputs.pop(EXAMPLE_ROWS, None)
        return super().prediction_step(model, inputs, *args, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Recipe arguments
# ----------------------------------------------------------------------------------------------------------------
def _unknown_names_error(unknown: list[str], known: list[str], where: str) -> ValueError:
    described = []
    for name in unknown:
        closest = difflib.get_close_matches(name, known, n=1)
        described.append(f"{name!r}" + (f" (did you mean {closest[0]!r}?)" if closest else ""))
    return ValueError(f"Unknown {where}: {', '.join(described)}.")


def parse_recipe(parser, argv: list[str] | None = None) -> tuple:
    """`parser.parse_args_and_config(argv)` (a `TrlParser`) with the mistakes named: a missing `--config` file, a
    YAML that is not a mapping, and unknown keys or options, each with the closest known name."""
    argv = list(sys.argv[1:] if argv is None else argv)
    known = sorted({action.dest for action in parser._actions} - {"help"})
    if "--config" in argv:
        index = argv.index("--config")
        if index + 1 >= len(argv):
            raise ValueError("`--config` needs the path of a recipe YAML.")
        config = argv[index + 1]
        if not os.path.isfile(config):
            raise FileNotFoundError(f"recipe not found: {config}")
        with open(config, encoding="utf-8") as file:
            try:
                values = yaml.safe_load(file)
            except yaml.YAMLError as error:
                raise ValueError(f"{config} is not valid YAML: {' '.join(str(error).split())}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{config} must hold a YAML mapping of recipe options.")
        unknown = [key for key in values if key not in known and key != "env"]
        if unknown:
            raise _unknown_names_error(unknown, known, f"key(s) in {config}")
    try:
        return parser.parse_args_and_config(args=argv)
    except ValueError as error:
        unused = _UNUSED_ARGUMENTS.match(str(error))
        if unused is None:
            raise
        names = [item.lstrip("-").split("=")[0] for item in re.findall(r"'(--[^']+)'", unused.group(1))]
        raise _unknown_names_error(names or [unused.group(1)], known, "option(s)") from None


def check_seed(training_args) -> None:
    for name in ("seed", "data_seed"):
        value = getattr(training_args, name, None)
        if value is not None and not 0 <= value <= MAX_SEED:
            raise ValueError(f"`{name}` must be between 0 and {MAX_SEED}, got {value}.")


def looks_local(path: str) -> bool:
    """Whether `path` names a local file or folder rather than a Hub repo id (`namespace/name`)."""
    return (os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1
            or os.path.splitext(path)[1].lower() in LOCAL_DATA_EXTENSIONS)


def check_local_path(path: str | None, what: str) -> None:
    """A local-looking `path` that does not exist fails here, named, instead of as a malformed Hub repo id."""
    if path is not None and looks_local(str(path)) and not os.path.exists(os.path.expanduser(str(path))):
        raise FileNotFoundError(f"{what} not found: {path}")


def run_script(main, prog: str) -> int:
    """Runs a recipe's `main()` as a script: a user error (the recipe, its data, checkpoint or model) is printed as
    one line, exit status 2, as `qwen-audio NAME` prints it; anything else keeps its traceback."""
    try:
        main()
    except (ValueError, OSError, TypeError) as error:
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    return 0


__all__ = [
    "EXAMPLE_ROWS",
    "NonFiniteLossError",
    "StopOnNonFiniteLoss",
    "check_local_path",
    "check_seed",
    "parse_recipe",
    "run_script",
]
