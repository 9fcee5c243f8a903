"""Convert a released Qwen-Audio checkpoint to the native layout.

    python -m transformers_qwen_audio.convert SRC DST [--dtype bfloat16] [--push-to-hub REPO_ID] [--base-model ID]

SRC is a local folder in the released layout (`config.json` with `model_type: "qwen"`, `transformer.*` weights in
safetensors or `pytorch_model.bin`, `qwen.tiktoken`), a native one, or a Hub repo id (its data files are downloaded;
its code never is). Nothing of SRC is executed: weights are read through transformers' loaders (safetensors, or
`torch.load(weights_only=True)`), the config and the tokenizer are data. DST receives sharded safetensors + index,
the config, the generation config, the processor files (when SRC has `qwen.tiktoken` or a `tokenizer.json`) and a
model card.

Nothing is lost on a crash or a kill: DST is written to a staging folder `.DST.partial-*` beside it and renamed into
place only once complete; an existing DST is moved aside (`.DST.previous-*`) and deleted only after the new one is
in place. A later run removes the staging folders an interrupted run left (or restores a DST it had moved aside);
see `checkpoint_files.staged_output`.
DST may not be SRC, contain it, or lie inside it. An existing DST is replaced only with `--overwrite`, and only if
convert wrote it (its model card says `converted_with: transformers-qwen-audio` and it holds no other files);
`--overwrite-any-folder` replaces any other folder (never the home folder, the root, or one holding the current
directory).
"""

import json
import os
import re
from pathlib import Path

import transformers
from huggingface_hub import ModelCardData
from transformers import AutoModelForCausalLM

from .. import __version__
from ..cards import render_card
from ..checkpoint_files import (
    DTYPES,
    clean_stale_staging,
    dtype_name,
    explain_load_error,
    staged_output,
    verify_weight_files,
)


# The `url` of setup.cfg; a test checks that both agree.
PROJECT_URL = "https://github.com/transformers-qwen-audio/transformers-qwen-audio"
CONVERTER_NAME = "transformers-qwen-audio"
# Model card metadata that marks a folder written by `convert` (and lists its files): such a folder may be replaced.
CONVERTED_WITH_KEY = "converted_with"
CONVERTED_FILES_KEY = "converted_files"
HUB_CACHE_SNAPSHOT = re.compile(r"(?:^|/)(?:models|datasets|spaces)--([^/]+?)--([^/]+)/snapshots/[0-9a-f]{40}/?$")
HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Data files of a Hub source; its `.py` files are never downloaded (they would never be run either).
HUB_METADATA_PATTERNS = ["*.json", "*.tiktoken", "*.jinja", "*.txt", "*.model"]


class ConversionError(ValueError):
    """A conversion refused before anything was written, or a failure after DST was complete."""


class PushToHubError(ConversionError):
    """DST is complete on disk but the upload failed."""


# ----------------------------------------------------------------------------------------------------------------
# Model card
# ----------------------------------------------------------------------------------------------------------------
def render_model_card(model, model_name: str, base_model: str | None, dtype: str, command: str,
                      files: list[str]) -> str:
    card_data = ModelCardData(
        library_name="transformers", pipeline_tag="audio-text-to-text", license="other", license_name="tongyi-qianwen",
        base_model=base_model, tags=["audio", "qwen-audio", "transformers-qwen-audio"],
        **{CONVERTED_WITH_KEY: f"{CONVERTER_NAME} {__version__}", CONVERTED_FILES_KEY: sorted(files)},
    )
    return str(render_card(
        "converted", card_data,
        model_name=model_name,
        base_model=base_model,
        project_url=PROJECT_URL,
        audio_layers=model.config.audio_config.encoder_layers,
        audio_width=model.config.audio_config.d_model,
        text_layers=model.config.text_config.num_hidden_layers,
        text_hidden=model.config.text_config.hidden_size,
        vocab_size=model.config.text_config.vocab_size,
        dtype=dtype,
        command=command,
        package_version=__version__,
        transformers_version=transformers.__version__,
    ))


