"""QM9 on a real subset: the first records of the raw files, processed by PyG (seconds, not the full 100 s).

Checks targets against the csv by hand, the lineage transforms, the split, model shapes and the MPNN's
one-edge-network forward against PyG's plain NNConv, and the MAE scaling.
"""

from __future__ import annotations

import gzip

import pandas as pd
import pytest
import torch

from apt.benchmarks.qm9 import (  # imports torch_geometric quietly first
    MEV_TASKS,
    TARGET_INDEX,
    TARGET_NAMES,
    CompleteGraph,
    QM9Benchmark,
    QM9MetricAccumulator,
    prepare_qm9_root,
)
from apt.data_dir import DataMissingError, data_dir

N_RECORDS = 300
EV_PER_HARTREE = 27.211386246
EV_PER_KCAL_PER_MOL = 0.04336414


@pytest.fixture(scope="module")
def raw_folder(require_data):
    folder = data_dir() / "qm9" / "raw"
    for name in ("gdb9.sdf.gz", "gdb9.sdf.csv.gz", "uncharacterized.txt"):
        require_data(folder / name)
    return folder


@pytest.fixture(scope="module")
def qm9(raw_folder, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        bench = QM9Benchmark(raw_folder.parent.parent, max_records=N_RECORDS)
        bench.dataset()  # processes inside the patched cache
        yield bench


@pytest.fixture(scope="module")
def csv_rows(raw_folder) -> pd.DataFrame:
    with gzip.open(raw_folder / "gdb9.sdf.csv.gz", "rt") as f:
        return pd.read_csv(f, nrows=N_RECORDS)


def test_processed_targets_equal_the_csv_in_pyg_units(qm9, csv_rows):
    dataset = qm9.dataset()
    assert 250 < len(dataset) < N_RECORDS  # uncharacterized records are skipped
    for data in dataset:
        row = csv_rows.iloc[int(data.idx)]
        assert row["mol_id"] == f"gdb_{int(data.idx) + 1}"
        expected = {
            0: row["mu"], 1: row["alpha"], 2: row["homo"] * EV_PER_HARTREE, 3: row["lumo"] * EV_PER_HARTREE,
            5: row["r2"], 6: row["zpve"] * EV_PER_HARTREE, 11: row["cv"],
            12: row["u0_atom"] * EV_PER_KCAL_PER_MOL, 13: row["u298_atom"] * EV_PER_KCAL_PER_MOL,
            14: row["h298_atom"] * EV_PER_KCAL_PER_MOL, 15: row["g298_atom"] * EV_PER_KCAL_PER_MOL,
        }  # fmt: skip
        for column, value in expected.items():
            assert data.y[0, column].item() == pytest.approx(value, rel=1e-5, abs=1e-6)


def test_uncharacterized_records_are_skipped(qm9, csv_rows):
    kept = {int(d.idx) for d in qm9.dataset()}
    nan_rows = set(csv_rows.index[csv_rows["mu"].isna()])
    assert 57 in nan_rows  # gdb_58, the first uncharacterized molecule
    assert kept.isdisjoint(nan_rows)
    assert kept | nan_rows == set(range(N_RECORDS))


def test_complete_graph_on_a_hand_made_graph():
    from torch_geometric.data import Data

    bond = torch.tensor([[0.0, 1.0, 0.0, 0.0]])  # one double bond 0 → 2
    data = Data(edge_index=torch.tensor([[0], [2]]), edge_attr=bond, num_nodes=3)
    out = CompleteGraph()(data)
    assert out.edge_index.tolist() == [[0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1]]
    expected = torch.zeros(6, 4)
    expected[1] = bond[0]
    assert torch.equal(out.edge_attr, expected)


def test_transforms_on_real_molecules(qm9):
    splits = qm9.splits(qm9.protocol_for("smoke"), seed=0)
    raw = qm9.dataset()
    for position in range(5):
        data = splits.train[position]
        original = raw[int(splits.train.indices()[position])]
        n = data.num_nodes
        assert data.edge_index.shape == (2, n * (n - 1))
        assert data.edge_attr.shape == (n * (n - 1), 5)
        assert not bool((data.edge_index[0] == data.edge_index[1]).any())
        source, target = data.edge_index
        distance = (data.pos[target] - data.pos[source]).norm(dim=1)
        assert torch.allclose(data.edge_attr[:, 4], distance)
        assert int((data.edge_attr[:, :4].sum(1) > 0).sum()) == original.edge_index.shape[1]
        assert data.y.shape == (1, len(TARGET_INDEX))


def test_targets_are_standardized_with_training_statistics(qm9):
    splits = qm9.splits(qm9.protocol, seed=1)
    train_y = torch.cat([splits.train[i].y for i in range(len(splits.train))])
    assert torch.allclose(train_y.mean(0), torch.zeros(11), atol=1e-5)
    assert torch.allclose(train_y.std(0), torch.ones(11), atol=1e-5)
    raw_y = qm9.dataset()._data.y[splits.train.indices()][:, list(TARGET_INDEX)]
    assert torch.allclose(qm9.target_std, raw_y.std(0))


def test_split_is_seeded_disjoint_and_profiles_take_prefixes(qm9):
    n = len(qm9.dataset())
    train, val, test = qm9.split_indices(n, seed=3)
    held_out = n // 13
    assert (len(test), len(val), len(train)) == (held_out, held_out, n - 2 * held_out)
    assert len(set(train.tolist()) | set(val.tolist()) | set(test.tolist())) == n
    again = qm9.split_indices(n, seed=3)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again))
    assert not torch.equal(test, qm9.split_indices(n, seed=4)[2])
    small = qm9.splits(qm9.protocol.with_overrides({"n_train": 7, "n_val": 3, "n_test": 2}), seed=3)
    assert small.train.indices() == train[:7].tolist()
    assert small.val.indices() == val[:3].tolist()
    assert small.test.indices() == test[:2].tolist()


