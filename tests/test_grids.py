"""The book's grids: what they contain, their order, and the fixed-β control's β."""

from __future__ import annotations

from pathlib import Path

import pytest

from apt.config import validate
from apt.experiment import record_path
from apt.grids import (
    ABLATION_SEEDS,
    APT_ADAM_VARIANTS,
    APT_MUON_VARIANTS,
    BOOK_OPTIMIZERS,
    CLAIM1_BENCHMARKS,
    CLAIM2_METHODS,
    CLAIM2_OPTIMIZERS,
    FIXED_BETA_SOURCE_SEEDS,
    SGD_CONTROL_BENCHMARK,
    SGD_CONTROL_LRS,
    SGD_CONTROL_METHODS,
    SGD_CONTROL_SEEDS,
    Grid,
    ablation_arms,
    ablation_config,
    ablation_held,
    book_configs,
    book_grids,
    claim1_configs,
    claim2_configs,
    fixed_beta_variant,
    load_grid,
    mean_beta_used,
    sgd_control_configs,
)
from apt.mtl import METHODS
from apt.store import RECORD_SCHEMA, divergence_path, write_divergence, write_record
from apt.sweep import grid


def test_cpu_grid_covers_every_method_under_the_four_optimizer_settings_with_enough_seeds() -> None:
    grids = book_grids("cpu")
    for name in ("multi_mnist", "multi_fashion", "multi_fashion_mnist"):
        assert set(grids[name].methods) == set(METHODS)
        assert grids[name].optimizers == BOOK_OPTIMIZERS
        assert len(grids[name].seeds) >= 5
    assert {"mgda", "imtl_g", "nash_mtl", "fairgrad", "ls", "famo"} <= set(grids["qm9"].methods)
    assert len(grids["qm9"].seeds) >= 3


def test_grid_configs_are_the_sweep_commands_configs() -> None:
    g = Grid("multi_fashion", ("ls", "mgda"), ("adam",), (0, 1))
    ids = [c.run_id for c in g.configs("cpu")]
    assert ids == [c.run_id for c in grid("multi_fashion", ["ls", "mgda"], ["adam"], [0, 1], profile="cpu")]
    assert len(ids) == g.size + 2 * 2  # + one STL baseline per task and seed


def test_book_configs_are_seed_major_baselines_first_and_unique() -> None:
    configs = book_configs("cpu", benchmarks=["multi_fashion", "qm9"], ablations=False)
    seeds = [c.seed for c in configs]
    assert seeds == sorted(seeds)
    for seed in set(seeds):
        is_stl = [c.stl_task is not None for c in configs if c.seed == seed]
        assert any(is_stl) and is_stl == sorted(is_stl, reverse=True)  # every STL run before every MTL run
    assert len({c.run_id for c in configs}) == len(configs)


def test_benchmarks_select_the_ablations_and_the_control_of_their_benchmark_only() -> None:
    for profile in ("smoke", "cpu"):
        for name in book_grids(profile):
            benchmarks = {c.benchmark for c in book_configs(profile, benchmarks=[name])}
            assert benchmarks == {name}, (profile, name, benchmarks)
    every = book_configs("cpu")
    assert {c.run_id for c in every} == {c.run_id for name in book_grids("cpu")
                                         for c in book_configs("cpu", benchmarks=[name])}


def test_unknown_profile_or_benchmark_is_named() -> None:
    with pytest.raises(ValueError, match="unknown profile 'gpu'"):
        book_grids("gpu")
    with pytest.raises(ValueError, match=r"\['mnist'\]"):
        book_configs("smoke", benchmarks=["mnist"])


def _record(config, beta_series):
    """A record with the fields the store validates and the β series the grid functions read."""
    return {"schema": RECORD_SCHEMA, "run_id": config.run_id, "config": {"seed": config.seed},
            "config_hash": config.config_hash, "status": "complete", "final": {},
            "diagnostics": {"beta_mean": beta_series}}


def test_mean_beta_used_is_the_mean_of_run_means() -> None:
    config = ablation_config(APT_ADAM_VARIANTS[1], 0, "smoke")
    records = [_record(config, [0.5, 0.7]), _record(config, [0.9, 0.9, 0.9, 0.5])]
    assert mean_beta_used(records) == pytest.approx((0.6 + 0.8) / 2)
    variant = fixed_beta_variant(records, "apt_adam")
    assert dict(variant.optimizer_hp) == {"beta_min": 0.7, "beta_max": 0.7}
    validate(ablation_config(variant, 0, "cpu"))
    with pytest.raises(ValueError, match="diagnostics"):
        mean_beta_used([_record(config, [])])


