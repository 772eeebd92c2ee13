"""Fixtures of the apt.optim tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """The models here are tiny: one intra-op thread avoids thread hand-off costs (and contention with
    other processes on a 2-core machine). Restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