def test_full_size_split_follows_the_lineage(qm9):
    train, val, test = qm9.split_indices(130_831, seed=0)
    assert (len(test), len(val), len(train)) == (10_000, 10_000, 110_831)


def test_full_split_sizes_count_the_characterized_molecules(qm9, csv_rows, tmp_path):
    characterized = int(csv_rows["mu"].notna().sum())  # the csv's uncharacterized rows are empty
    held_out = characterized // 13
    assert qm9.full_split_sizes() == (characterized - 2 * held_out, held_out, held_out)
    assert sum(qm9.full_split_sizes()) == len(qm9.dataset())
    # without the raw files, the same count from qm9pack's table (nothing is built)
    assert QM9Benchmark(tmp_path, max_records=N_RECORDS).full_split_sizes() == qm9.full_split_sizes()
    assert not any(tmp_path.iterdir())


def test_full_split_sizes_of_the_whole_dataset(raw_folder):
    # 133,885 GDB-9 records − 3,054 uncharacterized = 130,831; ⌊130,831 / 13⌋ = 10,063, capped at 10,000
    assert QM9Benchmark(raw_folder.parent.parent).full_split_sizes() == (110_831, 10_000, 10_000)


def test_model_shapes_and_parameter_split(qm9):
    splits = qm9.splits(qm9.protocol_for("smoke"), seed=0)
    torch.manual_seed(0)
    model = qm9.build_model()
    batch = next(iter(qm9.loader(splits.train, 5, shuffle=False, generator=None)))
    inputs, targets = qm9.inputs_targets(batch, "cpu")
    features = model.shared_forward(inputs)
    outputs = model.heads_forward(features)
    assert features.shape == (5, 64)
    assert len(outputs) == 11 and all(o.shape == (5, 1) for o in outputs)
    assert targets.shape == (5, 11)
    n_shared = sum(p.numel() for p in model.shared_parameters())
    n_heads = sum(p.numel() for ps in model.task_parameters() for p in ps)
    assert n_heads == 11 * 65
    assert n_shared + n_heads == sum(p.numel() for p in model.parameters())
    names = dict(model.named_parameters())
    excluded = model.muon_excluded_names()
    assert {"shared.input_embedding.weight", "shared.conv.nn.0.weight"} <= excluded
    assert excluded <= set(names)
    assert {n for n in names if n.startswith("heads.")} <= excluded


def test_edge_network_once_equals_the_lineage_forward(qm9):
    from torch.nn import functional as F
    from torch_geometric.nn import NNConv

    splits = qm9.splits(qm9.protocol_for("smoke"), seed=0)
    torch.manual_seed(1)
    model = qm9.build_model().eval()
    batch = next(iter(qm9.loader(splits.val, 6, shuffle=False, generator=None)))
    trunk = model.shared
    plain = NNConv(64, 64, trunk.conv.nn, aggr="mean")
    plain.load_state_dict(trunk.conv.state_dict())
    node = F.relu(trunk.input_embedding(batch.x))
    hidden = node.unsqueeze(0)
    for _ in range(3):  # the lineage loop: the edge network runs inside every conv call
        message = F.relu(plain(node, batch.edge_index, batch.edge_attr))
        node, hidden = trunk.gru(message.unsqueeze(0), hidden)
        node = node.squeeze(0)
    reference = F.relu(trunk.readout(trunk.set2set(node, batch.batch)))
    with torch.no_grad():
        assert torch.allclose(trunk(batch), reference, atol=1e-6)


def test_losses_are_per_task_mse():
    bench = QM9Benchmark.__new__(QM9Benchmark)
    targets = torch.tensor([[1.0] * 11, [3.0] * 11])
    outputs = [torch.tensor([[0.0], [0.0]])] * 11
    assert torch.allclose(bench.losses(outputs, targets), torch.full((11,), (1.0 + 9.0) / 2))
    with pytest.raises(ValueError, match="expects 11 outputs"):
        bench.losses(outputs[:10], targets)


