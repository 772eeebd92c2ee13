"""NYUv2: 13-class segmentation, depth and surface normals with MTAN (BENCHMARKS.md §1, §3).

795 training / 654 test images of 288×384 from the MTAN pre-processed archive; everything else is shared
with Cityscapes in :mod:`apt.benchmarks.scene` (model, data layout, augmentation, losses, metrics, and the
documented choice of which MTAN parameters are shared).
"""

from __future__ import annotations

from apt.benchmarks.scene import SceneBenchmark, SceneLayout, scene_protocol

NYUV2_LAYOUT = SceneLayout(
    folder="nyuv2",
    label_folder="label",
    n_classes=13,
    with_normals=True,
    download_hint=(
        "Get the MTAN pre-processed NYUv2 (nyuv2.zip, 795 train / 654 val .npy samples of 288×384) from the "
        "link in the MTAN README (https://github.com/lorenmt/mtan; Dropbox "
        "https://www.dropbox.com/sh/86nssgwm6hm3vkb/AACrnUQ4GxpdrBbLjb6n-mWNa?dl=0) and unzip it so that "
        "<APT_DATA_DIR>/nyuv2/train/image/0.npy exists."
    ),
)


class NYUv2Benchmark(SceneBenchmark):
    """NYUv2 with the lineage protocol: Adam 1e-4, 200 epochs, batch 2, StepLR(100, 0.5), mean of the test
    metrics of the last 10 epochs; Δm against the STL BASE the lineage took from CAGrad."""

    name = "nyuv2"
    layout = NYUV2_LAYOUT
    task_names = ("segmentation", "depth", "normal")
    metric_names = (
        "miou", "pix_acc", "abs_err", "rel_err",
        "angle_mean", "angle_median", "within_11.25", "within_22.5", "within_30",
    )  # fmt: skip
    metric_higher_better = (True, True, False, False, False, False, True, True, True)
    metric_task = (0, 0, 1, 1, 2, 2, 2, 2, 2)
    protocol = scene_protocol(batch_size=2)
    profiles = {
        "full": {},
        "cpu": {"n_train": 16, "n_test": 8, "epochs": 2, "selection_k": 1},
        "smoke": {"n_train": 4, "n_test": 2, "epochs": 1, "selection_k": 1},
    }
    profile_notes = {
        "full": "The published protocol: 795 / 654 images, 200 epochs, batch 2 (GPU; about a day per run).",
        "cpu": (
            "16 / 8 images (seeded subsets), 2 epochs, last epoch reported. MTAN (44.2 M parameters) at "
            "288×384 measured ~40 s per training image-step on 2 shared cores (convolutions dominate), so "
            "this is ~25 minutes and checks the pipeline on real data; it is not a result."
        ),
        "smoke": "4 / 2 images, 1 epoch: exercises every code path in seconds.",
    }
    published_stl = (0.3830, 0.6376, 0.6754, 0.2780, 25.01, 19.21, 0.3014, 0.5720, 0.6915)
