"""apt.step_scale on hand-made records: the lr chosen per method, what disqualifies an lr, and the paired
Adam − tuned-SGD difference, each computed by hand below."""

from __future__ import annotations

import math

import pytest

from apt.step_scale import step_scale_control, validation_score

INFO = {"task_names": ["left", "right"], "metric_names": ["acc_left", "acc_right"],
        "metric_higher_better": [True, True], "metric_task": [0, 1]}
LRS = (0.025, 0.05, 0.1, 0.2)


def record(method, optimizer, seed, test, val=0.5, lr=None, stl_task=None):
    """A two-epoch record reported on epoch 1 (last-k with k = 1): test accuracy ``test`` on both tasks, validation
    accuracy ``val`` on both tasks at the reported epoch (and 0 at epoch 0, which must not count)."""
    metrics = {"acc_left": test, "acc_right": test}
    return {"run_id": f"{method}-{optimizer}-{lr}-s{seed}",
            "config": {"benchmark": "multi_fashion", "method": method, "optimizer": optimizer, "lr": lr,
                       "seed": seed, "stl_task": stl_task, "profile": "smoke"},
            "benchmark": INFO, "final": {"rule": "last_k", "epochs": [1], "test_metrics": metrics},
            "epochs": [{"epoch": 0, "val_metrics": {"acc_left": 0.0, "acc_right": 0.0}},
                       {"epoch": 1, "val_metrics": {"acc_left": val, "acc_right": val}}]}


def note(method, lr, seed):
    return {"run_id": f"{method}-sgd-{lr}-s{seed}", "status": "diverged", "error": "loss is nan at step 3",
            "config": {"benchmark": "multi_fashion", "method": method, "optimizer": "sgd", "lr": lr, "seed": seed}}


STL = [record("ls", "adam", s, 0.8, stl_task=k) for s in (0, 1) for k in (0, 1)]
ADAM = [record("ls", "adam", 0, 0.8), record("ls", "adam", 1, 0.8),          # Δm 0, 0
        record("imtl_g", "adam", 0, 0.84), record("imtl_g", "adam", 1, 0.76)]  # Δm −5, +5


def test_validation_score_averages_the_reported_epochs_only() -> None:
    assert validation_score(record("ls", "sgd", 0, 0.8, val=0.6, lr=0.1)) == pytest.approx(0.6)
    lower_better = {**INFO, "metric_higher_better": [True, False]}
    with pytest.raises(ValueError, match="higher-is-better"):
        validation_score({**record("ls", "sgd", 0, 0.8, lr=0.1), "benchmark": lower_better})


