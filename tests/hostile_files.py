"""Files a hostile checkpoint could hold."""

import os
import pickle
from pathlib import Path


def write_code_running_pickle(path: Path, marker: Path) -> None:
    """A `pytorch_model.bin` whose unpickling would run `touch marker`: loaders must refuse it, never run it."""

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(path, "wb") as handle:
        pickle.dump({"lm_head.weight": Payload()}, handle)
