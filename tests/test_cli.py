"""`qwen-audio` subcommands, called in-process with `main([...])`."""

import importlib
import io
import json

import pytest
from transformers import pipeline

import transformers_qwen_audio  # noqa: F401
from transformers_qwen_audio import cli
from transformers_qwen_audio.cli import chat, transcribe

RELEASED_FOLDER = "tiny_real_vocab_original_layout"
SPEECH = "1272-128104-0000.flac"
GREEDY_10 = ["--max-new-tokens", "10", "--min-new-tokens", "10", "--greedy"]


@pytest.fixture(scope="module")
def released_dir(reference_dir):
    return reference_dir / RELEASED_FOLDER


@pytest.fixture(scope="module")
def shared_pipe(released_dir):
    return pipeline("audio-chat", model=str(released_dir))


@pytest.fixture
def loaded_once(monkeypatch, shared_pipe):
    """Every subcommand gets the module's pipeline instead of loading the checkpoint again."""
    for command in (chat, transcribe):
        monkeypatch.setattr(command, "load_pipeline", lambda model, **kwargs: shared_pipe)
    return shared_pipe


@pytest.fixture(scope="module")
def expected_first_reply(reference_dir, shared_pipe):
    manifest = json.loads((reference_dir / "manifest.json").read_text(encoding="utf-8"))
    return shared_pipe.tokenizer.decode(manifest["chat_cases"][0]["greedy_new_tokens"], skip_special_tokens=True)


def test_chat_one_question(loaded_once, released_dir, reference_dir, expected_first_reply, capsys):
    audio = str(reference_dir / "audio" / SPEECH)
    assert cli.main(["chat", str(released_dir), audio, "--prompt", "what does the person say?", *GREEDY_10]) == 0
    assert capsys.readouterr().out == expected_first_reply + "\n"


def test_chat_interactive(loaded_once, released_dir, reference_dir, expected_first_reply, monkeypatch, capsys):
    audio = str(reference_dir / "audio" / SPEECH)
    lines = [f"/audio {audio}", "/audio /no/such.wav", "/nonsense", "what does the person say?", "and then?", "/quit"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert cli.main(["chat", str(released_dir), *GREEDY_10]) == 0
    captured = capsys.readouterr()
    assert f"(attached {audio})" in captured.out
    assert f"assistant> {expected_first_reply}\n" in captured.out
    assert captured.out.count("assistant> ") == 2
    assert "audio file not found: /no/such.wav" in captured.err and "unknown command /nonsense" in captured.err


def test_chat_interactive_ends_at_end_of_input(loaded_once, released_dir, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n"))
    assert cli.main(["chat", str(released_dir), "--max-new-tokens", "2"]) == 0
    assert capsys.readouterr().out.count("assistant> ") == 1


def test_transcribe_srt_files(loaded_once, released_dir, reference_dir, tmp_path, capsys):
    audio = [str(reference_dir / "audio" / name) for name in (SPEECH, "es.mp3")]
    code = cli.main(["transcribe", str(released_dir), *audio, "--output", "srt", "--output-dir", str(tmp_path),
                     "--batch-size", "2", "--max-new-tokens", "6", "--chat-format", "raw", "--no-progress"])
    assert code == 0
    for stem in ("1272-128104-0000", "es"):
        text = (tmp_path / f"{stem}.srt").read_text(encoding="utf-8")
        assert text.startswith("1\n00:00:") and " --> " in text
    assert str(tmp_path / "es.srt") in capsys.readouterr().out


def test_transcribe_json_stdout_with_real_loading(released_dir, reference_dir, capsys):
    audio = str(reference_dir / "audio" / SPEECH)
    code = cli.main(["transcribe", str(released_dir), audio, "--timestamps", "--output", "json", "--max-new-tokens", "4"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"text", "chunks"}


def test_convert(released_dir, tmp_path, capsys):
    assert cli.main(["convert", str(released_dir), str(tmp_path / "native")]) == 0
    assert (tmp_path / "native" / "config.json").is_file()
    assert json.loads(capsys.readouterr().out)["converted"] == str(tmp_path / "native")
    # Converting again without --overwrite is a user error.
    assert cli.main(["convert", str(released_dir), str(tmp_path / "native")]) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["transcribe", "{model}", "/no/such.wav"], "audio file not found: /no/such.wav"),
        (["chat", "{model}", "/no/such.wav", "--prompt", "hi"], "audio file not found: /no/such.wav"),
        (["transcribe", "/no/such/model", "{audio}"], "model folder not found: /no/such/model"),
        (["chat", "{audio_dir}", "--prompt", "hi"], "is not a checkpoint folder"),
        (["transcribe", "{model}", "{audio}", "--language", "xx"], "Unknown audio language"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(loaded_once, released_dir, reference_dir, capsys, argv, message):
    values = {"model": str(released_dir), "audio": str(reference_dir / "audio" / SPEECH), "audio_dir": str(reference_dir / "audio")}
    assert cli.main([arg.format(**values) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("command", ["pretrain", "sft", "evaluate"])
def test_recipe_commands_forward_every_argument(command, monkeypatch):
    """`qwen-audio pretrain|sft|evaluate ARGS...` is `transformers_qwen_audio.recipes.<command>.main(ARGS)`: options
    the CLI does not know (`--help` included) reach the recipe's own parser, in order."""
    recipe = importlib.import_module(f"transformers_qwen_audio.recipes.{command}")
    seen = []
    monkeypatch.setattr(recipe, "main", lambda argv: seen.append(argv))
    arguments = ["--config", "recipe.yaml", "--max_steps", "3", "extra", "--help"]
    assert cli.main([command, *arguments]) == 0
    assert seen == [arguments]
    monkeypatch.setattr(recipe, "main", lambda argv: 5)
    assert cli.main([command]) == 5


def test_recipe_help_is_the_recipe_s(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["pretrain", "--help"])
    assert exit_info.value.code == 0
    assert "--output_dir" in capsys.readouterr().out  # an option of the recipe's parser, not of qwen-audio's


def test_unknown_options_of_other_commands_stay_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["convert", "src", "dst", "--no-such-option"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_recipe_commands_find_packaged_recipes_by_name(form, monkeypatch, tmp_path):
    """`qwen-audio pretrain --config tiny/pretrain.yaml` runs the packaged recipe from any folder; a file of that
    name in the working folder wins; an unknown name reaches the recipe unchanged (which names the missing file)."""
    from transformers_qwen_audio.recipes import recipe_path

    recipe = importlib.import_module("transformers_qwen_audio.recipes.pretrain")
    seen = []
    monkeypatch.setattr(recipe, "main", lambda argv: seen.append(argv))
    monkeypatch.chdir(tmp_path)

    def run(name):
        cli.main(["pretrain", *(["--config", name] if form == "separate" else [f"--config={name}"]), "--max_steps", "1"])
        return seen[-1][1] if form == "separate" else seen[-1][0].partition("=")[2]

    assert run("tiny/pretrain.yaml") == str(recipe_path("tiny/pretrain.yaml"))
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "pretrain.yaml").write_text("max_steps: 1\n")
    assert run("tiny/pretrain.yaml") == "tiny/pretrain.yaml"
    assert run("nowhere/missing.yaml") == "nowhere/missing.yaml"