def test_mean_beta_over_the_adapted_tensors_leaves_out_the_held_group() -> None:
    # 10% of the parameters held at 0.9, the rest at 0.6 throughout: the all-tensor mean is 0.63.
    config = ablation_config(APT_MUON_VARIANTS[1], 0, "smoke")
    records = [_record(config, [0.63, 0.63])]
    assert mean_beta_used(records, held=(0.1, 0.9)) == pytest.approx(0.6)
    variant = fixed_beta_variant(records, "apt_muon", held=(0.1, 0.9))
    assert dict(variant.optimizer_hp) == {"beta_min": 0.6, "beta_max": 0.6}
    with pytest.raises(ValueError, match="held fraction"):
        mean_beta_used(records, held=(1.0, 0.9))


def test_apt_muon_holds_its_adamw_group_and_apt_adam_holds_nothing() -> None:
    fraction, beta = ablation_held("apt_muon")
    assert 0.0 < fraction < 0.5 and beta == 0.9
    assert ablation_held("apt_adam") is None


def test_fixed_beta_control_appears_once_its_default_arm_is_stored(tmp_path) -> None:
    before = ablation_arms("smoke", results_dir=tmp_path)["apt_adam"]
    assert not any("fixed" in v.label for v, _ in before)
    default = APT_ADAM_VARIANTS[1]
    for variant, config in before:
        if variant == default:
            write_record(tmp_path / config.benchmark / f"{config.run_id}.json", _record(config, [0.8, 0.84]))
    after = ablation_arms("smoke", results_dir=tmp_path)["apt_adam"]
    controls = [c for v, c in after if "fixed" in v.label]
    assert controls and all(c.optimizer_hp == {"beta_min": 0.82, "beta_max": 0.82} for c in controls)


def test_fixed_beta_control_keeps_its_beta_and_run_id_when_ablation_seeds_are_added(tmp_path) -> None:
    def store_default(seeds, beta):
        for variant, config in ablation_arms("cpu", results_dir=tmp_path)["apt_adam"]:
            if variant == APT_ADAM_VARIANTS[1] and config.seed in seeds:
                write_record(tmp_path / config.benchmark / f"{config.run_id}.json", _record(config, [beta]))

    def control_ids():
        return sorted(c.run_id for v, c in ablation_arms("cpu", results_dir=tmp_path)["apt_adam"] if "fixed" in v.label)

    sources = FIXED_BETA_SOURCE_SEEDS["cpu"]
    later = [s for s in ABLATION_SEEDS["cpu"] if s not in sources]
    assert sources and later and set(sources) < set(ABLATION_SEEDS["cpu"])
    store_default(sources[:-1], 0.80)
    assert control_ids() == []  # not every source seed is stored yet
    store_default(sources[-1:], 0.80)
    before = control_ids()
    assert len(before) == len(ABLATION_SEEDS["cpu"])  # one control run per ablation seed, β from the source seeds
    store_default(later, 0.60)  # later seeds with another β must not move the control
    assert control_ids() == before
    controls = [c for v, c in ablation_arms("cpu", results_dir=tmp_path)["apt_adam"] if "fixed" in v.label]
    assert all(c.optimizer_hp == {"beta_min": 0.8, "beta_max": 0.8} for c in controls)


def test_load_grid_reads_only_the_grids_own_records(tmp_path) -> None:
    g = Grid("multi_mnist", ("ls",), ("adam",), (0,), stl=False)
    (config,) = g.configs("smoke")
    other = ablation_config(APT_ADAM_VARIANTS[0], 0, "smoke", benchmark="multi_mnist", method="ls")
    for c in (config, other):
        write_record(tmp_path / c.benchmark / f"{c.run_id}.json", _record(c, []))
    loaded = load_grid(g, "smoke", results_dir=tmp_path)
    assert len(loaded.records) == 1 and not loaded.missing
    assert loaded.coverage == "1 of 1 runs of the multi_mnist grid are in the store"


def test_complete_seeds_need_every_arm_and_baseline(tmp_path) -> None:
    g = Grid("multi_mnist", ("ls", "mgda"), ("adam",), (0, 1))
    configs = g.configs("smoke")
    for c in configs:
        if not (c.seed == 1 and c.stl_task == 1):  # seed 1 lacks one single-task baseline
            write_record(tmp_path / c.benchmark / f"{c.run_id}.json", _record(c, []))
    loaded = load_grid(g, "smoke", results_dir=tmp_path)
    assert loaded.complete_seeds() == [0]
    assert {r["config"]["seed"] for r in loaded.complete_records()} == {0}


