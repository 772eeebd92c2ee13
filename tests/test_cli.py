"""The command line: `grid --dry-run` (what it counts as missing; a diverged run is not), and `run` flags."""

from __future__ import annotations

from apt.__main__ import main
from apt.experiment import record_path
from apt.grids import book_configs, sgd_control_configs
from apt.store import divergence_path, write_divergence


def test_dry_run_counts_missing_runs_and_names_diverged_ones(tmp_path, capsys) -> None:
    args = ["grid", "--profile", "smoke", "--benchmarks", "multi_fashion", "--no-ablations", "--dry-run",
            "--results-dir", str(tmp_path)]
    total = len(book_configs("smoke", benchmarks=["multi_fashion"], ablations=False))
    assert main(args) == 0
    assert f"{total} runs in the smoke book grid selected; {total} missing" in capsys.readouterr().out

    config = next(iter(sgd_control_configs("smoke").values()))
    write_divergence(divergence_path(record_path(config, tmp_path)),
                     {"run_id": config.run_id, "config": config.to_dict(), "status": "diverged", "error": "nan"})
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"{total} missing" not in out
    assert f"{total - 1} missing; 1 diverged earlier" in out
    assert main([*args, "--no-controls"]) == 0
    assert "diverged" not in capsys.readouterr().out


def test_run_without_alignment_is_the_config_without_alignment(tmp_path, capsys, monkeypatch) -> None:
    """`python -m apt run --diagnostics --no-diagnostics-alignment` makes the run chapter 10's command names."""
    from apt.config import Config

    monkeypatch.setenv("APT_RUNS_DIR", str(tmp_path / "runs"))
    assert main(["run", "--benchmark", "multi_mnist", "--profile", "smoke", "--diagnostics",
                 "--no-diagnostics-alignment", "--results-dir", str(tmp_path), "--no-progress"]) == 0
    expected = Config(benchmark="multi_mnist", profile="smoke", diagnostics=True, diagnostics_alignment=False)
    assert f"record: {record_path(expected, tmp_path)}" in capsys.readouterr().out
