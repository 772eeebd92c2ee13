"""Shared scene-understanding pieces: losses and metrics against hand-computed values, augmentation, MTAN."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from apt.benchmarks.scene import (
    MTAN,
    SCALES,
    AugmentedLoader,
    ConfusionMatrix,
    SceneMetricAccumulator,
    augment_sample,
    depth_errors,
    depth_loss,
    horizontal_flip,
    normal_angle_errors,
    normal_loss,
    random_scale_crop,
    segmentation_loss,
)

NYU_OUTPUTS = [(13, "log_softmax"), (1, "identity"), (3, "unit_normal")]


# ------------------------------------------------------------------ losses
def test_segmentation_loss_ignores_unlabelled_pixels():
    probabilities = torch.tensor([[0.5, 0.25], [0.5, 0.75]]).reshape(1, 2, 1, 2)  # class prob per pixel
    label = torch.tensor([[[1, -1]]])
    loss = segmentation_loss(probabilities.log(), label)
    assert loss.item() == pytest.approx(-math.log(0.5))


def test_depth_loss_is_masked_l1():
    prediction = torch.tensor([1.0, 2.0, 5.0, 7.0]).reshape(1, 1, 2, 2)
    target = torch.tensor([2.0, 0.0, 4.0, 4.0]).reshape(1, 1, 2, 2)  # one missing pixel
    assert depth_loss(prediction, target).item() == pytest.approx((1 + 1 + 3) / 3)


def test_normal_loss_is_one_minus_masked_mean_cosine():
    up = torch.tensor([0.0, 0.0, 1.0])
    side = torch.tensor([1.0, 0.0, 0.0])
    prediction = torch.stack([up, up, side]).T.reshape(1, 3, 1, 3)
    target = torch.stack([up, side, torch.zeros(3)]).T.reshape(1, 3, 1, 3)  # cos 1, cos 0, missing
    assert normal_loss(prediction, target).item() == pytest.approx(1 - (1 + 0) / 2)


# ------------------------------------------------------------------ metrics
def test_confusion_matrix_miou_and_pixel_accuracy_by_hand():
    matrix = ConfusionMatrix(3)
    label = torch.tensor([0, 0, 1, 1, -1, 2])
    predicted = torch.tensor([0, 1, 1, 1, 2, 0])
    matrix.update(predicted, label)
    # class 0: TP 1, FP 1 (pixel 5), FN 1 → 1/3; class 1: TP 2, FP 1 → 2/3; class 2: TP 0, FN 1 → 0
    miou, pixel_accuracy = matrix.miou_and_pixel_accuracy()
    assert miou == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert pixel_accuracy == pytest.approx(3 / 5)


def test_confusion_matrix_skips_classes_that_never_occur():
    matrix = ConfusionMatrix(4)
    matrix.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert matrix.miou_and_pixel_accuracy() == (1.0, 1.0)


def test_depth_errors_by_hand():
    prediction = torch.tensor([1.0, 3.0, 9.0]).reshape(1, 1, 1, 3)
    target = torch.tensor([2.0, 2.0, 0.0]).reshape(1, 1, 1, 3)
    abs_err, rel_err = depth_errors(prediction, target)
    assert abs_err == pytest.approx(1.0)
    assert rel_err == pytest.approx((0.5 + 0.5) / 2)
    assert depth_errors(prediction, torch.zeros_like(target)) is None


def test_normal_angle_errors_by_hand():
    angles = [0.0, 10.0, 20.0, 40.0]
    target = torch.tensor([[0.0, 0.0, 1.0]] * 4).T.reshape(1, 3, 1, 4)
    prediction = torch.tensor([[math.sin(math.radians(a)), 0.0, math.cos(math.radians(a))] for a in angles])
    prediction = prediction.T.reshape(1, 3, 1, 4)
    mean, median, within_11, within_22, within_30 = normal_angle_errors(prediction, target)
    assert mean == pytest.approx(17.5, abs=1e-3)
    assert median == pytest.approx(15.0, abs=1e-3)
    assert (within_11, within_22, within_30) == (0.5, 0.75, 0.75)


def test_accumulator_averages_depth_per_batch_like_the_lineage():
    accumulator = SceneMetricAccumulator(["miou", "pix_acc", "abs_err", "rel_err"], n_classes=2, with_normals=False)
    log_probabilities = torch.log(torch.tensor([0.9, 0.1]).reshape(1, 2, 1, 1).expand(1, 2, 1, 2))
    # batch 1: one valid pixel, error 1; batch 2: two valid pixels, errors 3 and 3
    accumulator.update(
        [log_probabilities, torch.tensor([[[[2.0, 0.0]]]])],
        [torch.tensor([[[0, 1]]]), torch.tensor([[[[1.0, 0.0]]]])],
    )
    accumulator.update(
        [log_probabilities, torch.tensor([[[[4.0, 5.0]]]])],
        [torch.tensor([[[0, 0]]]), torch.tensor([[[[1.0, 2.0]]]])],
    )
    metrics = accumulator.compute()
    assert metrics["abs_err"] == pytest.approx((1 + 3) / 2)  # pooled over pixels would be 7/3
    assert metrics["rel_err"] == pytest.approx((1.0 + (3 + 1.5) / 2) / 2)
    assert metrics["pix_acc"] == pytest.approx(3 / 4)
    assert metrics["miou"] == pytest.approx((3 / 4 + 0) / 2)


# ------------------------------------------------------------------ augmentation
def _ramp_sample(height: int = 8, width: int = 12):
    columns = torch.arange(width, dtype=torch.float32).expand(height, width)
    image = torch.stack([columns, columns, columns])
    label = (columns % 3).clone()
    depth = (columns + 1)[None].clone()
    normal = torch.tensor([0.6, 0.0, 0.8]).reshape(3, 1, 1).expand(3, height, width).clone()
    return image, label, depth, normal


def test_horizontal_flip_negates_the_x_component_of_normals():
    image, label, depth, normal = _ramp_sample()
    normal[1] = torch.rand(normal.shape[1:])
    flipped = horizontal_flip(image, label, depth, normal)
    assert torch.equal(flipped[0], image.flip(-1)) and torch.equal(flipped[1], label.flip(-1))
    assert torch.equal(flipped[2], depth.flip(-1))
    assert torch.equal(flipped[3][0], -normal[0].flip(-1))
    assert torch.equal(flipped[3][1:], normal[1:].flip(-1))


def test_random_scale_crop_keeps_shape_labels_and_scales_depth():
    image, label, depth, normal = _ramp_sample()
    seen_scales = set()
    for seed in range(30):
        out = random_scale_crop(image, label, depth, normal, torch.Generator().manual_seed(seed))
        assert [t.shape for t in out] == [image.shape, label.shape, depth.shape, normal.shape]
        assert set(out[1].unique().tolist()) <= set(label.unique().tolist())
        scale = next(s for s in SCALES if set((out[2] * s).round(decimals=4).unique().tolist()) <= set(depth.unique().tolist()))
        seen_scales.add(scale)
        assert torch.allclose(out[3], normal)  # a constant normal field stays constant under bilinear resize
    assert seen_scales == set(SCALES)


def test_augmentation_flips_normals_exactly_when_the_image_is_flipped():
    sample = _ramp_sample()
    flips = 0
    for seed in range(40):
        image, _, _, normal = augment_sample(sample, torch.Generator().manual_seed(seed))
        increasing = bool((image[0, 0, 1:] >= image[0, 0, :-1]).all())
        assert bool((normal[0] < 0).all()) == (not increasing)
        flips += not increasing
    assert 8 < flips < 32  # probability ½


def test_augmented_loader_is_determined_by_its_generator():
    dataset = [_ramp_sample() for _ in range(6)]
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, shuffle=True, generator=torch.Generator())

    def run(seed: int):
        loader.generator.manual_seed(seed)
        return [t.clone() for batch in AugmentedLoader(loader, loader.generator) for t in batch]

    first, again, other = run(0), run(0), run(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


# ------------------------------------------------------------------ model
@pytest.fixture(scope="module")
def mtan() -> MTAN:
    torch.manual_seed(0)
    return MTAN(NYU_OUTPUTS).eval()


def test_mtan_output_shapes_and_activations(mtan):
    x = torch.randn(2, 3, 32, 64)
    with torch.no_grad():
        segmentation, depth, normal = mtan(x)
        features = mtan.shared_forward(x)
        assert all(torch.equal(a, b) for a, b in zip(mtan.heads_forward(features), (segmentation, depth, normal)))
    assert segmentation.shape == (2, 13, 32, 64) and depth.shape == (2, 1, 32, 64) and normal.shape == (2, 3, 32, 64)
    assert torch.allclose(segmentation.exp().sum(1), torch.ones(2, 32, 64), atol=1e-5)
    assert torch.allclose(normal.norm(dim=1), torch.ones(2, 32, 64), atol=1e-5)
    assert len(features) == 20
    with pytest.raises(ValueError, match="divisible by 32"):
        mtan(torch.randn(1, 3, 30, 64))


def test_mtan_attention_masks_are_task_parameters_not_shared(mtan):
    names = {id(p): n for n, p in mtan.named_parameters()}
    shared = {names[id(p)] for p in mtan.shared_parameters()}
    tasks = [{names[id(p)] for p in ps} for ps in mtan.task_parameters()]
    assert all(n.startswith("shared.") for n in shared)
    assert any("encoder_block_att" in n for n in shared) and any("decoder_block_att" in n for n in shared)
    assert not any("encoder_att" in n or "decoder_att" in n for n in shared)
    for k, params in enumerate(tasks):
        assert any(n.startswith(f"heads.{k}.encoder_att") for n in params)
        assert any(n.startswith(f"heads.{k}.pred") for n in params)
    assert len(shared) + sum(map(len, tasks)) == len(names)
    # The lineage's rule ("pred" not in name) would also count the 3 tasks' attention masks as shared.
    lineage_shared = [n for n in names.values() if "pred" not in n]
    assert len(lineage_shared) - len(shared) == sum(sum(1 for n in t if "_att" in n) for t in tasks)


def test_mtan_parameter_count_matches_the_lineage():
    torch.manual_seed(0)
    assert sum(p.numel() for p in MTAN(NYU_OUTPUTS).parameters()) == 44_229_073
    assert sum(p.numel() for p in MTAN([(7, "log_softmax"), (1, "identity")]).parameters()) == 41_206_984


def test_mtan_muon_exclusions(mtan):
    excluded = mtan.muon_excluded_names()
    names = dict(mtan.named_parameters())
    assert excluded <= set(names)
    assert "shared.trunk.encoder_block.0.0.weight" in excluded
    assert names["shared.trunk.encoder_block.0.0.weight"].shape[1] == 3
    assert not any(n.startswith("shared.") and n != "shared.trunk.encoder_block.0.0.weight" for n in excluded)


def test_mtan_rejects_unknown_output():
    with pytest.raises(ValueError, match="output='softmax'"):
        MTAN([(3, "softmax")])


def test_metric_values_are_numpy_free_floats():
    accumulator = SceneMetricAccumulator(["miou", "pix_acc", "abs_err", "rel_err"], n_classes=2, with_normals=False)
    accumulator.update(
        [torch.zeros(1, 2, 1, 1), torch.ones(1, 1, 1, 1)], [torch.zeros(1, 1, 1, dtype=torch.long), torch.ones(1, 1, 1, 1)]
    )
    assert all(type(v) is float and not np.isnan(v) for v in accumulator.compute().values())
