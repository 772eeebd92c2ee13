"""Build QM9's raw folder (the layout ``torch_geometric.datasets.QM9`` processes) offline, from PyPI data.

``torch_geometric.datasets.QM9`` reads three files from ``<root>/raw``:
  gdb9.sdf             one MDL mol block per GDB-9 index 1…133,885 (coordinates + bonds);
  gdb9.sdf.csv         one row per index: mol_id, A, B, C, mu, alpha, homo, lumo, gap, r2, zpve, u0, u298,
                       h298, g298, cv, u0_atom, u298_atom, h298_atom, g298_atom (Hartree / kcal/mol, as
                       MoleculeNet ships it); PyG matches rows to mol blocks by position;
  uncharacterized.txt  the 3,054 indices PyG skips (9 header lines, one index per line, a closing rule).

The PyPI package ``qm9pack==1.0.3`` (MIT) holds the QM9 authors' release of the 130,831 characterized
molecules as CSV: SMILES, B3LYP coordinates (Å) and all properties. This module turns it into those files:
  * mol block: atoms and coordinates from ``XYZ_Ang`` (4 decimals in the mol block); connectivity from the
    geometry (RDKit ``DetermineConnectivity``), bond orders from the GDB-17 SMILES
    (``AssignBondOrdersFromTemplate``), Kekulé form without aromatic flags;
  * csv: the properties as they are, plus the atomization energies
        X_atom = (X − Σ_atoms X_ref(atom)) · 627.509 kcal/mol per Hartree,   X ∈ {U0, U, H, G},
    with the QM9 atom reference energies ``ATOM_REFERENCE_HARTREE`` (Ramakrishnan et al. 2014, atomref table);
  * an index missing from qm9pack (uncharacterized) becomes an empty mol block, a NaN row, and an entry of
    uncharacterized.txt, so positions stay aligned and PyG skips it.
Bonds are therefore not the original OEChem perception; targets, atoms and coordinates are the authors'.
The shared raw folder of this project was built the same way (data/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from apt.data_dir import DataMissingError

N_GDB9_RECORDS = 133_885
HARTREE_TO_KCAL_PER_MOL = 627.509
RAW_FILE_NAMES: tuple[str, str, str] = ("gdb9.sdf", "gdb9.sdf.csv", "uncharacterized.txt")
QM9PACK_PARTS: tuple[str, ...] = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")

# Atom reference energies (Hartree) for U0, U(298.15 K), H(298.15 K), G(298.15 K): QM9 atomref table.
ATOM_REFERENCE_HARTREE: dict[str, tuple[float, float, float, float]] = {
    "H": (-0.500273, -0.498857, -0.497912, -0.510927),
    "C": (-37.846772, -37.845355, -37.844411, -37.861317),
    "N": (-54.583861, -54.582445, -54.581501, -54.598897),
    "O": (-75.064579, -75.063162, -75.062219, -75.079532),
    "F": (-99.718730, -99.717314, -99.716370, -99.733544),
}

CSV_COLUMNS: tuple[str, ...] = (
    "mol_id", "A", "B", "C", "mu", "alpha", "homo", "lumo", "gap", "r2", "zpve",
    "u0", "u298", "h298", "g298", "cv", "u0_atom", "u298_atom", "h298_atom", "g298_atom",
)  # fmt: skip
# qm9pack column for each csv column from A to cv (same units: GHz, D, bohr³, Hartree, bohr², cal/mol K).
_QM9PACK_PROPERTY_COLUMNS: tuple[str, ...] = (
    "RotA_GHz", "RotB_GHz", "RotC_GHz", "Dipole_debye", "Polarizability_bohr3", "HOMO_au", "LUMO_au",
    "HOMO_LUMO_gap_au", "R2_bohr2", "ZPVE_au", "InternalEnergy_0K_au", "InternalEnergy_298K_au",
    "Enthalphy_298K_au", "GibbsFreeEnergy_298K_au", "Heatcapacity_Cv_cal_mol_K",
)  # fmt: skip
_ENERGY_COLUMNS: tuple[str, ...] = (
    "InternalEnergy_0K_au", "InternalEnergy_298K_au", "Enthalphy_298K_au", "GibbsFreeEnergy_298K_au",
)  # fmt: skip

# Exactly 9 header lines: PyG parses ``text.split("\n")[9:-2]`` (entries end before a closing rule).
_UNCHARACTERIZED_HEADER: tuple[str, ...] = (
    "",
    "List of the GDB-9 indices without a characterized molecule in the qm9pack release, written by",
    "apt.benchmarks.qm9_raw. torch_geometric's QM9 skips these indices; the original figshare file",
    "(https://ndownloader.figshare.com/files/3195404) lists the same indices with their GDB-17 SMILES,",
    "the SMILES of the B3LYP and Corina geometries and the Coulomb-matrix distance D_IJ.",
    "",
    "=" * 80,
    "#   Index",
    "=" * 80,
)

# qm9pack writes numbers Mathematica-style ("0.", "1."), which JSON rejects.
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

QM9PACK_HOW_TO_GET = "Install it with `pip install qm9pack==1.0.3` (MIT licence, ~104 MB wheel)."


def qm9pack_data_folder() -> Path:
    """The ``data/`` folder of the installed qm9pack distribution.

    Located without importing qm9pack (its ``__init__`` needs ``pkg_resources``, absent from modern setuptools).
    Raises DataMissingError if the package or one of its CSV parts is missing.
    """
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise DataMissingError(f"QM9 fallback source: the Python package 'qm9pack' is not installed. {QM9PACK_HOW_TO_GET}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    missing = [folder / name for name in QM9PACK_PARTS if not (folder / name).is_file()]
    if missing:
        raise DataMissingError(
            f"qm9pack is installed but incomplete: missing {', '.join(map(str, missing))}. {QM9PACK_HOW_TO_GET}"
        )
    return folder


def read_qm9pack(max_index: int | None = None) -> pd.DataFrame:
    """qm9pack's molecules with GDB-9 index ≤ ``max_index`` (all if None), indexed and sorted by that index.

    Columns used: SMILES, Elements, XYZ_Ang and the properties of ``_QM9PACK_PROPERTY_COLUMNS``.
    """
    folder = qm9pack_data_folder()
    columns = ["Index", "SMILES", "Elements", "XYZ_Ang", *_QM9PACK_PROPERTY_COLUMNS]
    frames = []
    for name in QM9PACK_PARTS:
        frame = pd.read_csv(folder / name, usecols=columns)
        if max_index is not None:
            frame = frame[frame["Index"] <= max_index]
        frames.append(frame)
        if max_index is not None and len(frame) and frame["Index"].max() >= max_index:
            break
    table = pd.concat(frames, ignore_index=True).set_index("Index").sort_index()
    if not table.index.is_unique:
        raise DataMissingError(f"qm9pack data in {folder} has duplicated GDB-9 indices; the package is corrupt")
    return table


def atomization_energies_kcal(elements: list[str], energies_hartree: tuple[float, ...]) -> list[float]:
    """[U0_atom, U_atom, H_atom, G_atom] in kcal/mol: (X − Σ_atoms X_ref) · 627.509 for the 4 energies X."""
    unknown = sorted(set(elements) - set(ATOM_REFERENCE_HARTREE))
    if unknown:
        raise ValueError(f"elements {unknown} have no QM9 atom reference energy (known: H, C, N, O, F)")
    return [
        (energy - sum(ATOM_REFERENCE_HARTREE[e][k] for e in elements)) * HARTREE_TO_KCAL_PER_MOL
        for k, energy in enumerate(energies_hartree)
    ]


def molblock(index: int, smiles: str, elements: list[str], coordinates: list[list[float]]) -> str:
    """The mol block of one molecule (name ``gdb_<index>``): XYZ geometry with SMILES bonds, Kekulé form.

    First route: connectivity from the geometry, bond orders from the SMILES template. Strained cages
    (e.g. index 647, C1C2OC1C=C2) get a spurious geometric bond there; the second route then takes the
    SMILES skeleton with heavy atoms in XYZ order (QM9 lists them in SMILES order) and binds each H to its
    nearest heavy atom. Where neither fits (a handful of zwitterions whose SMILES order differs from the
    XYZ order, e.g. index 17809), the geometric connectivity is kept with single bonds only.
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem, rdDetermineBonds

    lines = (f"{e} {x:.10f} {y:.10f} {z:.10f}" for e, (x, y, z) in zip(elements, coordinates, strict=True))
    geometry = Chem.MolFromXYZBlock(f"{len(elements)}\n\n" + "\n".join(lines))
    if geometry is None:
        raise ValueError(f"qm9pack molecule {index}: RDKit cannot read its XYZ coordinates")
    try:
        connected = Chem.Mol(geometry)
        rdDetermineBonds.DetermineConnectivity(connected)
        mol = AllChem.AssignBondOrdersFromTemplate(Chem.AddHs(Chem.MolFromSmiles(smiles)), connected)
    except (ValueError, Chem.AtomValenceException):
        try:
            mol = _skeleton_with_nearest_hydrogens(index, smiles, geometry, coordinates)
        except ValueError:
            mol = connected
    Chem.Kekulize(mol, clearAromaticFlags=True)
    mol.SetProp("_Name", f"gdb_{index}")
    return Chem.MolToMolBlock(mol)


