"""CelebA: 40 binary face attributes, the lineage protocol (BENCHMARKS.md §1, FAMO/FairGrad code).

Data (``<APT_DATA_DIR>/celeba/``): the official ``list_attr_celeba.txt`` (line 1: image count, line 2:
the 40 attribute names, then ``<name>.jpg`` and 40 values in {−1, 1}, mapped to {0, 1}) and
``list_eval_partition.txt`` (``<name>.jpg`` and 0 = train, 1 = val, 2 = test); both ship with CRLF line
endings. Images: ``img_align_celeba/<name>.jpg`` (178×218 aligned crops), loaded as RGB, resized to
64×64 with bilinear PIL resampling and scaled to [0, 1] — what torchvision's
``Compose([Resize((64, 64)), ToTensor()])`` does to a PIL image; no augmentation.

Model: the lineage's 9-layer CNN (7 conv3×3 64→128→128→256→256→512→512, each with BatchNorm and
ReLU, max-pool after conv 1, 3 and 5, global average pool, 2 × [Linear(512, 512) no bias, BN, ReLU])
and 40 heads Linear(512, 1) + sigmoid. Loss per attribute: binary cross-entropy on the probability.
Metric per attribute: F1 at threshold 0.5 on the test split; the reported epoch is the one with the
best mean validation F1 (``best_val_mean``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import Dataset

from apt.benchmarks.base import Benchmark, MetricAccumulator, MTLModel, Protocol, Splits
from apt.data_dir import CorruptDataError
from apt.data_dir import DataMissingError, require_files

ATTRIBUTE_NAMES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby",
    "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male",
    "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
    "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair",
    "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip
N_ATTRIBUTES = len(ATTRIBUTE_NAMES)
IMAGE_SIZE = (64, 64)
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
ATTRIBUTES_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_FOLDER = "img_align_celeba"
F1_THRESHOLD = 0.5

# Single-task test F1 posted by the FAMO author (github.com/Cranial-XIX/FAMO/issues/2), in attribute order.
CELEBA_STL_F1: tuple[float, ...] = (
    0.6736886, 0.68121034, 0.81524944, 0.5760289, 0.7205613, 0.8555076, 0.38203922, 0.58225113, 0.787647,
    0.8321292, 0.5029583, 0.68694085, 0.6781237, 0.5240381, 0.5161666, 0.95694304, 0.6968786, 0.67976356,
    0.8808315, 0.8582131, 0.97034, 0.93267566, 0.5057539, 0.40307626, 0.9703734, 0.48644206, 0.60786104,
    0.5261031, 0.56907415, 0.59815097, 0.6858371, 0.924108, 0.5424991, 0.7406311, 0.71019936, 0.87365365,
    0.9305602, 0.33704284, 0.7647628, 0.91907,
)  # fmt: skip

_ANNOTATIONS_HOW_TO_GET = (
    "Get the official CelebA annotation files (Anno/list_attr_celeba.txt, Eval/list_eval_partition.txt) "
    "from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html and put both in this folder."
)
_IMAGES_HOW_TO_GET = (
    "Download the official CelebA 'Align&Cropped Images' archive img_align_celeba.zip (1.4 GB, 202,599 JPEGs "
    "000001.jpg … 202599.jpg, 178×218) from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive "
    "or Baidu links, folder Img/) and unzip it so that {folder}/000001.jpg exists."
)


@dataclass(frozen=True)
class CelebAAnnotations:
    """The parsed official annotations: image_names [N], attributes [N, 40] uint8 in {0, 1}, partition [N]."""

    image_names: tuple[str, ...]
    attributes: np.ndarray
    partition: np.ndarray

    def split_indices(self, split: str) -> np.ndarray:
        """Row indices of one official split (``train`` / ``val`` / ``test``), ascending."""
        if split not in SPLIT_CODES:
            raise ValueError(f"unknown CelebA split {split!r}; splits: {', '.join(SPLIT_CODES)}")
        return np.flatnonzero(self.partition == SPLIT_CODES[split])


def _read_table(path: Path, n_columns: int, skip_rows: int) -> pd.DataFrame:
    """Whitespace-separated table: column 0 = image name (str), the others small ints."""
    dtypes: dict[int, Any] = {0: str, **{column: np.int8 for column in range(1, n_columns)}}
    try:
        table = pd.read_csv(path, sep=r"\s+", skiprows=skip_rows, header=None, dtype=dtypes, engine="c")
    except (ValueError, pd.errors.ParserError) as error:
        raise CorruptDataError(f"{path}: expected {n_columns} columns (a name, then integers): {error}") from error
    if table.shape[1] != n_columns:
        raise CorruptDataError(f"{path}: expected {n_columns} whitespace-separated columns, found {table.shape[1]}")
    return table


def read_annotations(folder: Path) -> CelebAAnnotations:
    """Parse and cross-check ``list_attr_celeba.txt`` and ``list_eval_partition.txt`` in ``folder``.

    Checks: the header count equals the number of rows, the 40 names equal ``ATTRIBUTE_NAMES``, every
    value is −1 or 1, both files list the same images in the same order, partitions are 0, 1 or 2.
    Cached by the files' resolved paths, sizes and modification times (symlinked copies parse once).
    """
    attributes_path, partition_path = require_files(
        folder, [ATTRIBUTES_FILE, PARTITION_FILE], what="CelebA annotations", how_to_get=_ANNOTATIONS_HOW_TO_GET
    )
    identity = tuple(
        (str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns) for path in (attributes_path, partition_path)
    )
    return _parse_annotations(attributes_path, partition_path, identity)


@lru_cache(maxsize=2)
def _parse_annotations(attributes_path: Path, partition_path: Path, identity: tuple[Any, ...]) -> CelebAAnnotations:
    with attributes_path.open(encoding="ascii", newline=None) as stream:
        declared = stream.readline().strip()
        header = tuple(stream.readline().split())
    if not declared.isdigit():
        raise CorruptDataError(f"{attributes_path}: line 1 must be the image count, got {declared!r}")
    if header != ATTRIBUTE_NAMES:
        raise CorruptDataError(f"{attributes_path}: line 2 must list the 40 CelebA attributes, got {header}")
    table = _read_table(attributes_path, 1 + N_ATTRIBUTES, skip_rows=2)
    if len(table) != int(declared):
        raise CorruptDataError(f"{attributes_path}: header declares {declared} images, found {len(table)} rows")
    raw = table.iloc[:, 1:].to_numpy()
    invalid = (raw != 1) & (raw != -1)
    if invalid.any():
        row, column = np.argwhere(invalid)[0]
        raise CorruptDataError(
            f"{attributes_path}: value {raw[row, column]} for {ATTRIBUTE_NAMES[column]} of {table.iat[row, 0]}; "
            "expected -1 or 1"
        )
    partition_table = _read_table(partition_path, 2, skip_rows=0)
    names = table.iloc[:, 0].to_numpy()
    if len(partition_table) != len(names) or not (partition_table.iloc[:, 0].to_numpy() == names).all():
        raise CorruptDataError(f"{partition_path} and {attributes_path} must list the same images in the same order")
    partition = partition_table.iloc[:, 1].to_numpy()
    if not np.isin(partition, [0, 1, 2]).all():
        raise CorruptDataError(f"{partition_path}: partition values must be 0, 1 or 2")
    return CelebAAnnotations(
        image_names=tuple(names.tolist()),
        attributes=(raw == 1).astype(np.uint8),
        partition=partition.astype(np.int8),
    )


def load_image(path: Path) -> Tensor:
    """x [3, 64, 64] float32 in [0, 1]: RGB, bilinear PIL resize to 64×64, /255 (torchvision Resize+ToTensor)."""
    try:
        with Image.open(path) as image:
            resized = image.convert("RGB").resize(IMAGE_SIZE[::-1], Image.Resampling.BILINEAR)
    except FileNotFoundError as error:
        raise DataMissingError(f"CelebA image missing: {path}") from error
    except OSError as error:
        raise CorruptDataError(f"{path}: not a readable image ({error})") from error
    return torch.from_numpy(np.asarray(resized, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)


class CelebADataset(Dataset):
    """(image [3, 64, 64] float, attributes [40] float32 in {0, 1}) of the listed images."""

    def __init__(self, image_folder: Path, image_names: Sequence[str], attributes: np.ndarray) -> None:
        if len(image_names) != len(attributes):
            raise ValueError("one attribute row per image is needed")
        self.image_folder = image_folder
        self.image_names = list(image_names)
        self.attributes = torch.from_numpy(attributes.astype(np.float32))

    def __len__(self) -> int:
        return len(self.image_names)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return load_image(self.image_folder / self.image_names[index]), self.attributes[index]


def _conv_block(index: int, in_channels: int, out_channels: int) -> list[tuple[str, nn.Module]]:
    return [
        (f"conv{index}", nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)),
        (f"bn{index}", nn.BatchNorm2d(out_channels)),
        (f"relu{index}", nn.ReLU()),
    ]


class CelebANet(MTLModel):
    """Lineage CelebA CNN: shared trunk x [B, 3, 64, 64] → z [B, 512]; head k: p_k = σ(w_kᵀ z + b_k) [B, 1].

    Trunk: conv1 3→64, pool; conv2 64→128, conv3 128→128, pool; conv4 128→256, conv5 256→256, pool;
    conv6 256→512, conv7 512→512; global average pool; fc1, fc2 512→512 (no bias) each with BN1d, ReLU.
    (ReLUs are not in-place, unlike the reference code; the outputs are identical.)
    """

    def __init__(self, n_tasks: int = N_ATTRIBUTES) -> None:
        super().__init__()
        layers: list[tuple[str, nn.Module]] = [*_conv_block(1, 3, 64), ("pool1", nn.MaxPool2d(2))]
        layers += [*_conv_block(2, 64, 128), *_conv_block(3, 128, 128), ("pool2", nn.MaxPool2d(2))]
        layers += [*_conv_block(4, 128, 256), *_conv_block(5, 256, 256), ("pool3", nn.MaxPool2d(2))]
        layers += [*_conv_block(6, 256, 512), *_conv_block(7, 512, 512)]
        layers += [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]
        for index in (1, 2):
            layers += [
                (f"fc{index}", nn.Linear(512, 512, bias=False)),
                (f"bn_fc{index}", nn.BatchNorm1d(512)),
                (f"relu_fc{index}", nn.ReLU()),
            ]
        self.shared = nn.Sequential(OrderedDict(layers))
        self.heads = nn.ModuleList([nn.Sequential(nn.Linear(512, 1), nn.Sigmoid()) for _ in range(n_tasks)])

    def muon_excluded_names(self) -> set[str]:
        """Heads (base rule) and the first convolution, which sees raw pixels."""
        return super().muon_excluded_names() | {"shared.conv1.weight"}


def f1_scores(true_positives: Tensor, false_positives: Tensor, false_negatives: Tensor) -> Tensor:
    """F1 = 2 TP / (2 TP + FP + FN) per attribute; 0 where 2 TP + FP + FN = 0.

    The degenerate case (no positive label and no positive prediction) gets 0, as in the lineage code,
    whose precision/recall with a 1e-8 guard also return 0 there; elsewhere the two agree to ~1e-8.
    """
    denominator = 2 * true_positives + false_positives + false_negatives
    return torch.where(denominator > 0, 2 * true_positives / denominator.clamp_min(1), torch.zeros_like(denominator))


class F1Accumulator(MetricAccumulator):
    """Per-attribute TP/FP/FN counts of predictions p > 0.5, summed over batches; ``compute`` gives F1."""

    def __init__(self, metric_names: Sequence[str]) -> None:
        self.metric_names = tuple(metric_names)
        n = len(self.metric_names)
        self.true_positives = torch.zeros(n, dtype=torch.float64)
        self.false_positives = torch.zeros(n, dtype=torch.float64)
        self.false_negatives = torch.zeros(n, dtype=torch.float64)
        self.count = 0

    def update(self, outputs: Sequence[Tensor], targets: Tensor) -> None:
        """outputs: K probabilities [B, 1]; targets [B, K] in {0, 1}."""
        if len(outputs) != len(self.metric_names) or targets.shape[1:] != (len(self.metric_names),):
            raise ValueError(
                f"expected {len(self.metric_names)} outputs and targets [B, {len(self.metric_names)}], "
                f"got {len(outputs)} outputs and targets {tuple(targets.shape)}"
            )
        predicted = (torch.cat([o.detach().reshape(-1, 1) for o in outputs], dim=1) > F1_THRESHOLD).double().cpu()
        labels = targets.detach().double().cpu()
        self.true_positives += (predicted * labels).sum(0)
        self.false_positives += (predicted * (1 - labels)).sum(0)
        self.false_negatives += ((1 - predicted) * labels).sum(0)
        self.count += len(labels)

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("no batch was added to the F1 accumulator")
        scores = f1_scores(self.true_positives, self.false_positives, self.false_negatives)
        return {name: float(score) for name, score in zip(self.metric_names, scores, strict=True)}


class CelebABenchmark(Benchmark):
    """CelebA, 40 attributes, lineage protocol: Adam 3e-4, 15 epochs, batch 256, best mean val F1."""

    name = "celeba"
    task_names: ClassVar[tuple[str, ...]] = ATTRIBUTE_NAMES
    metric_names: ClassVar[tuple[str, ...]] = tuple(f"f1_{attribute}" for attribute in ATTRIBUTE_NAMES)
    metric_higher_better: ClassVar[tuple[bool, ...]] = (True,) * N_ATTRIBUTES
    metric_task: ClassVar[tuple[int, ...]] = tuple(range(N_ATTRIBUTES))
    published_stl: ClassVar[tuple[float, ...]] = CELEBA_STL_F1
    protocol: ClassVar[Protocol] = Protocol(
        epochs=15, batch_size=256, lr=3e-4, selection="best_val_mean", selection_k=1, seeds=(0, 1, 2)
    )
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {},
        "cpu": {"epochs": 3, "batch_size": 64, "n_train": 2048, "n_val": 512, "n_test": 1024},
        "smoke": {"epochs": 1, "batch_size": 8, "n_train": 16, "n_val": 8, "n_test": 8},
    }
    profile_notes: ClassVar[dict[str, str]] = {
        "full": "Lineage protocol: official 162,770/19,867/19,962 split, 15 epochs, batch 256, Adam 3e-4 (GPU).",
        "cpu": "Seeded subsets 2,048/512/1,024, 3 epochs, batch 64: the 9-layer CNN costs ~4 GFLOP per "
        "image for forward+backward, so this is ~10 minutes per LS run on 2 cores; only where the "
        "CelebA images exist (they are not on the book's build machine).",
        "smoke": "16/8/8 images, 1 epoch, batch 8: exercises the image pipeline and model in seconds.",
    }

    @property
    def folder(self) -> Path:
        return self.data_dir / "celeba"

    @property
    def image_folder(self) -> Path:
        return self.folder / IMAGE_FOLDER

    def annotations(self) -> CelebAAnnotations:
        return read_annotations(self.folder)

    def subset_indices(self, protocol: Protocol, seed: int) -> dict[str, np.ndarray]:
        """Row indices per split: all rows of the official split, or a seeded subset of n_* rows (sorted)."""
        annotations = self.annotations()
        requested = {"train": protocol.n_train, "val": protocol.n_val, "test": protocol.n_test}
        chosen = {}
        for split, n in requested.items():
            rows = annotations.split_indices(split)
            if n is not None and n < len(rows):
                stream = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, SPLIT_CODES[split]])))
                rows = np.sort(stream.permutation(rows)[:n])
            chosen[split] = rows
        return chosen

    def splits(self, protocol: Protocol, seed: int) -> Splits:
        """Official train/val/test (or seeded subsets); fails early, naming the folder, if images are absent."""
        annotations = self.annotations()
        chosen = self.subset_indices(protocol, seed)
        if not self.image_folder.is_dir():
            raise DataMissingError(
                f"CelebA images: folder {self.image_folder} does not exist.\n"
                + _IMAGES_HOW_TO_GET.format(folder=self.image_folder)
            )
        datasets = {}
        for split, rows in chosen.items():
            names = [annotations.image_names[i] for i in rows]
            require_files(
                self.image_folder,
                names,
                what=f"CelebA images of the {split} split",
                how_to_get=_IMAGES_HOW_TO_GET.format(folder=self.image_folder),
            )
            datasets[split] = CelebADataset(self.image_folder, names, annotations.attributes[rows])
        return Splits(train=datasets["train"], val=datasets["val"], test=datasets["test"])

    def build_model(self) -> CelebANet:
        return CelebANet(self.n_tasks)

    def inputs_targets(self, batch: Any, device: torch.device | str) -> tuple[Tensor, Tensor]:
        """(x [B, 3, 64, 64], y [B, 40] float in {0, 1}) on ``device``."""
        images, attributes = batch
        return images.to(device), attributes.to(device)

    def losses(self, outputs: Sequence[Tensor], targets: Tensor) -> Tensor:
        """ℓ_k = mean_i BCE(p_k[i], y[i, k]) = −mean_i [y log p + (1−y) log(1−p)] (log clamped ≥ −100): [40]."""
        if len(outputs) != self.n_tasks or targets.shape[1:] != (self.n_tasks,):
            raise ValueError(
                f"expected {self.n_tasks} outputs and targets [B, {self.n_tasks}], "
                f"got {len(outputs)} outputs and targets {tuple(targets.shape)}"
            )
        probabilities = torch.cat([o.reshape(-1, 1) for o in outputs], dim=1)
        return F.binary_cross_entropy(probabilities, targets, reduction="none").mean(0)

    def metric_accumulator(self) -> F1Accumulator:
        return F1Accumulator(self.metric_names)