def test_mae_is_destandardized_and_energies_in_mev():
    std = torch.arange(1.0, 12.0)
    accumulator = QM9MetricAccumulator(std)
    targets = torch.zeros(3, 11)
    first = [torch.full((3, 1), 0.5)] * 11  # |error| 0.5 on 3 graphs
    accumulator.update(first, targets)
    accumulator.update([torch.full((1, 1), -2.0)] * 11, torch.zeros(1, 11))  # |error| 2 on 1 graph
    metrics = accumulator.compute()
    assert list(metrics) == list(TARGET_NAMES)
    for k, name in enumerate(TARGET_NAMES):
        expected = (3 * 0.5 + 2.0) / 4 * (k + 1) * (1000.0 if k in MEV_TASKS else 1.0)
        assert metrics[name] == pytest.approx(expected)
    assert MEV_TASKS == (2, 3, 5, 6, 7, 8, 9)


def test_metric_accumulator_needs_splits_first(raw_folder):
    with pytest.raises(RuntimeError, match="splits"):
        QM9Benchmark(raw_folder.parent.parent).metric_accumulator()


def test_published_stl_and_protocol():
    assert QM9Benchmark.published_stl[2] == 60.576 and len(QM9Benchmark.published_stl) == 11
    protocol = QM9Benchmark.protocol
    assert (protocol.epochs, protocol.batch_size, protocol.lr, protocol.scheduler) == (300, 120, 1e-3, "plateau")
    assert dict(protocol.scheduler_kwargs) == {"factor": 0.7, "patience": 5, "min_lr": 1e-5}
    assert protocol.selection == "best_val_delta_m"
    cpu = QM9Benchmark.protocol.with_overrides(QM9Benchmark.profiles["cpu"])
    assert (cpu.n_train, cpu.n_val, cpu.n_test, cpu.epochs) == (2000, 500, 1000, 4)


def test_pyg_never_downloads(tmp_path):
    from apt.benchmarks.qm9 import load_qm9

    with pytest.raises(DataMissingError, match="gdb9.sdf"):
        load_qm9(str(tmp_path / "empty_root"))


def test_missing_sources_name_the_folder(tmp_path, monkeypatch):
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(DataMissingError, match=r"qm9/raw/gdb9\.sdf\.gz.*qm9pack"):
        prepare_qm9_root(tmp_path / "no_data", cache=tmp_path / "cache")


# ----------------------------------------------------------------------------------------------------------
# The offline converter (qm9pack → raw layout) against the raw files of the data folder
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def converted_root(tmp_path_factory):
    from apt.benchmarks.qm9_raw import write_raw_from_qm9pack

    root = tmp_path_factory.mktemp("qm9pack_root")
    write_raw_from_qm9pack(root / "raw", N_RECORDS)
    return root


def test_qm9pack_conversion_agrees_with_the_raw_files(qm9, converted_root):
    from apt.benchmarks.qm9 import load_qm9

    ours, shared = load_qm9(str(converted_root)), qm9.dataset()
    assert len(ours) == len(shared)
    for a, b in zip(ours, shared):
        assert int(a.idx) == int(b.idx) and a.name == b.name
        assert torch.allclose(a.y, b.y, rtol=1e-6, atol=1e-6)  # targets: the point of the agreement
        assert torch.equal(a.z, b.z) and torch.allclose(a.pos, b.pos, atol=1e-4)
        assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.edge_attr, b.edge_attr)


def test_converter_lists_the_same_uncharacterized_molecules(raw_folder, converted_root):
    from apt.benchmarks.qm9_raw import read_uncharacterized_indices

    ours = read_uncharacterized_indices(converted_root / "raw" / "uncharacterized.txt")
    original = read_uncharacterized_indices(raw_folder / "uncharacterized.txt")
    assert len(original) == 3054
    assert ours == [i for i in original if i <= N_RECORDS]


def test_atom_reference_energies_match_pyg_and_methane_by_hand():
    from torch_geometric.datasets.qm9 import atomrefs

    from apt.benchmarks.qm9_raw import ATOM_REFERENCE_HARTREE, atomization_energies_kcal

    for energy, pyg_target in enumerate((7, 8, 9, 10)):  # PyG keeps U0, U, H, G references in eV
        ours = [ATOM_REFERENCE_HARTREE[e][energy] * EV_PER_HARTREE for e in ("H", "C", "N", "O", "F")]
        assert ours == pytest.approx(atomrefs[pyg_target], rel=1e-7)  # PyG used an older eV/Ha
    # gdb_1 (methane): U0 = -40.47893 Ha; MoleculeNet's u0_atom = -395.9995946 kcal/mol
    u0_atom = atomization_energies_kcal(["C", "H", "H", "H", "H"], (-40.47893, 0.0, 0.0, 0.0))[0]
    assert u0_atom == pytest.approx((-40.47893 + 37.846772 + 4 * 0.500273) * 627.509)
    assert u0_atom == pytest.approx(-395.9995946, abs=1e-5)