def _skeleton_with_nearest_hydrogens(index: int, smiles: str, geometry, coordinates: list[list[float]]):
    """SMILES heavy-atom bonds on the XYZ heavy atoms (same order), each H bound to its nearest heavy atom."""
    from rdkit import Chem

    skeleton = Chem.MolFromSmiles(smiles)
    Chem.Kekulize(skeleton, clearAromaticFlags=True)
    symbols = [a.GetSymbol() for a in geometry.GetAtoms()]
    heavy = [i for i, s in enumerate(symbols) if s != "H"]
    if [a.GetSymbol() for a in skeleton.GetAtoms()] != [symbols[i] for i in heavy] or heavy != list(range(len(heavy))):
        raise ValueError(f"qm9pack molecule {index}: SMILES {smiles} does not list the XYZ heavy atoms in order")
    mol = Chem.RWMol(geometry)
    for atom in skeleton.GetAtoms():  # zwitterions: keep the SMILES formal charges
        mol.GetAtomWithIdx(atom.GetIdx()).SetFormalCharge(atom.GetFormalCharge())
    for bond in skeleton.GetBonds():
        mol.AddBond(bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), bond.GetBondType())
    hydrogen_count = [0] * len(heavy)
    for h in range(len(heavy), len(symbols)):
        distances = [sum((coordinates[h][d] - coordinates[a][d]) ** 2 for d in range(3)) for a in heavy]
        nearest = min(range(len(heavy)), key=distances.__getitem__)
        mol.AddBond(nearest, h, Chem.BondType.SINGLE)
        hydrogen_count[nearest] += 1
    if hydrogen_count != [a.GetTotalNumHs() for a in skeleton.GetAtoms()]:
        raise ValueError(f"qm9pack molecule {index}: nearest-atom hydrogens do not match the SMILES {smiles}")
    return mol.GetMol()


