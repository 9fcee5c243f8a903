"""Benchmarks of the original Qwen-Audio evaluation (prompts, metrics, normalisation) and the tiny held-out split."""

from .benchmarks import BenchmarkSpec, load_benchmark_rows, resolve_benchmark
from .results import markdown_table, model_card_data, write_results
from .runner import TooManyBadClipsError, evaluate_checkpoint, generate_replies, run_benchmark, score


__all__ = [
    "BenchmarkSpec", "TooManyBadClipsError", "evaluate_checkpoint", "generate_replies", "load_benchmark_rows",
    "markdown_table", "model_card_data", "resolve_benchmark", "run_benchmark", "score", "write_results",
]