def hub_id_of_cache_folder(path: Path) -> str | None:
    """`Org/Name` for a folder of the Hub cache (`.../models--Org--Name/snapshots/<commit>`), else None."""
    match = HUB_CACHE_SNAPSHOT.search(path.resolve().as_posix())
    return f"{match.group(1)}/{match.group(2)}" if match else None


def base_model_id(src: Path, hub_id: str | None = None, explicit: str | None = None) -> str | None:
    """The Hub id the converted checkpoint derives from: `explicit` (`--base-model`), the Hub id SRC was given as or
    cached under, else the released config's `_name_or_path` when it is a Hub id (not a local path). None when
    unknown: a folder name (or a cache snapshot hash) is never a model id."""
    if explicit:
        if not HUB_REPO_ID.match(explicit):
            raise ConversionError(f"--base-model must be a Hub repo id like Qwen/Qwen-Audio-Chat, got {explicit!r}")
        return explicit
    for candidate in (hub_id, hub_id_of_cache_folder(src)):
        if candidate:
            return candidate
    try:
        name_or_path = json.loads((src / "config.json").read_text(encoding="utf-8")).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(name_or_path, str) and HUB_REPO_ID.match(name_or_path) and not Path(name_or_path).exists():
        return name_or_path
    return None


def converted_by_us(folder: Path) -> tuple[bool, str]:
    """Whether `folder` is a checkpoint `convert` wrote and nothing was added to since; the reason when not."""
    from huggingface_hub.repocard import metadata_load

    card = folder / "README.md"
    try:
        metadata = metadata_load(card) if card.is_file() else None
    except (OSError, ValueError) as error:  # a hand-edited card with broken YAML
        return False, f"its README.md metadata cannot be read ({error})"
    if not metadata or not str(metadata.get(CONVERTED_WITH_KEY, "")).startswith(CONVERTER_NAME):
        return False, f"it was not written by convert (no `{CONVERTED_WITH_KEY}: {CONVERTER_NAME}` in its README.md)"
    listed = set(metadata.get(CONVERTED_FILES_KEY) or [])
    extra = sorted(set(os.listdir(folder)) - listed)
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        return False, f"it holds files convert did not write ({shown})"
    return True, ""


# ----------------------------------------------------------------------------------------------------------------
# Where DST may be written
# ----------------------------------------------------------------------------------------------------------------
def check_paths(src: Path, dst: Path) -> None:
    """Refuses a DST that would destroy SRC or a folder that must never be replaced."""
    src_real, dst_real = src.resolve(), dst.resolve()
    if dst_real == src_real:
        raise ConversionError(f"DST {dst} is SRC: give a new folder for the converted checkpoint")
    if dst_real in src_real.parents:
        raise ConversionError(f"DST {dst} contains SRC {src}: replacing it would delete the source checkpoint")
    if src_real in dst_real.parents:
        raise ConversionError(f"DST {dst} is inside SRC {src}: write the converted checkpoint outside the source")
    protected = {Path(dst_real.anchor), Path.home().resolve()}
    if dst_real in protected or dst_real == Path.cwd().resolve() or dst_real in Path.cwd().resolve().parents \
            or dst_real in Path.home().resolve().parents:
        raise ConversionError(f"DST {dst} is the root, the home folder, or holds it or the current folder: "
                              "give a new folder for the converted checkpoint")
    if dst.exists() and not dst.is_dir():
        raise ConversionError(f"DST {dst} exists and is not a folder")


def check_destination(dst: Path, overwrite: bool, overwrite_any_folder: bool) -> None:
    if not dst.is_dir() or not any(dst.iterdir()):
        return
    if not (overwrite or overwrite_any_folder):
        raise FileExistsError(f"{dst} exists and is not empty: pass --overwrite (overwrite=True) to replace a "
                              "checkpoint convert wrote there")
    ours, reason = converted_by_us(dst)
    if not ours and not overwrite_any_folder:
        raise ConversionError(f"{dst} exists and {reason}: refusing to replace it. Choose another DST, or pass "
                              "--overwrite-any-folder (overwrite_any_folder=True) to replace it anyway")


# ----------------------------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------------------------
def has_tokenizer_files(src: Path) -> bool:
    return (src / "qwen.tiktoken").is_file() or (src / "tokenizer.json").is_file()


