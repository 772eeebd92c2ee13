"""Claim 2 read back from run records: per-task alignment and Muon spectra as tables.

A record's ``diagnostics`` (written by ``apt.experiment`` from ``optimizer.step_diagnostics``, see
``apt.optim.diagnostics``) holds one list entry per recorded step t (every ``diagnostics_every`` steps):

    task_alignment       [K] a_{k,t} = cos(Δθ_t, −g_{k,t})   (register G4; Δθ_t, g_{k,t} over shared parameters)
    mtl_task_cosines     [K] c_{k,t} = cos(g_t, g_{k,t})     (the MTL method's own direction g_t)
    muon_singular_values {matrix: {"in", "out", "instant": σ [min(A, B)]}} on spectrum steps only (G3)

``alignment_frame`` gives one row per recorded step with the spread D_t = max_k a_{k,t} − min_k a_{k,t}
(``alignment_summary``); ``spectra_frame`` one row per singular value with the step it was taken at;
``effective_rank_frame`` the entropy effective rank of each of those spectra.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch

from apt.optim.diagnostics import alignment_summary
from apt.optim.factory import DEFAULT_HP
from apt.optim.newton_schulz import effective_rank

SPECTRUM_KINDS: tuple[str, ...] = ("in", "out", "instant")


def _diagnostics(record: dict[str, Any]) -> dict[str, list]:
    diagnostics = record.get("diagnostics") or {}
    if "step" not in diagnostics:
        raise ValueError(f"record {record.get('run_id')!r} has no diagnostics (run it with diagnostics=True)")
    return diagnostics


def alignment_frame(record: dict[str, Any]) -> pd.DataFrame:
    """Per recorded step: the per-task alignments and their summary, for the update and for the method.

    Columns: ``step``; ``a_<task>`` (a_{k,t} for every task name); ``mean``, ``min``, ``max``, ``spread``
    (= max − min) and ``std`` of the a_{k,t} over tasks; ``c_<task>``, ``instant_mean`` and ``instant_spread``
    of c_{k,t} = cos(g_t, g_{k,t}) (NaN where the record has no task cosines).
    """
    diagnostics = _diagnostics(record)
    if "task_alignment" not in diagnostics:
        raise ValueError(f"record {record.get('run_id')!r} has no task_alignment (no task Jacobian was kept)")
    tasks = [record["benchmark"]["task_names"][k] for k in record["benchmark"]["trained_tasks"]]
    alignments = diagnostics["task_alignment"]
    cosines = diagnostics.get("mtl_task_cosines") or [None] * len(alignments)
    if not len(diagnostics["step"]) == len(alignments) == len(cosines):
        raise ValueError(f"record {record.get('run_id')!r}: diagnostics lists of unequal length (step "
                         f"{len(diagnostics['step'])}, task_alignment {len(alignments)}, task cosines {len(cosines)})")
    rows = []
    for step, alignment, cosine in zip(diagnostics["step"], alignments, cosines):
        if len(alignment) != len(tasks):
            raise ValueError(f"record {record.get('run_id')!r}, step {step}: {len(alignment)} alignments for "
                             f"{len(tasks)} trained tasks")
        summary = alignment_summary(torch.tensor(alignment, dtype=torch.float64))
        row: dict[str, float] = {"step": step, **{f"a_{task}": value for task, value in zip(tasks, alignment)}}
        row |= {key.removeprefix("task_alignment_"): value for key, value in summary.items()}
        if cosine is None:
            row |= {f"c_{task}": math.nan for task in tasks} | {"instant_mean": math.nan, "instant_spread": math.nan}
        else:
            row |= {f"c_{task}": value for task, value in zip(tasks, cosine)}
            row |= {"instant_mean": sum(cosine) / len(cosine), "instant_spread": max(cosine) - min(cosine)}
        rows.append(row)
    return pd.DataFrame(rows)


def spectrum_steps(record: dict[str, Any]) -> list[int]:
    """The training steps (0-based, as the record's ``step``) at which ``muon_singular_values`` were stored.

    Muon takes spectra at steps t with t mod S = 0 (S = ``spectrum_every`` of the optimizer) and the runner
    stores the diagnostics of steps with t mod D = 0 (D = ``diagnostics_every``), so the stored spectra are
    those of the steps t mod lcm(S, D) = 0, in order. ValueError if their number disagrees with that.
    """
    diagnostics = _diagnostics(record)
    config = record["config"]
    default = DEFAULT_HP.get(config["optimizer"], {}).get("spectrum_every")
    if default is None:
        raise ValueError(f"record {record.get('run_id')!r}: optimizer {config['optimizer']!r} records no Muon spectra")
    every = math.lcm(int(config["optimizer_hp"].get("spectrum_every", default)), int(config["diagnostics_every"]))
    steps = [step for step in diagnostics["step"] if step % every == 0]
    stored = len(diagnostics.get("muon_singular_values", []))
    if stored != len(steps):
        raise ValueError(f"record {record.get('run_id')!r}: {stored} stored spectra, but {len(steps)} steps are "
                         f"multiples of lcm(spectrum_every, diagnostics_every) = {every}")
    return steps


def spectra_frame(record: dict[str, Any]) -> pd.DataFrame:
    """One row per singular value: ``step``, ``matrix`` (parameter name), ``kind`` (in | out | instant),
    ``index`` i (0 = largest), ``sigma`` σ_i and ``relative`` σ_i / σ_0 (0 for a zero matrix)."""
    steps = spectrum_steps(record)
    rows = []
    for step, spectra in zip(steps, _diagnostics(record)["muon_singular_values"]):
        for matrix, entry in spectra.items():
            for kind in SPECTRUM_KINDS:
                values = entry[kind]
                largest = values[0] if values and values[0] > 0 else math.inf
                rows += [{"step": step, "matrix": matrix, "kind": kind, "index": i, "sigma": sigma,
                          "relative": sigma / largest} for i, sigma in enumerate(values)]
    return pd.DataFrame(rows, columns=["step", "matrix", "kind", "index", "sigma", "relative"])


def effective_rank_frame(record: dict[str, Any]) -> pd.DataFrame:
    """Per (``step``, ``matrix``, ``kind``): ``effective_rank`` erank(σ) = exp(−Σ p_i log p_i), p_i = σ_i/Σ σ_j
    (``effective_rank``), ``rank_fraction`` = erank / min(A, B), and ``min_side`` = min(A, B)."""
    steps = spectrum_steps(record)
    rows = []
    for step, spectra in zip(steps, _diagnostics(record)["muon_singular_values"]):
        for matrix, entry in spectra.items():
            for kind in SPECTRUM_KINDS:
                sigma = torch.tensor(entry[kind], dtype=torch.float64)
                rank = effective_rank(sigma)
                rows.append({"step": step, "matrix": matrix, "kind": kind, "effective_rank": rank,
                             "rank_fraction": rank / sigma.numel(), "min_side": sigma.numel()})
    return pd.DataFrame(rows)
