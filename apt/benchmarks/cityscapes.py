"""Cityscapes: 7-class segmentation and (inverse) depth with MTAN (BENCHMARKS.md §1, §3).

2,975 training / 500 test (the official val) images of 128×256 from the MTAN pre-processed archive, labels
``label_7``; everything else is shared with NYUv2 in :mod:`apt.benchmarks.scene`.
"""

from __future__ import annotations

from apt.benchmarks.scene import SceneBenchmark, SceneLayout, scene_protocol

CITYSCAPES_LAYOUT = SceneLayout(
    folder="cityscapes",
    label_folder="label_7",
    n_classes=7,
    with_normals=False,
    download_hint=(
        "Get the MTAN pre-processed Cityscapes, 128×256 version (2,975 train / 500 val .npy samples with "
        "image/, label_7/, depth/), from the link in the MTAN README (https://github.com/lorenmt/mtan; Dropbox "
        "https://www.dropbox.com/sh/gaw6vh6qusoyms6/AADwWi0Tp3E3M4B2xzeGlsEna?dl=0) and unzip it so that "
        "<APT_DATA_DIR>/cityscapes/train/image/0.npy exists."
    ),
)


class CityscapesBenchmark(SceneBenchmark):
    """Cityscapes with the lineage protocol: Adam 1e-4, 200 epochs, batch 8, StepLR(100, 0.5), mean of the
    test metrics of the last 10 epochs; Δm against the lineage's STL BASE."""

    name = "cityscapes"
    layout = CITYSCAPES_LAYOUT
    task_names = ("segmentation", "depth")
    metric_names = ("miou", "pix_acc", "abs_err", "rel_err")
    metric_higher_better = (True, True, False, False)
    metric_task = (0, 0, 1, 1)
    protocol = scene_protocol(batch_size=8)
    profiles = {
        "full": {},
        "cpu": {"n_train": 32, "n_test": 16, "epochs": 2, "selection_k": 1},
        "smoke": {"n_train": 8, "n_test": 8, "epochs": 1, "batch_size": 4, "selection_k": 1},
    }
    profile_notes = {
        "full": "The published protocol: 2,975 / 500 images, 200 epochs, batch 8 (GPU; hours per run).",
        "cpu": (
            "32 / 16 images (seeded subsets), 2 epochs, last epoch reported. MTAN (41.2 M parameters) at "
            "128×256 measured ~10 s per training image-step on 2 shared cores, so this is ~12 minutes and "
            "checks the pipeline on real data; it is not a result."
        ),
        "smoke": "8 / 8 images, 1 epoch, batch 4: exercises every code path in seconds.",
    }
    published_stl = (0.7401, 0.9316, 0.0125, 27.77)