def resolve_source(src: str | os.PathLike) -> tuple[Path, str | None]:
    """The local folder of SRC and the Hub id it was given as (None for a local folder)."""
    path = Path(src).expanduser()
    if path.exists() or not HUB_REPO_ID.match(str(src)):
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{src} has no config.json: give the folder of a Qwen-Audio checkpoint")
        return path, None
    from huggingface_hub import snapshot_download

    repo_id = str(src)
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=HUB_METADATA_PATTERNS))
        weights = ["*.safetensors"] if (folder / "model.safetensors.index.json").is_file() or not list(
            folder.glob("pytorch_model*.json")) else ["*.bin"]
        folder = Path(snapshot_download(repo_id, allow_patterns=HUB_METADATA_PATTERNS + weights))
    except OSError as error:  # huggingface_hub's HTTP and offline errors are OSErrors
        raise OSError(f"{repo_id} is no local folder, and downloading it from the Hub failed: "
                      f"{' '.join(str(error).split())}") from None
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"Hub repo {repo_id} has no config.json: give a Qwen-Audio checkpoint")
    return folder, repo_id


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    dtype: str = "auto",
    max_shard_size: str = "5GB",
    overwrite: bool = False,
    push_to_hub: str | None = None,
    private: bool | None = None,
    base_model: str | None = None,
    overwrite_any_folder: bool = False,
) -> Path:
    """Convert SRC to a native checkpoint in DST; returns DST. See the module docstring.

    Raises:
        `ConversionError` (a `ValueError`): DST would destroy SRC or an unrelated folder; `OutputInUseError` (a
        `ValueError`): another conversion into DST is running; `FileExistsError`: DST exists without `overwrite`;
        `PermissionError`: DST cannot be written; `CorruptCheckpointError` (a `ValueError`): a truncated/corrupted
        weight file (named) or a refused pickle; `PushToHubError`: DST is complete but the upload failed.
    """
    dtype = dtype_name(dtype)
    dst = Path(dst).expanduser()
    local_src = Path(src).expanduser()
    if local_src.exists():
        check_paths(local_src, dst)  # before anything else: no download or cleanup for a refused DST
    src, hub_id = resolve_source(src)
    check_paths(src, dst)
    base_model = base_model_id(src, hub_id, base_model)
    clean_stale_staging(dst, job="conversion")
    check_destination(dst, overwrite, overwrite_any_folder)
    verify_weight_files(src)

    with staged_output(dst) as staging:
        try:
            # from_pretrained also reads SRC's generation_config.json and adds the original's chat stop ids to it.
            model = AutoModelForCausalLM.from_pretrained(src, dtype=DTYPES[dtype])
        except Exception as error:
            explained = explain_load_error(error, str(src))
            if explained is None:
                raise
            raise explained from None
        model.config.name_or_path = base_model or ""
        model.save_pretrained(staging, max_shard_size=max_shard_size, save_original_format=False)
        if has_tokenizer_files(src):
            from ..processing_qwen_audio import QwenAudioProcessor

            QwenAudioProcessor.from_pretrained(src).save_pretrained(staging)
        model_name = push_to_hub or dst.name
        source_name = hub_id or hub_id_of_cache_folder(src) or src.name
        command = f"python -m transformers_qwen_audio.convert {source_name} {dst.name} --dtype {dtype}"
        files = [path.name for path in staging.iterdir()] + ["README.md"]
        card = render_model_card(model, model_name, base_model=base_model,
                                 dtype=str(model.dtype).removeprefix("torch."), command=command, files=files)
        (staging / "README.md").write_text(card, encoding="utf-8")

    if push_to_hub:
        upload(dst, push_to_hub, private)
    return dst


def upload(folder: Path, repo_id: str, private: bool | None = None) -> None:
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id,
                          commit_message="Upload native Qwen-Audio checkpoint")
    except Exception as error:  # network, authentication, Hub-side errors: the local result stands either way
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        raise PushToHubError(
            f"the converted checkpoint is complete in {folder}, but uploading it to {repo_id} failed: {reason}. "
            f"Upload it later with: hf upload {repo_id} {folder}"
        ) from None