def _placeholder_molblock(index: int) -> str:
    return f"gdb_{index}\n     uncharacterized placeholder (no data)\n\n  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n"


def _records(table: pd.DataFrame, n_records: int) -> Iterator[tuple[int, str, list[str] | None]]:
    """(index, mol block, csv fields or None if uncharacterized) for GDB-9 indices 1 … n_records."""
    for index in range(1, n_records + 1):
        if index not in table.index:
            yield index, _placeholder_molblock(index), None
            continue
        row = table.loc[index]
        elements = [str(e) for e in json.loads(row["Elements"].replace("'", '"'))]
        numbers = [float(v) for v in _NUMBER.findall(row["XYZ_Ang"])]
        if len(numbers) != 3 * len(elements):
            raise ValueError(f"qm9pack molecule {index}: {len(numbers)} coordinates for {len(elements)} atoms")
        coordinates = [numbers[3 * a : 3 * a + 3] for a in range(len(elements))]
        properties = [float(row[c]) for c in _QM9PACK_PROPERTY_COLUMNS]
        atomization = atomization_energies_kcal(elements, tuple(float(row[c]) for c in _ENERGY_COLUMNS))
        fields = [f"gdb_{index}", *(repr(v) for v in properties + atomization)]
        yield index, molblock(index, str(row["SMILES"]), elements, coordinates), fields


def write_raw_from_qm9pack(raw_dir: str | os.PathLike, n_records: int = N_GDB9_RECORDS) -> Path:
    """Write gdb9.sdf, gdb9.sdf.csv and uncharacterized.txt for GDB-9 indices 1 … ``n_records`` into ``raw_dir``.

    The files appear atomically (written to a temporary folder beside ``raw_dir``, then renamed), so an
    interrupted conversion never leaves a partial raw folder. Returns ``raw_dir``. The full set takes a
    few minutes (RDKit bond assignment ≈ 0.3 ms per molecule plus reading ~230 MB of CSV).
    """
    if not 1 <= n_records <= N_GDB9_RECORDS:
        raise ValueError(f"n_records={n_records}: must be in [1, {N_GDB9_RECORDS}]")
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")  # "more than one matching pattern" for symmetric molecules: harmless
    raw_dir = Path(raw_dir)
    if raw_dir.exists():
        raise FileExistsError(f"{raw_dir} exists already; write_raw_from_qm9pack only creates a new raw folder")
    raw_dir.parent.mkdir(parents=True, exist_ok=True)
    table = read_qm9pack(max_index=n_records)
    tmp_dir = Path(tempfile.mkdtemp(dir=raw_dir.parent, prefix=".raw-"))
    try:
        uncharacterized: list[int] = []
        with open(tmp_dir / "gdb9.sdf", "w") as sdf, open(tmp_dir / "gdb9.sdf.csv", "w") as csv:
            csv.write(",".join(CSV_COLUMNS) + "\n")
            for index, block, fields in _records(table, n_records):
                sdf.write(block + "$$$$\n")
                if fields is None:
                    uncharacterized.append(index)
                    fields = [f"gdb_{index}", *(["nan"] * (len(CSV_COLUMNS) - 1))]
                csv.write(",".join(fields) + "\n")
        lines = [*_UNCHARACTERIZED_HEADER, *(f"{i:>8}" for i in uncharacterized), "=" * 80]
        (tmp_dir / "uncharacterized.txt").write_text("\n".join(lines) + "\n")
        os.replace(tmp_dir, raw_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)  # only left over if the conversion failed
    return raw_dir


def read_uncharacterized_indices(path: str | os.PathLike) -> list[int]:
    """GDB-9 indices listed in an uncharacterized.txt (original figshare layout or ours), in file order."""
    indices = []
    for line in Path(path).read_text().splitlines():
        first = line.split()[0] if line.split() else ""
        if first.isdigit():
            indices.append(int(first))
    return indices

