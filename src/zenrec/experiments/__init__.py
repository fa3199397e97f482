"""Experiments: benchmark grids of models x datasets x protocols x seeds that tune and run each
cell (runs), with peer libraries on the same splits, and their statistics.
"""

from zenrec.experiments.benchmark import cell_id, machine, run_benchmark
from zenrec.experiments.config import BenchmarkConfig, ModelEntry, TuneBudget, load_benchmark_config
from zenrec.experiments.summary import load_cells, summarise

__all__ = [
    "BenchmarkConfig",
    "ModelEntry",
    "TuneBudget",
    "cell_id",
    "load_benchmark_config",
    "load_cells",
    "machine",
    "run_benchmark",
    "summarise",
]