def test_best_validated_lr_is_chosen_and_a_diverged_or_incomplete_lr_is_not() -> None:
    sgd = [
        # LS: best validation at 0.05 on both seeds; 0.2 would be best but diverged on seed 1.
        record("ls", "sgd", 0, 0.76, val=0.70, lr=0.05), record("ls", "sgd", 1, 0.72, val=0.70, lr=0.05),
        record("ls", "sgd", 0, 0.70, val=0.60, lr=0.025), record("ls", "sgd", 1, 0.70, val=0.60, lr=0.025),
        record("ls", "sgd", 0, 0.90, val=0.90, lr=0.2),
        # IMTL-G: 0.1 has the best mean (0.8) on both seeds; 0.2 is better still but only seed 0 is stored.
        record("imtl_g", "sgd", 0, 0.8, val=0.85, lr=0.1), record("imtl_g", "sgd", 1, 0.8, val=0.75, lr=0.1),
        record("imtl_g", "sgd", 0, 0.7, val=0.50, lr=0.05), record("imtl_g", "sgd", 1, 0.7, val=0.50, lr=0.05),
        record("imtl_g", "sgd", 0, 0.9, val=0.99, lr=0.2),
    ]
    control = step_scale_control(sgd, [note("ls", 0.2, 1)], ADAM, STL, LRS)
    chosen = control.chosen.set_index("method")
    assert chosen.loc["ls", "lr"] == 0.05 and chosen.loc["imtl_g", "lr"] == 0.1
    assert chosen.loc["imtl_g", "lr_vs_ls"] == pytest.approx(2.0)
    assert not chosen["at_edge"].any()
    scan = control.scan.set_index(["method", "lr"])
    assert scan.loc[("ls", 0.2), "diverged"] == 1 and scan.loc[("ls", 0.2), "n_seeds"] == 1
    # Δm% = 100 (0.8 − x) / 0.8 on both tasks: LS at 0.05: 5, 10; IMTL-G at 0.1: 0, 0.
    assert chosen.loc["ls", "sgd_delta_m"] == pytest.approx(7.5)
    # Adam − SGD paired: LS (0 − 5, 0 − 10) -> −7.5; IMTL-G (−5 − 0, 5 − 0) -> 0
    assert chosen.loc["ls", "difference"] == pytest.approx(-7.5)
    assert chosen.loc["ls", "ci95"] == pytest.approx(12.7062 * math.sqrt(12.5) / math.sqrt(2), rel=1e-4)
    assert chosen.loc["imtl_g", "difference"] == pytest.approx(0.0)
    assert not chosen["resolved"].any()
    assert math.isnan(control.rank_correlation)  # two methods: no rank correlation
    # Cost of LS's lr (0.05) for IMTL-G: Δm% 12.5 at 0.05 on both seeds − 0 at its own 0.1 -> 12.5, zero spread.
    assert chosen.loc["imtl_g", "shared_lr_cost"] == pytest.approx(12.5)
    assert chosen.loc["imtl_g", "shared_lr_cost_ci"] == pytest.approx(0.0)
    assert bool(chosen.loc["imtl_g", "shared_lr_cost_resolved"])
    assert chosen.loc["ls", "shared_lr_cost"] == 0.0 and not chosen.loc["ls", "shared_lr_cost_resolved"]
    assert control.shared_lr_cost_text() == ("the other methods' test Δm% changes by +12.50 to +12.50 points (mean "
                                             "+12.50, over 1 method); the loss is resolved for 1 of 1 "
                                             "(imtl_g +12.50 ± 0.00)")


def test_the_cost_of_ls_lr_is_missing_when_a_method_never_ran_at_it() -> None:
    sgd = [record("ls", "sgd", s, 0.8, val=0.6, lr=0.1) for s in (0, 1)]
    sgd += [record("mgda", "sgd", s, 0.8, val=0.6, lr=0.2) for s in (0, 1)]
    chosen = step_scale_control(sgd, [note("mgda", 0.1, 0)], ADAM, STL, LRS).chosen.set_index("method")
    assert chosen.loc["mgda", "lr"] == 0.2 and math.isnan(chosen.loc["mgda", "shared_lr_cost"])


def test_an_lr_at_the_end_of_the_scan_is_flagged() -> None:
    sgd = [record("ls", "sgd", s, 0.8, val=v, lr=lr) for s in (0, 1) for lr, v in ((0.1, 0.5), (0.2, 0.6))]
    chosen = step_scale_control(sgd, [], ADAM, STL, LRS).chosen.set_index("method")
    assert chosen.loc["ls", "lr"] == 0.2 and bool(chosen.loc["ls", "at_edge"])


def test_a_method_whose_every_lr_diverged_has_no_choice_but_stays_in_the_scan() -> None:
    sgd = [record("ls", "sgd", s, 0.8, val=0.6, lr=0.1) for s in (0, 1)]
    control = step_scale_control(sgd, [note("mgda", 0.1, 0), note("mgda", 0.1, 1)], ADAM, STL, LRS)
    assert list(control.chosen["method"]) == ["ls"]
    mgda = control.scan[control.scan["method"] == "mgda"].iloc[0]
    assert mgda["diverged"] == 2 and math.isnan(mgda["val_score"])


def test_no_sgd_record_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no SGD record"):
        step_scale_control([], [], ADAM, STL, LRS)


