"""Convert a released Qwen-Audio checkpoint to the native layout.

    python -m transformers_qwen_audio.convert SRC DST [--dtype bfloat16] [--push-to-hub REPO_ID]

SRC is a local folder in the released layout (`config.json` with `model_type: "qwen"`, `transformer.*` weights in
safetensors or `pytorch_model.bin`, `qwen.tiktoken`) or a native one. Nothing of SRC is executed: weights are read
through transformers' loaders (safetensors, or `torch.load(weights_only=True)`), the config and the tokenizer are
data. DST receives sharded safetensors + index, the config, the generation config, the processor files (when SRC has
`qwen.tiktoken` or a `tokenizer.json`) and a model card. DST is written atomically: everything goes to a temporary
folder beside it, which is renamed into place only once complete.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM

from . import __version__

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def render_model_card(model, model_name: str, base_model: str, dtype: str, command: str) -> str:
    template = resources.files("transformers_qwen_audio").joinpath("model_cards/converted.md").read_text()
    return template.format(
        model_name=model_name,
        base_model=base_model,
        audio_layers=model.config.audio_config.encoder_layers,
        audio_width=model.config.audio_config.d_model,
        text_layers=model.config.text_config.num_hidden_layers,
        text_hidden=model.config.text_config.hidden_size,
        vocab_size=model.config.text_config.vocab_size,
        dtype=dtype,
        command=command,
        package_version=__version__,
        transformers_version=transformers.__version__,
    )


def has_tokenizer_files(src: Path) -> bool:
    return (src / "qwen.tiktoken").is_file() or (src / "tokenizer.json").is_file()


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    dtype: str = "auto",
    max_shard_size: str = "5GB",
    overwrite: bool = False,
    push_to_hub: str | None = None,
    private: bool | None = None,
) -> Path:
    """Convert SRC to a native checkpoint in DST; returns DST. See the module docstring."""
    src, dst = Path(src), Path(dst)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{src} has no config.json: give the folder of a Qwen-Audio checkpoint")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise FileExistsError(f"{dst} exists and is not empty: pass overwrite=True (--overwrite) to replace it")
    if dst.resolve() == src.resolve():
        raise ValueError("DST must differ from SRC")

    # from_pretrained also reads SRC's generation_config.json and adds the original's chat stop ids to it.
    model = AutoModelForCausalLM.from_pretrained(src, dtype=DTYPES[dtype])
    model.config.name_or_path = ""

    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    try:
        model.save_pretrained(staging, max_shard_size=max_shard_size, save_original_format=False)
        if has_tokenizer_files(src):
            from .processing_qwen_audio import QwenAudioProcessor

            QwenAudioProcessor.from_pretrained(src).save_pretrained(staging)
        model_name = push_to_hub or dst.name
        command = f"python -m transformers_qwen_audio.convert {src.name} {dst.name} --dtype {dtype}"
        card = render_model_card(model, model_name, base_model=src.name, dtype=str(model.dtype).removeprefix("torch."),
                                 command=command)
        (staging / "README.md").write_text(card)
        replace_directory(staging, dst)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    if push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(push_to_hub, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(dst), repo_id=push_to_hub, commit_message="Upload native Qwen-Audio checkpoint")
    return dst


def replace_directory(staging: Path, dst: Path) -> None:
    """Move a complete `staging` folder to `dst`; an existing `dst` is only removed once the new one is in place."""
    staging.chmod(0o755)  # mkdtemp creates 0700; a published checkpoint folder is world-readable
    if not dst.exists():
        os.replace(staging, dst)
        return
    previous = Path(tempfile.mkdtemp(prefix=f".{dst.name}.previous-", dir=dst.parent))
    os.replace(dst, previous / dst.name)
    os.replace(staging, dst)
    shutil.rmtree(previous, ignore_errors=True)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m transformers_qwen_audio.convert", description=__doc__,
                                               formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="released (or native) Qwen-Audio checkpoint folder")
    parser.add_argument("dst", help="output folder for the native checkpoint")
    parser.add_argument("--dtype", default="auto", choices=sorted(DTYPES), help="weights dtype (default: as stored)")
    parser.add_argument("--max-shard-size", default="5GB", help="largest safetensors shard (default 5GB)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload DST to this Hub repository")
    parser.add_argument("--private", action="store_true", default=None, help="create the Hub repository as private")
    return parser


def add_parser(subcommands) -> argparse.ArgumentParser:
    """Registers `convert` on the `qwen-audio` command line."""
    parser = subcommands.add_parser("convert", help="convert a released checkpoint to the native layout",
                                    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    build_parser(parser)
    parser.set_defaults(run=run_from_args)
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    dst = convert(args.src, args.dst, dtype=args.dtype, max_shard_size=args.max_shard_size, overwrite=args.overwrite,
                  push_to_hub=args.push_to_hub, private=args.private)
    files = sorted(p.name for p in dst.iterdir())
    print(json.dumps({"converted": str(dst), "files": files}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_from_args(args)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
