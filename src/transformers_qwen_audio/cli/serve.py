# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""`qwen-audio serve MODEL | --tiny`: the OpenAI-compatible server of `transformers_qwen_audio.serving` (needs the
`[serve]` extra), bound before the model loads so that a taken port fails fast and in one line."""

import argparse
import ipaddress
import os
import socket
import sys

from .. import serving
from .common import (
    EXIT_OK,
    CliError,
    add_model_loading_arguments,
    add_served_model_arguments,
    check_model_or_tiny,
    load_pipeline,
    model_or_tiny,
    terminate_like_interrupt,
)


TINY_MODEL_NAME = "qwen-audio-tiny"
LOOPBACK_HOSTS = ("localhost",)
API_KEY_VARIABLE = "QWEN_AUDIO_API_KEY"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("serve", help="OpenAI-compatible HTTP server for audio chat",
                                   description=serving.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_served_model_arguments(parser, "serve")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free port)")
    parser.add_argument("--served-model-name", help="the name clients use as `model` (default: MODEL as given)")
    add_model_loading_arguments(parser)
    parser.add_argument("--api-key", default=None,
                        help=f"require 'Authorization: Bearer KEY' on /v1 routes and /health (default: "
                             f"${API_KEY_VARIABLE}; none; an empty key is an error)")
    parser.add_argument("--max-queue", type=int, default=256,
                        help="requests that may wait for the model; more get 503 (default: 256)")
    parser.add_argument("--allow-urls", action="store_true", help="download audio_url parts given as http(s) URLs")
    parser.add_argument("--max-batch-size", type=int, default=8, help="requests generated together (default: 8)")
    parser.add_argument("--batch-wait-ms", type=float, default=10.0,
                        help="how long a request waits for others to batch with (default: 10 ms)")
    parser.add_argument("--max-audio-seconds", type=float, default=30.0,
                        help="longest clip accepted (default: 30 s, the model's window; longer clips are heard as "
                             "consecutive 30 s windows)")
    parser.add_argument("--max-tokens-limit", type=int, default=4096, help="largest max_tokens a request may ask")
    parser.add_argument("--transcription-max-tokens", type=int, default=512,
                        help="new tokens a transcription may take per 30 s window (default: 512)")
    parser.add_argument("--default-max-tokens", type=int, default=None,
                        help="max_tokens of requests that do not say (default: the checkpoint's max_new_tokens, "
                             "else 256)")
    parser.add_argument("--max-body-mb", type=float, default=32.0, help="largest request body (default: 32 MB)")
    parser.add_argument("--read-timeout", type=float, default=30.0,
                        help="seconds a request's headers, and each piece of its body, may take to arrive; slower "
                             "clients are cut off (default: 30)")
    parser.add_argument("--keep-alive-timeout", type=float, default=5.0,
                        help="seconds an idle keep-alive connection stays open (default: 5)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    parser.set_defaults(run=run_serve)
    return parser


def _check_arguments(args) -> None:
    check_model_or_tiny(args)
    for name, value, low in (("--max-batch-size", args.max_batch_size, 1), ("--max-tokens-limit", args.max_tokens_limit, 1),
                             ("--port", args.port, 0), ("--max-queue", args.max_queue, 1),
                             ("--transcription-max-tokens", args.transcription_max_tokens, 1)):
        if value < low:
            raise CliError(f"{name} must be at least {low}, got {value}")
    if args.port > 65535:
        raise CliError(f"--port must be at most 65535, got {args.port}")
    if args.batch_wait_ms < 0 or args.max_body_mb <= 0 or args.max_audio_seconds <= 0:
        raise CliError("--batch-wait-ms must be >= 0, --max-body-mb and --max-audio-seconds > 0")
    if not (args.read_timeout > 0 and args.keep_alive_timeout > 0):
        raise CliError("--read-timeout and --keep-alive-timeout must be > 0")
    args.api_key = _api_key(args.api_key)
    if args.default_max_tokens is not None and not 1 <= args.default_max_tokens <= args.max_tokens_limit:
        raise CliError("--default-max-tokens must be between 1 and --max-tokens-limit")


def _api_key(given: str | None) -> str | None:
    """--api-key, else the environment's key; an empty one is refused: it would serve without authentication while
    its user believes otherwise."""
    where = "--api-key"
    if given is None:
        given, where = os.environ.get(API_KEY_VARIABLE), f"${API_KEY_VARIABLE}"
    if given is not None and not given.strip():
        raise CliError(f"{where} is empty: give a key, or unset it to serve without authentication")
    return given


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the model loads so that a taken port fails fast and in one line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise CliError(f"cannot resolve --host {host}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run_serve(args, out=None) -> int:
    """Runs the server until interrupted."""
    out = out or sys.stdout
    _check_arguments(args)
    try:
        import uvicorn

        from ..serving.app import build_app, server_config
        from ..serving.protocol import ServerLimits
    except ImportError as error:
        raise CliError(f"qwen-audio serve needs the [serve] extra ({error.name} is missing): "
                       "pip install 'transformers-qwen-audio[serve]'") from None
    sock = _bind(args.host, args.port)
    if not _is_loopback(args.host) and not args.api_key:
        print(f"warning: listening on {args.host} without --api-key: anyone who can reach this address can use the "
              "server.", file=sys.stderr)
    try:
        with terminate_like_interrupt(), model_or_tiny(args) as model:
            pipe = load_pipeline(model, device=args.device, dtype=args.dtype)
            default_max_tokens = (args.default_max_tokens
                                  or getattr(pipe.model.generation_config, "max_new_tokens", None) or 256)
            limits = ServerLimits(max_audio_seconds=args.max_audio_seconds, max_tokens=args.max_tokens_limit,
                                  default_max_tokens=min(default_max_tokens, args.max_tokens_limit),
                                  transcription_max_tokens=args.transcription_max_tokens, allow_urls=args.allow_urls)
            name = args.served_model_name or (TINY_MODEL_NAME if args.tiny else args.model)
            app = build_app(pipe, name, limits, max_batch_size=args.max_batch_size,
                            batch_wait_s=args.batch_wait_ms / 1000, max_body_bytes=int(args.max_body_mb * 2**20),
                            max_pending=args.max_queue, api_key=args.api_key, read_timeout_s=args.read_timeout)
            host, port = sock.getsockname()[:2]
            shown_host = f"[{host}]" if ":" in host else host
            print(f"Serving {name!r} at http://{shown_host}:{port}/v1 (OpenAI-compatible; Ctrl+C stops)", file=out,
                  flush=True)
            server = uvicorn.Server(server_config(app, args.log_level, args.keep_alive_timeout))
            try:
                server.run(sockets=[sock])
            except KeyboardInterrupt:
                pass  # uvicorn re-raises Ctrl+C (and SIGTERM) once it has shut down gracefully: a normal end here
    finally:
        sock.close()
    return EXIT_OK
