"""Bad configs fail before training, with a message naming the field."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from apt.config import HASHED_FIELDS, Config, _plain, validate


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"benchmark": "imagenet"}, "benchmark='imagenet'"),
        ({"method": "magic"}, "method='magic'"),
        ({"optimizer": "lion"}, "optimizer='lion'"),
        ({"profile": "huge"}, "profile='huge'"),
        ({"protocol_overrides": {"epochs": -1}}, "epochs=-1"),
        ({"protocol_overrides": {"epoch": 2}}, "unknown protocol field"),
        ({"seed": -3}, "seed=-3"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"stl_task": 7}, "stl_task=7"),
        ({"stl_task": 0, "method": "mgda"}, "method='mgda'"),
        ({"diagnostics_every": 0}, "diagnostics_every=0"),
        # hyperparameters: checked by building the method and the optimizer, before any data is loaded
        ({"optimizer": "apt_adam", "optimizer_hp": {"beta_min": 0.9, "beta_max": 0.5}},
         "optimizer_hp=.*beta_min=0.9 > beta_max=0.5"),
        ({"optimizer": "adam", "optimizer_hp": {"momentum": 0.9}}, "optimizer_hp=.*unknown hyperparameter.*momentum"),
        ({"optimizer": "apt_muon", "optimizer_hp": {"preserve_strength": 2.0}}, "preserve_strength=2.0"),
        ({"method": "cagrad", "method_hp": {"c": -1}}, "method_hp=.*c=-1"),
        ({"method": "mgda", "method_hp": {"nope": 1}}, "method_hp=.*nope"),
        ({"method": "pcgrad", "rep_grad": True}, "rep_grad=True: method 'pcgrad'"),
    ],
)
def test_bad_config_names_the_field(fields, message):
    config = Config(**{"benchmark": "multi_mnist", "profile": "smoke", **fields})
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        validate(config)


def test_bad_hyperparameters_fail_before_any_data_is_read(monkeypatch):
    from apt.benchmarks.multi_mnist import MultiMNISTBenchmark

    def no_data(*args, **kwargs):
        raise AssertionError("validate read data")

    monkeypatch.setattr(MultiMNISTBenchmark, "splits", no_data)
    with pytest.raises(ValueError, match="beta_min=0.9 > beta_max=0.5"):
        validate(Config(benchmark="multi_mnist", profile="smoke", optimizer="apt_adam",
                        optimizer_hp={"beta_min": 0.9, "beta_max": 0.5}))
    for optimizer in ("sgd", "sgdm", "adam", "apt_adam", "muon", "apt_muon"):  # the defaults pass
        validate(Config(benchmark="multi_mnist", profile="smoke", optimizer=optimizer, method="nash_mtl"))


def test_rep_grad_needs_a_representation_that_covers_the_shared_parameters():
    with pytest.raises(ValueError, match="rep_grad=True: benchmark 'nyuv2'"):
        validate(Config(benchmark="nyuv2", profile="smoke", method="mgda", rep_grad=True))


def test_unknown_config_field_is_named():
    with pytest.raises(ValueError, match="unknown config field"):
        Config.from_dict({"benchmark": "qm9", "optimiser": "adam"})


def test_hash_ignores_where_data_lives_but_not_what_is_trained():
    base = Config(benchmark="qm9", method="ls")
    assert Config(benchmark="qm9", method="ls", data_dir="/elsewhere").config_hash == base.config_hash
    assert Config(benchmark="qm9", method="mgda").config_hash != base.config_hash
    assert Config(benchmark="qm9", method="ls", optimizer_hp={"beta_min": 0.5}).config_hash != base.config_hash


def test_hash_does_not_depend_on_mapping_order():
    a = Config(benchmark="qm9", optimizer_hp={"beta_min": 0.5, "beta_max": 0.99})
    b = Config(benchmark="qm9", optimizer_hp={"beta_max": 0.99, "beta_min": 0.5})
    assert a.config_hash == b.config_hash and a.run_id == b.run_id


def test_round_trip_through_dict():
    config = Config(benchmark="qm9", method="famo", method_hp={"gamma": 0.001}, seed=2)
    assert Config.from_dict(config.to_dict()) == config


def test_a_later_field_enters_the_hash_only_away_from_its_default():
    """diagnostics_alignment was added after records were stored: at its default (True) the hash is the one the
    field-less config had (every stored record keeps its id); set to False, it makes another run."""
    base = Config(benchmark="multi_mnist", diagnostics=True)
    without_field = {name: getattr(base, name) for name in HASHED_FIELDS}
    canonical = json.dumps({k: _plain(v) for k, v in without_field.items()}, sort_keys=True, separators=(",", ":"))
    assert base.config_hash == hashlib.sha256(canonical.encode()).hexdigest()[:12]
    assert replace(base, diagnostics_alignment=True).config_hash == base.config_hash
    assert replace(base, diagnostics_alignment=False).config_hash != base.config_hash
    with pytest.raises(ValueError, match="diagnostics_alignment='no'"):
        validate(replace(base, diagnostics_alignment="no"))


def test_a_later_field_appears_in_the_record_config_only_away_from_its_default():
    base = Config(benchmark="multi_mnist", diagnostics=True)
    assert "diagnostics_alignment" not in base.to_dict()
    lean = replace(base, diagnostics_alignment=False)
    assert lean.to_dict()["diagnostics_alignment"] is False
    assert Config.from_dict(base.to_dict()) == base and Config.from_dict(lean.to_dict()) == lean
