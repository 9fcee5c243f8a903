"""The packaged recipes: `recipe_path` finds the tiny recipes and the benchmarks in the package (one copy in the
repository), the evaluation reads its benchmarks from there, and a wrong name is a clear error."""

from pathlib import Path

import pytest
import yaml

from transformers_qwen_audio.evaluation.benchmarks import BENCHMARKS_DIR, resolve_benchmark
from transformers_qwen_audio.recipes import recipe_path


PACKAGE = Path(__import__("transformers_qwen_audio").__file__).parent
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("relative", ["tiny/pretrain.yaml", "tiny/pretrain_smoke.yaml", "tiny/sft.yaml",
                                      "benchmarks/tiny_asr.yaml", "benchmarks/librispeech_test_clean.yaml"])
def test_recipe_path_finds_the_packaged_yamls(relative):
    path = recipe_path(relative)
    assert path == PACKAGE / "recipes" / relative and isinstance(yaml.safe_load(path.read_text()), dict)


def test_benchmarks_resolve_inside_the_package():
    assert BENCHMARKS_DIR == recipe_path("benchmarks")
    assert resolve_benchmark("tiny_sounds") == PACKAGE / "recipes" / "benchmarks" / "tiny_sounds.yaml"


def test_one_copy_of_each_recipe_in_the_repository():
    # The checkout's recipes/ keeps the real-scale recipes only: the tiny ones and the benchmarks are package data.
    assert not (REPO_ROOT / "recipes" / "tiny").exists() and not (REPO_ROOT / "recipes" / "benchmarks").exists()


def test_a_wrong_name_says_what_exists():
    with pytest.raises(FileNotFoundError, match=r"tiny/pretrain\.yaml.*benchmarks/tiny_asr\.yaml|benchmarks/tiny_asr\.yaml.*tiny/pretrain\.yaml"):
        recipe_path("tiny/pretrain.yml")
    for wrong in ("", "/etc/passwd", "../setup.cfg", None):
        with pytest.raises(ValueError, match="path inside the package"):
            recipe_path(wrong)


@pytest.mark.parametrize("stage", ["pretrain", "sft", "evaluate"])
def test_each_recipe_main_reads_its_options_from_argv(stage, capsys):
    import importlib

    recipe = importlib.import_module(f"transformers_qwen_audio.recipes.{stage}")
    with pytest.raises(SystemExit) as exited:
        recipe.main(["--help"])
    assert exited.value.code == 0 and "--output_dir" in capsys.readouterr().out