def test_partial_seed_is_the_fullest_seed_whose_baselines_are_all_stored(tmp_path) -> None:
    g = Grid("multi_mnist", ("ls", "mgda"), ("adam", "muon"), (0, 1, 2))
    arms_kept = {0: 1, 1: 3, 2: 4}  # MTL arms stored per seed; seed 2 lacks a baseline, seed 1 has the most else
    for c in g.configs("smoke"):
        keep = (c.stl_task is not None and not (c.seed == 2 and c.stl_task == 0)) or (
            c.stl_task is None and g.methods.index(c.method) * 2 + g.optimizers.index(c.optimizer) < arms_kept[c.seed])
        if keep:
            write_record(record_path(c, tmp_path), {**_record(c, []), "config": c.to_dict()})
    loaded = load_grid(g, "smoke", results_dir=tmp_path)
    assert loaded.complete_seeds() == []
    assert loaded.partial_seed() == 1
    assert loaded.arms_stored(1) == (3, 4) and loaded.arms_stored(2) == (4, 4)
    assert {r["config"]["seed"] for r in loaded.seed_records([1])} == {1}
    assert len(loaded.seed_records([1])) == 3 + 2  # three arms and both baselines


def test_no_partial_seed_without_its_baselines(tmp_path) -> None:
    g = Grid("multi_mnist", ("ls",), ("adam",), (0,))
    for c in g.configs("smoke"):
        if c.stl_task is None:
            write_record(record_path(c, tmp_path), {**_record(c, []), "config": c.to_dict()})
    assert load_grid(g, "smoke", results_dir=tmp_path).partial_seed() is None


def test_a_diverged_arm_counts_as_stored_but_keeps_its_seed_out_of_the_tables(tmp_path) -> None:
    g = Grid("multi_mnist", ("ls",), ("adam", "sgd"), (0, 1), stl=False)
    configs = g.configs("smoke")
    for c in configs:
        path = record_path(c, tmp_path)
        if c.seed == 1 and c.optimizer == "sgd":
            write_divergence(divergence_path(path), {"run_id": c.run_id, "config": {"seed": 1}, "status": "diverged",
                                                     "error": "loss of task 'left' (index 0) is nan at step 7"})
        else:
            write_record(path, _record(c, []))
    loaded = load_grid(g, "smoke", results_dir=tmp_path)
    assert not loaded.missing and len(loaded.diverged) == 1
    assert loaded.complete_seeds() == [0]
    assert loaded.coverage == "3 of 4 runs of the multi_mnist grid are in the store (1 diverged)"
    assert loaded.stored_fraction == "3 of 4"


def test_sgd_control_scans_factor_two_learning_rates_per_method_and_seed() -> None:
    configs = sgd_control_configs("cpu")
    assert len(configs) == len(SGD_CONTROL_METHODS) * len(SGD_CONTROL_LRS) * len(SGD_CONTROL_SEEDS["cpu"])
    assert all(c.optimizer == "sgd" and c.lr == lr and c.method == m and c.seed == s
               for (m, lr, s), c in configs.items())
    ratios = [b / a for a, b in zip(SGD_CONTROL_LRS, SGD_CONTROL_LRS[1:])]
    assert ratios == pytest.approx([2.0] * len(ratios))
    for config in configs.values():
        validate(config)
    # the Adam arm it is compared with and the baselines are runs of the book grid at the same seeds
    grid_ = book_grids("cpu")[SGD_CONTROL_BENCHMARK]
    assert set(SGD_CONTROL_METHODS) <= set(grid_.methods) and "adam" in grid_.optimizers
    assert set(SGD_CONTROL_SEEDS["cpu"]) <= set(grid_.seeds)
    smoke = sgd_control_configs("smoke")
    assert {m for m, _, _ in smoke} <= set(book_grids("smoke")[SGD_CONTROL_BENCHMARK].methods)


def test_book_configs_include_the_sgd_control_only_with_its_benchmark() -> None:
    control = {c.run_id for c in sgd_control_configs("cpu").values()}
    assert control <= {c.run_id for c in book_configs("cpu", benchmarks=[SGD_CONTROL_BENCHMARK])}
    assert not control & {c.run_id for c in book_configs("cpu", benchmarks=["qm9"])}
    assert not control & {c.run_id for c in book_configs("cpu", controls=False)}


def test_the_committed_cpu_store_holds_every_diagnostics_run_of_chapters_3_and_4() -> None:
    """A fresh clone's `make book` trains nothing for claims 1 and 2: a change to how these configs are built that
    changed their run ids would orphan the committed records (and retrain them for an hour in the book build)."""
    configs = [*claim2_configs("cpu", 0).values()]
    configs += [c for b in CLAIM1_BENCHMARKS for c in claim1_configs("cpu", 0, benchmark=b).values()]
    committed = Path(__file__).resolve().parents[1] / "results" / "cpu"
    missing = [c.run_id for c in configs if not record_path(c, committed).exists()]
    assert not missing, f"not in results/cpu: {missing}"
    assert {(m, o) for m, o, _ in claim2_configs("cpu", 0)} == {(m, o) for m in CLAIM2_METHODS for o in CLAIM2_OPTIMIZERS}
    assert all(("spectrum_every" in c.optimizer_hp) == (c.optimizer == "muon") for c in claim2_configs("cpu", 3).values())
    assert {c.seed for c in claim2_configs("cpu", 3).values()} == {3, 4}
