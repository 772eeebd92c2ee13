"""Train one run in a fresh child process, so that a long sweep gives its memory back to the system after each run.

Why: under the allocator settings of ``apt.allocator`` (which keep QM9 fast on the CPU) freed memory stays in the
process's heap, and QM9's per-edge tensors change size with every batch, so one process that trains run after run
keeps growing (README, Memory). A child per run starts from an empty heap and returns it all when it exits.

The child is *spawned* (a fresh interpreter; nothing of this process's state is shared) and inherits this
process's environment, allocator settings included. It stops by itself when this process dies, even by SIGKILL
(it polls its parent), so a killed sweep leaves no run training behind; the killed run resumes from its last
per-epoch checkpoint like any other.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from apt.config import Config

PARENT_POLL_SECONDS = 1.0


class IsolatedRunError(RuntimeError):
    """The run failed in its child process (its exception, re-raised here by name and message) or the child died."""


def run_in_child(config: Config, *, results_dir: str | Path | None = None, checkpoint_dir: str | Path | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """``apt.experiment.run(config, ...)`` in a spawned child process, with this process's torch thread count;
    returns the record it wrote.

    Raises IsolatedRunError naming the run and the child's exception, or the child's exit code if it died without
    reporting (e.g. killed for memory). If this process is interrupted while waiting, the child is terminated.
    """
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, name=f"apt-run-{config.run_id}",
                            args=(send, config, results_dir, checkpoint_dir, progress, os.getpid(),
                                  torch.get_num_threads()))
    child.start()
    send.close()  # only the child writes: recv() sees EOF if it dies without reporting
    try:
        try:
            ok, payload = receive.recv()
        except EOFError:
            child.join()
            raise IsolatedRunError(f"the process training {config.run_id} died without reporting (exit code "
                                   f"{child.exitcode}); its last per-epoch checkpoint resumes it") from None
        child.join()
    finally:
        receive.close()
        if child.is_alive():  # interrupted while waiting: the run must not go on unattended
            child.terminate()
            child.join()
    if not ok:
        raise IsolatedRunError(f"{config.run_id}: {payload}")
    return payload


def _child(send: Connection, config: Config, results_dir: str | Path | None, checkpoint_dir: str | Path | None,
           progress: bool, parent_pid: int, threads: int) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    torch.set_num_threads(threads)  # the thread count changes float sums: keep the parent's
    from apt.experiment import run

    try:
        record = run(config, results_dir=results_dir, checkpoint_dir=checkpoint_dir, progress=progress)
    except Exception as error:  # noqa: BLE001 - reported to the parent, which decides
        traceback.print_exc()
        send.send((False, f"{type(error).__name__}: {error}"))
    else:
        send.send((True, record))
    finally:
        send.close()


def _exit_with_parent(parent_pid: int) -> None:
    """Exit this process as soon as its parent is gone (reparented: the parent pid changes)."""
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent_pid:
            os._exit(1)
