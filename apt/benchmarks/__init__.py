"""Benchmarks: one module each, knowing its data, model, losses and metrics, nothing about optimizers.

``get_benchmark(name, data_dir)`` builds one by name; ``BENCHMARKS`` lists the names.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from apt.benchmarks.base import Benchmark, MetricAccumulator, MTLModel, Protocol, Splits

# name -> "module:Class"; modules are imported lazily so that e.g. torch_geometric loads only for QM9.
_REGISTRY: dict[str, str] = {
    "qm9": "apt.benchmarks.qm9:QM9Benchmark",
    "celeba": "apt.benchmarks.celeba:CelebABenchmark",
    "nyuv2": "apt.benchmarks.nyuv2:NYUv2Benchmark",
    "cityscapes": "apt.benchmarks.cityscapes:CityscapesBenchmark",
    "multi_mnist": "apt.benchmarks.multi_mnist:MultiMNISTBenchmark",
    "multi_fashion": "apt.benchmarks.multi_mnist:MultiFashionBenchmark",
    "multi_fashion_mnist": "apt.benchmarks.multi_mnist:MultiFashionMNISTBenchmark",
}
BENCHMARKS: tuple[str, ...] = tuple(_REGISTRY)


def benchmark_class(name: str) -> type[Benchmark]:
    """The class registered under ``name``; ValueError listing the known names otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown benchmark {name!r}; known benchmarks: {', '.join(BENCHMARKS)}")
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_benchmark(name: str, data_dir: str | Path | None = None) -> Benchmark:
    """An instance of benchmark ``name`` reading data from ``data_dir`` (default: APT_DATA_DIR)."""
    return benchmark_class(name)(data_dir)


__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "MTLModel",
    "MetricAccumulator",
    "Protocol",
    "Splits",
    "benchmark_class",
    "get_benchmark",
]
