"""Reading the IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed), with validation.

IDX layout (big-endian): 2 zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions
d, then d uint32 sizes, then the data. Images: d = 3, [N, rows, cols]; labels: d = 1, [N].
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np

from apt.data_dir import CorruptDataError, DataMissingError

_UNSIGNED_BYTE = 0x08


def read_idx(path: str | Path) -> np.ndarray:
    """The uint8 array stored in an IDX file (``.gz`` is decompressed). Shape as in the header.

    Raises DataMissingError if the file is absent, CorruptDataError on a bad header or a size mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise DataMissingError(f"IDX file not found: {path}")
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise CorruptDataError(f"{path}: not an IDX file (the first two bytes must be zero)")
    if raw[2] != _UNSIGNED_BYTE:
        raise CorruptDataError(f"{path}: IDX element type 0x{raw[2]:02x}, expected 0x08 (unsigned byte)")
    n_dims = raw[3]
    header_bytes = 4 + 4 * n_dims
    if n_dims == 0 or len(raw) < header_bytes:
        raise CorruptDataError(f"{path}: truncated IDX header ({n_dims} dimensions, {len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    expected = int(np.prod(shape))
    if len(raw) - header_bytes != expected:
        raise CorruptDataError(
            f"{path}: header says shape {shape} ({expected} bytes of data), file holds {len(raw) - header_bytes}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(shape)


@lru_cache(maxsize=8)
def read_idx_images_labels(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images [N, 28, 28] uint8, labels [N] uint8 in 0..9) of one IDX image/label file pair, cached.

    Checks the pair: images 3-D, labels 1-D, the same N, labels in 0..9.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise CorruptDataError(f"{images_path}: expected images [N, rows, cols], got shape {images.shape}")
    if labels.ndim != 1:
        raise CorruptDataError(f"{labels_path}: expected labels [N], got shape {labels.shape}")
    if len(images) != len(labels):
        raise CorruptDataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise CorruptDataError(f"{labels_path}: label {labels.max()} outside 0..9")
    return images, labels