def test_adam_verdicts_count_resolved_signs_and_name_the_resolved_methods() -> None:
    # Δm% = 100 (0.8 − x) / 0.8. Tuned SGD: LS 0 and 0, IMTL-G −10 and −10, MGDA 0 and −10.
    sgd = [record("ls", "sgd", s, 0.8, lr=0.1) for s in (0, 1)]
    sgd += [record("imtl_g", "sgd", s, 0.88, lr=0.1) for s in (0, 1)]
    sgd += [record("mgda", "sgd", 0, 0.8, lr=0.1), record("mgda", "sgd", 1, 0.88, lr=0.1)]
    # Adam: LS −5 and −5 (better by 5 on both seeds), IMTL-G 0 and 0 (worse by 10), MGDA 0 and 0 (0 and +10).
    adam = [record("ls", "adam", s, 0.84) for s in (0, 1)] + [record(m, "adam", s, 0.8) for m in ("imtl_g", "mgda")
                                                              for s in (0, 1)]
    control = step_scale_control(sgd, [], adam, STL, LRS)
    assert control.adam_verdicts() == (1, 1, 1)
    assert control.adam_verdict_text() == ("Adam is resolvedly better than tuned SGD for 1 (ls -5.00 ± 0.00), worse "
                                           "for 1 (imtl_g +10.00 ± 0.00) and unresolved for 1 of 3 methods (2 seeds)")
    # Spearman's ρ of the mean Δm%: tuned SGD (LS 0, IMTL-G −10, MGDA −5) ranks (3, 1, 2); Adam (−5, 0, 0) ranks
    # (1, 2.5, 2.5). Centred: (1, −1, 0) and (−1, 0.5, 0.5), so ρ = −1.5 / (√2 · √1.5) = −√3/2.
    assert control.rank_correlation == pytest.approx(-math.sqrt(3) / 2)
    assert control.rank_correlation_text() == "-0.87"


def test_stored_control_is_computed_on_the_complete_seeds_only(tmp_path, monkeypatch) -> None:
    """Seed 1 counts once its whole scan and the grid's Adam and single-task runs it needs are stored."""
    import apt.grids
    from apt.experiment import record_path
    from apt.step_scale import stored_step_scale_control
    from apt.store import RECORD_SCHEMA, write_record

    grid_ = apt.grids.Grid(apt.grids.SGD_CONTROL_BENCHMARK, ("ls", "mgda"), ("adam",), (0, 1))
    monkeypatch.setitem(apt.grids.SGD_CONTROL_SEEDS, "smoke", (0, 1))
    monkeypatch.setattr(apt.grids, "book_grids", lambda profile: {apt.grids.SGD_CONTROL_BENCHMARK: grid_})

    def store(config, test=0.8):
        made = record(config.method, config.optimizer, config.seed, test, lr=config.lr, stl_task=config.stl_task)
        write_record(record_path(config, tmp_path), {**made, "schema": RECORD_SCHEMA, "run_id": config.run_id,
                                                     "config_hash": config.config_hash, "status": "complete"})

    scan = apt.grids.sgd_control_configs("smoke")
    grid_runs = grid_.configs("smoke")
    control, coverage = stored_step_scale_control("smoke", results_dir=tmp_path)
    assert control is None and coverage.endswith("complete seeds: none")

    for config in [*scan.values(), *grid_runs]:
        if config.seed == 0:
            store(config)
    seed_1_scan = [c for c in scan.values() if c.seed == 1]
    for config in seed_1_scan[:-1]:
        store(config)
    control, coverage = stored_step_scale_control("smoke", results_dir=tmp_path)
    assert coverage.endswith("complete seeds: 0") and set(control.chosen["n_seeds"]) == {1}

    store(seed_1_scan[-1])  # the scan of seed 1 is complete, its single-task baselines are not yet stored
    for config in grid_runs:
        if config.seed == 1 and config.stl_task is None:
            store(config)
    assert stored_step_scale_control("smoke", results_dir=tmp_path)[1].endswith("complete seeds: 0")

    for config in grid_runs:
        if config.seed == 1 and config.stl_task is not None:
            store(config)
    control, coverage = stored_step_scale_control("smoke", results_dir=tmp_path)
    assert coverage.endswith("complete seeds: 0, 1") and set(control.chosen["n_seeds"]) == {2}
