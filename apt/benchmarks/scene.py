"""Scene understanding shared by NYUv2 and Cityscapes: MTAN, the MTAN ``.npy`` data, augmentation, losses, metrics.

Data (MTAN pre-processed archives, Liu et al. 2019; the layout read by the Nash-MTL/FAMO/FairGrad code):
  <data_dir>/<dataset>/{train,val}/image/{i}.npy    [H, W, 3] float, RGB in [0, 1]
                                  /<label>/{i}.npy  [H, W]    class index, −1 = ignore   (NYUv2 ``label``,
                                                                                          Cityscapes ``label_7``)
                                  /depth/{i}.npy    [H, W, 1] depth (NYUv2, m) / inverse depth (Cityscapes); 0 = missing
                                  /normal/{i}.npy   [H, W, 3] unit surface normal (NYUv2 only); 0 = missing
``val`` is the test split of the lineage (NYUv2 795 / 654 images of 288×384; Cityscapes 2975 / 500 of 128×256).

Augmentation (lineage, on by default for training): RandomScaleCrop — scale s ∈ {1.0, 1.2, 1.5}, a random
⌊H/s⌋×⌊W/s⌋ crop resized back to H×W (image and normals bilinear with aligned corners, labels and depth
nearest, depth ÷ s) — then a horizontal flip with probability ½, which negates the x component of normals.
Randomness comes from the loader's generator only (see ``SceneBenchmark.loader``).

Which parameters are "shared". The lineage's ``SegNetMtan.shared_parameters()`` returns every parameter whose
name lacks "pred": the task-specific attention modules are then aggregated by gradient-manipulation methods
as if they were shared — a documented pitfall (BENCHMARKS.md §1). Here θ_shared = the SegNet trunk plus the
attention-path convolutions that all tasks reuse (``encoder_block_att``, ``decoder_block_att``); θ_k = task
k's attention masks (``encoder_att[k]``, ``decoder_att[k]``) and prediction layer. Gradient-based methods
therefore see a Jacobian over θ_shared only, and attention masks get their own task's gradient alone.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from apt.benchmarks.base import Benchmark, MetricAccumulator, MTLModel, Protocol, Splits
from apt.data_dir import DataMissingError

SCALES: tuple[float, ...] = (1.0, 1.2, 1.5)
FILTERS: tuple[int, ...] = (64, 128, 256, 512, 512)
SPLIT_FOLDERS: dict[str, str] = {"train": "train", "test": "val"}
ANGLE_THRESHOLDS: tuple[float, ...] = (11.25, 22.5, 30.0)


@dataclass(frozen=True)
class SceneLayout:
    """Where one dataset's files live and what its tasks are."""

    folder: str  # under the data dir
    label_folder: str  # "label" (NYUv2) or "label_7" (Cityscapes, 7 classes)
    n_classes: int
    with_normals: bool
    download_hint: str

    @property
    def task_folders(self) -> tuple[str, ...]:
        return ("image", self.label_folder, "depth", *(("normal",) if self.with_normals else ()))


# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------
def count_split_images(split_dir: Path, layout: SceneLayout) -> int:
    """Number of images of a split, after checking that every task folder holds 0.npy … (n−1).npy.

    Raises DataMissingError naming the folder, the files expected and where to get them.
    """
    expected = f"{', '.join(f'{f}/{{i}}.npy' for f in layout.task_folders)} for i = 0 … n−1"
    folders = [split_dir / name for name in layout.task_folders]
    absent = [str(f) for f in folders if not f.is_dir()]
    if absent:
        raise DataMissingError(
            f"{layout.folder}: missing folder(s) {', '.join(absent)}.\nExpected in {split_dir}: {expected}.\n"
            f"{layout.download_hint}"
        )
    n = len(fnmatch.filter(os.listdir(folders[0]), "*.npy"))
    if n == 0:
        raise DataMissingError(f"{layout.folder}: no .npy file in {folders[0]}; expected {expected}.\n{layout.download_hint}")
    for folder in folders:
        missing = [f"{i}.npy" for i in range(n) if not (folder / f"{i}.npy").is_file()]
        if missing:
            raise DataMissingError(
                f"{layout.folder}: {folder} lacks {len(missing)} of the {n} files of image/ "
                f"(first: {', '.join(missing[:3])}); expected {expected}.\n{layout.download_hint}"
            )
    return n


class SceneNpyDataset(Dataset):
    """Samples (image [3,H,W], label [H,W], depth [1,H,W][, normal [3,H,W]]) as float32 from the .npy layout.

    ``indices``: which files (0-based) make the dataset, in order. ``augment`` marks the training set:
    ``SceneBenchmark.loader`` then applies RandomScaleCrop + flip to its batches.
    """

    def __init__(self, split_dir: Path, layout: SceneLayout, indices: Sequence[int], *, augment: bool) -> None:
        self.split_dir = Path(split_dir)
        self.layout = layout
        self.indices = list(indices)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.indices)

    def _load(self, folder: str, index: int) -> Tensor:
        path = self.split_dir / folder / f"{index}.npy"
        try:
            array = np.load(path)
        except (OSError, ValueError) as error:
            raise DataMissingError(f"{self.layout.folder}: cannot read {path} as a .npy array ({error})") from error
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def __getitem__(self, position: int) -> tuple[Tensor, ...]:
        index = self.indices[position]
        image = self._load("image", index)
        label = self._load(self.layout.label_folder, index)
        depth = self._load("depth", index)
        if image.dim() != 3 or image.shape[-1] != 3 or label.shape != image.shape[:2]:
            raise DataMissingError(
                f"{self.layout.folder}: sample {index} in {self.split_dir} has image {tuple(image.shape)} and label "
                f"{tuple(label.shape)}; expected [H, W, 3] and [H, W]"
            )
        sample = [image.permute(2, 0, 1), label, depth.reshape(*label.shape, -1).permute(2, 0, 1)]
        if self.layout.with_normals:
            sample.append(self._load("normal", index).permute(2, 0, 1))
        return tuple(t.contiguous() for t in sample)


def random_scale_crop(
    image: Tensor, label: Tensor, depth: Tensor, normal: Tensor | None, generator: torch.Generator | None
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """One sample's RandomScaleCrop: s ~ U{1.0, 1.2, 1.5}, crop h=⌊H/s⌋, w=⌊W/s⌋ at a uniform corner, resize to H×W.

    image [3,H,W], normal [3,H,W]: bilinear (align_corners); label [H,W], depth [1,H,W]: nearest; depth ÷ s
    (a crop enlarged s times looks s times closer).
    """
    height, width = image.shape[-2:]
    scale = SCALES[int(torch.randint(len(SCALES), (1,), generator=generator))]
    h, w = int(height / scale), int(width / scale)
    top = int(torch.randint(height - h + 1, (1,), generator=generator))
    left = int(torch.randint(width - w + 1, (1,), generator=generator))
    rows, cols = slice(top, top + h), slice(left, left + w)

    def resize(t: Tensor, mode: str) -> Tensor:
        extra = {"align_corners": True} if mode == "bilinear" else {}
        return F.interpolate(t[None, :, rows, cols], size=(height, width), mode=mode, **extra)[0]

    return (
        resize(image, "bilinear"),
        resize(label[None], "nearest")[0],
        resize(depth, "nearest") / scale,
        None if normal is None else resize(normal, "bilinear"),
    )


def horizontal_flip(
    image: Tensor, label: Tensor, depth: Tensor, normal: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Mirror left–right; a mirrored surface normal (n_x, n_y, n_z) becomes (−n_x, n_y, n_z)."""
    flipped_normal = None
    if normal is not None:
        flipped_normal = normal.flip(-1)
        flipped_normal[0] = -flipped_normal[0]
    return image.flip(-1), label.flip(-1), depth.flip(-1), flipped_normal


def augment_sample(sample: Sequence[Tensor], generator: torch.Generator | None) -> tuple[Tensor, ...]:
    """RandomScaleCrop, then a horizontal flip with probability ½ (lineage order and probabilities)."""
    image, label, depth, *rest = sample
    normal = rest[0] if rest else None
    image, label, depth, normal = random_scale_crop(image, label, depth, normal, generator)
    if float(torch.rand((1,), generator=generator)) < 0.5:
        image, label, depth, normal = horizontal_flip(image, label, depth, normal)
    return (image, label, depth) if normal is None else (image, label, depth, normal)


class AugmentedLoader:
    """Batches of a DataLoader, each sample augmented with randomness drawn from ``generator``."""

    def __init__(self, loader: DataLoader, generator: torch.Generator | None) -> None:
        self.loader = loader
        self.generator = generator

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        for batch in self.loader:
            samples = [augment_sample([t[b] for t in batch], self.generator) for b in range(batch[0].shape[0])]
            yield tuple(torch.stack(parts) for parts in zip(*samples))


# ----------------------------------------------------------------------------------------------------------
# Model: MTAN (Liu, Johns & Davison 2019) on SegNet, as in lorenmt/mtan and the Nash-MTL/FAMO code
# ----------------------------------------------------------------------------------------------------------
def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv (padding 1) → BatchNorm → ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def attention_mask(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    """a = σ(BN(1×1 conv(ReLU(BN(1×1 conv(x))))))  ∈ (0, 1): a task's soft feature mask."""
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, kernel_size=1),
        nn.BatchNorm2d(hidden),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, out_channels, kernel_size=1),
        nn.BatchNorm2d(out_channels),
        nn.Sigmoid(),
    )


class SegNetTrunk(nn.Module):
    """The shared SegNet: 5 encoder stages (conv blocks + 2×2 max-pool), 5 decoder stages (max-unpool + convs).

    Returns a flat tuple of 20 feature maps that the task attention reads (stage j = 0 … 4):
      encoder_in[j]  (first conv of encoder stage j),   encoder_out[j] (last conv of encoder stage j),
      upsampled[j]   (unpooled input of decoder stage j), decoder_out[j] (last conv of decoder stage j).
    Input H and W must be multiples of 32.
    """

    def __init__(self) -> None:
        super().__init__()
        f = FILTERS
        self.encoder_block = nn.ModuleList([conv_bn_relu(3, f[0])] + [conv_bn_relu(f[i], f[i + 1]) for i in range(4)])
        self.decoder_block = nn.ModuleList([conv_bn_relu(f[0], f[0])] + [conv_bn_relu(f[i + 1], f[i]) for i in range(4)])
        self.conv_block_enc = nn.ModuleList(
            [conv_bn_relu(f[0], f[0]), conv_bn_relu(f[1], f[1])]
            + [nn.Sequential(conv_bn_relu(f[i + 1], f[i + 1]), conv_bn_relu(f[i + 1], f[i + 1])) for i in range(1, 4)]
        )
        self.conv_block_dec = nn.ModuleList(
            [conv_bn_relu(f[0], f[0]), conv_bn_relu(f[0], f[0])]
            + [nn.Sequential(conv_bn_relu(f[i], f[i]), conv_bn_relu(f[i], f[i])) for i in range(1, 4)]
        )
        self.down_sampling = nn.MaxPool2d(kernel_size=2, stride=2, return_indices=True)
        self.up_sampling = nn.MaxUnpool2d(kernel_size=2, stride=2)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"MTAN/SegNet needs H and W divisible by 32 (5 poolings), got {tuple(x.shape[-2:])}")
        encoder_in, encoder_out, pooled, pool_indices = [], [], [], []
        for j in range(5):
            first = self.encoder_block[j](x if j == 0 else pooled[-1])
            last = self.conv_block_enc[j](first)
            down, indices = self.down_sampling(last)
            encoder_in.append(first), encoder_out.append(last), pooled.append(down), pool_indices.append(indices)
        upsampled, decoder_out = [], []
        for j in range(5):
            up = self.up_sampling(pooled[-1] if j == 0 else decoder_out[-1], pool_indices[-j - 1])
            upsampled.append(up)
            decoder_out.append(self.conv_block_dec[-j - 1](self.decoder_block[-j - 1](up)))
        return (*encoder_in, *encoder_out, *upsampled, *decoder_out)


class SharedAttentionConvs(nn.Module):
    """The convolutions every task's attention path reuses (shared weights in MTAN).

    encoder_block_att[j]: f_j → f_{j+1} (last: 512 → 512);  decoder_block_att[j]: f_{j+1} → f_j (first 64 → 64,
    last 512 → 512).
    """

    def __init__(self) -> None:
        super().__init__()
        f = FILTERS
        self.encoder_block_att = nn.ModuleList(
            [conv_bn_relu(f[i], f[i + 1]) for i in range(4)] + [conv_bn_relu(f[4], f[4])]
        )
        self.decoder_block_att = nn.ModuleList(
            [conv_bn_relu(f[0], f[0])] + [conv_bn_relu(f[i + 1], f[i]) for i in range(3)] + [conv_bn_relu(f[4], f[4])]
        )


class MTANShared(nn.Module):
    """θ_shared of MTAN: the SegNet trunk and the shared attention-path convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = SegNetTrunk()
        self.attention_convs = SharedAttentionConvs()

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return self.trunk(x)


class MTANTaskHead(nn.Module):
    """Task k's attention masks and prediction layer: its θ_k.

    Encoder, stage j:  a = mask_j([encoder_in_j, p_{j−1}]) (j = 0: mask_0(encoder_in_0));
                       p_j = maxpool(encoder_block_att_j(a ⊙ encoder_out_j)).
    Decoder, stage j:  d = decoder_block_att_{4−j}(upsample×2(q_{j−1})), with q_{−1} = p_4;
                       q_j = mask'_{4−j}([upsampled_j, d]) ⊙ decoder_out_j.
    Output: prediction(q_4) = 1×1 conv(3×3 conv(q_4)) → [B, out_channels, H, W], then ``output`` activation.
    """

    def __init__(self, out_channels: int, output: str) -> None:
        super().__init__()
        if output not in ("log_softmax", "identity", "unit_normal"):
            raise ValueError(f"output={output!r}: allowed 'log_softmax', 'identity', 'unit_normal'")
        f = FILTERS
        self.output = output
        self.encoder_att = nn.ModuleList(
            [attention_mask(f[0], f[0], f[0])] + [attention_mask(2 * f[j], f[j], f[j]) for j in range(1, 5)]
        )
        self.decoder_att = nn.ModuleList(
            [attention_mask(2 * f[0], f[0], f[0])] + [attention_mask(f[j] + f[j - 1], f[j - 1], f[j - 1]) for j in range(1, 5)]
        )
        self.pred = nn.Sequential(
            nn.Conv2d(f[0], f[0], kernel_size=3, padding=1), nn.Conv2d(f[0], out_channels, kernel_size=1)
        )

    def forward(self, features: Sequence[Tensor], shared: SharedAttentionConvs) -> Tensor:
        encoder_in, encoder_out, upsampled, decoder_out = (features[5 * i : 5 * i + 5] for i in range(4))
        previous: Tensor | None = None
        for j in range(5):
            mask_input = encoder_in[j] if previous is None else torch.cat((encoder_in[j], previous), dim=1)
            attended = self.encoder_att[j](mask_input) * encoder_out[j]
            previous = F.max_pool2d(shared.encoder_block_att[j](attended), kernel_size=2, stride=2)
        for j in range(5):
            up = F.interpolate(previous, scale_factor=2, mode="bilinear", align_corners=True)
            up = shared.decoder_block_att[-j - 1](up)
            previous = self.decoder_att[-j - 1](torch.cat((upsampled[j], up), dim=1)) * decoder_out[j]
        prediction = self.pred(previous)
        if self.output == "log_softmax":
            return F.log_softmax(prediction, dim=1)
        if self.output == "unit_normal":
            return prediction / prediction.norm(p=2, dim=1, keepdim=True)
        return prediction


class MTAN(MTLModel):
    """MTAN: shared SegNet trunk, one attention network + prediction layer per task.

    ``task_outputs``: (out_channels, activation) per task, e.g. [(13, "log_softmax"), (1, "identity"),
    (3, "unit_normal")] for NYUv2. ``shared_forward`` returns the trunk's 20 feature maps (see SegNetTrunk);
    note that the shared attention convs act after them, inside each task's path, so a representation-level
    gradient w.r.t. these features does not cover those convs. Initialisation as the lineage: Xavier-normal
    conv weights, zero biases, BatchNorm γ = 1, β = 0.
    """

    def __init__(self, task_outputs: Sequence[tuple[int, str]]) -> None:
        super().__init__()
        self.shared = MTANShared()
        self.heads = nn.ModuleList(MTANTaskHead(channels, output) for channels, output in task_outputs)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def heads_forward(self, features: Tensor | tuple[Tensor, ...]) -> list[Tensor]:
        return [head(features, self.shared.attention_convs) for head in self.heads]

    def muon_excluded_names(self) -> set[str]:
        """Heads (base rule) and the first convolution, which sees the RGB input (Keller Jordan's ConvNet rule)."""
        return super().muon_excluded_names() | {"shared.trunk.encoder_block.0.0.weight"}


# ----------------------------------------------------------------------------------------------------------
# Losses and metrics (lineage definitions)
# ----------------------------------------------------------------------------------------------------------
def valid_pixel_mask(target: Tensor) -> Tensor:
    """m = [Σ_c target_c ≠ 0]: [B, C, H, W] → [B, 1, H, W] bool (missing depth / normals are all-zero)."""
    return (target.sum(dim=1, keepdim=True) != 0)


def segmentation_loss(log_probabilities: Tensor, label: Tensor) -> Tensor:
    """ℓ_seg = −mean over labelled pixels of log p(label): log_probabilities [B, C, H, W], label [B, H, W] (−1 ignored)."""
    return F.nll_loss(log_probabilities, label.long(), ignore_index=-1)


def depth_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """ℓ_depth = Σ m |d̂ − d| / Σ m  (masked L1; [B, 1, H, W]). Zero if no pixel is valid (lineage: NaN)."""
    mask = valid_pixel_mask(target)
    return ((prediction - target).abs() * mask).sum() / mask.sum().clamp(min=1)


def normal_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """ℓ_normal = 1 − Σ_pixels m ⟨n̂, n⟩ / Σ m  (1 − masked mean cosine; [B, 3, H, W] unit vectors)."""
    mask = valid_pixel_mask(target)
    return 1 - (prediction * target * mask).sum() / mask.sum().clamp(min=1)


class ConfusionMatrix:
    """Counts N[t, p] of pixels with true class t and predicted class p over a whole split (labels ∉ [0, C) skipped).

    IoU_c = N_cc / (Σ_p N_cp + Σ_t N_tc − N_cc);  mIoU = mean_c IoU_c over classes that occur (in truth or
    prediction; the lineage averages all C and returns NaN if one never occurs);  PixAcc = Σ_c N_cc / Σ N.
    """

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes
        self.counts = torch.zeros(n_classes, n_classes, dtype=torch.int64)

    def update(self, predicted: Tensor, label: Tensor) -> None:
        predicted, label = predicted.flatten().cpu().long(), label.flatten().cpu().long()
        valid = (label >= 0) & (label < self.n_classes)
        flat = self.n_classes * label[valid] + predicted[valid]
        self.counts += torch.bincount(flat, minlength=self.n_classes**2).reshape(self.n_classes, self.n_classes)

    def miou_and_pixel_accuracy(self) -> tuple[float, float]:
        counts = self.counts.double()
        correct = counts.diag()
        union = counts.sum(0) + counts.sum(1) - correct
        occurring = union > 0
        if not bool(occurring.any()):
            raise ValueError("segmentation metrics: no labelled pixel was seen")
        return float((correct[occurring] / union[occurring]).mean()), float(correct.sum() / counts.sum())


def depth_errors(prediction: Tensor, target: Tensor) -> tuple[float, float] | None:
    """(AbsErr, RelErr) of one batch: Σ m |d̂ − d| / Σ m and Σ m |d̂ − d| / d / Σ m. None if no pixel is valid."""
    mask = valid_pixel_mask(target).expand_as(target)
    if not bool(mask.any()):
        return None
    error = (prediction[mask] - target[mask]).abs()
    return float(error.mean()), float((error / target[mask]).mean())


def normal_angle_errors(prediction: Tensor, target: Tensor) -> tuple[float, ...] | None:
    """Angles θ = acos(clamp(⟨n̂, n⟩, −1, 1)) in degrees over valid pixels of one batch:
    (mean θ, median θ, P[θ < 11.25], P[θ < 22.5], P[θ < 30]). None if no pixel is valid.
    The median is numpy's (mean of the two middle values for an even count), as in the lineage."""
    mask = valid_pixel_mask(target)[:, 0]
    if not bool(mask.any()):
        return None
    cosine = (prediction * target).sum(dim=1)[mask].clamp(-1, 1)
    angles = np.degrees(torch.acos(cosine).double().cpu().numpy())
    return (float(angles.mean()), float(np.median(angles)), *(float((angles < t).mean()) for t in ANGLE_THRESHOLDS))


class SceneMetricAccumulator(MetricAccumulator):
    """mIoU and PixAcc from a confusion matrix over the split; depth and normal errors averaged over batches.

    The per-batch averaging of AbsErr, RelErr and the angle statistics is the lineage's (its evaluation loop
    adds each batch's value / number of batches), so these depend on the evaluation batch size.
    outputs: [log-probabilities [B,C,H,W], depth [B,1,H,W](, normals [B,3,H,W])]; targets: the same order.
    """

    def __init__(self, metric_names: Sequence[str], n_classes: int, with_normals: bool) -> None:
        self.metric_names = tuple(metric_names)
        self.with_normals = with_normals
        self.confusion = ConfusionMatrix(n_classes)
        self.depth_batches: list[tuple[float, float]] = []
        self.normal_batches: list[tuple[float, ...]] = []

    def update(self, outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> None:
        n_tasks = 3 if self.with_normals else 2
        if len(outputs) != n_tasks or len(targets) != n_tasks:
            raise ValueError(f"expected {n_tasks} outputs and targets, got {len(outputs)} and {len(targets)}")
        self.confusion.update(outputs[0].detach().argmax(1), targets[0])
        depth = depth_errors(outputs[1].detach(), targets[1])
        if depth is not None:
            self.depth_batches.append(depth)
        if self.with_normals:
            normal = normal_angle_errors(outputs[2].detach(), targets[2])
            if normal is not None:
                self.normal_batches.append(normal)

    def compute(self) -> dict[str, float]:
        if not self.depth_batches or (self.with_normals and not self.normal_batches):
            raise ValueError("scene metrics: no batch with valid depth (or normal) pixels was added")
        values = [*self.confusion.miou_and_pixel_accuracy(), *np.mean(self.depth_batches, axis=0).tolist()]
        if self.with_normals:
            values += np.mean(self.normal_batches, axis=0).tolist()
        return dict(zip(self.metric_names, values, strict=True))


# ----------------------------------------------------------------------------------------------------------
# Benchmark
# ----------------------------------------------------------------------------------------------------------
def scene_protocol(batch_size: int) -> Protocol:
    """The lineage protocol shared by NYUv2 and Cityscapes (BENCHMARKS.md §1): Adam 1e-4, 200 epochs,
    StepLR(100, 0.5), test metrics averaged over the last 10 epochs; only the batch size differs."""
    return Protocol(epochs=200, batch_size=batch_size, lr=1e-4, scheduler="step",
                    scheduler_kwargs={"step_size": 100, "gamma": 0.5}, selection="last_k", selection_k=10)


class SceneBenchmark(Benchmark):
    """Common body of NYUv2 and Cityscapes; subclasses set ``layout`` and the class attributes.

    No validation split (the lineage reports the mean test metrics of the last 10 epochs). ``augmentation``
    (keyword, default True as in the lineage) switches RandomScaleCrop + flip on the training set.
    Representation-level gradients are not offered: the shared attention-path convolutions act after the
    trunk features that ``shared_forward`` returns, so a feature gradient would not reach them.
    """

    supports_rep_grad: ClassVar[bool] = False

    layout: ClassVar[SceneLayout]

    def __init__(self, data_dir: str | Path | None = None, *, augmentation: bool = True) -> None:
        super().__init__(data_dir)
        self.augmentation = augmentation

    @property
    def root(self) -> Path:
        return self.data_dir / self.layout.folder

    def _split(self, split: str, size: int | None, generator: torch.Generator, augment: bool) -> SceneNpyDataset:
        split_dir = self.root / SPLIT_FOLDERS[split]
        n = count_split_images(split_dir, self.layout)
        if size is None or size >= n:
            indices = list(range(n))
        else:
            indices = sorted(torch.randperm(n, generator=generator)[:size].tolist())
        return SceneNpyDataset(split_dir, self.layout, indices, augment=augment)

    def splits(self, protocol: Protocol, seed: int) -> Splits:
        generator = torch.Generator().manual_seed(seed)
        train = self._split("train", protocol.n_train, generator, augment=self.augmentation)
        test = self._split("test", protocol.n_test, generator, augment=False)
        return Splits(train=train, val=None, test=test)

    def loader(self, dataset: Dataset, batch_size: int, *, shuffle: bool, generator: torch.Generator | None) -> Iterable:
        """Batches in the order drawn from ``generator``; for the training set, augmented with the same generator."""
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=0)
        return AugmentedLoader(loader, generator) if getattr(dataset, "augment", False) else loader

    def build_model(self) -> MTAN:
        outputs = [(self.layout.n_classes, "log_softmax"), (1, "identity")]
        if self.layout.with_normals:
            outputs.append((3, "unit_normal"))
        return MTAN(outputs)

    def inputs_targets(self, batch: Any, device: torch.device | str) -> tuple[Tensor, list[Tensor]]:
        image, label, *dense = batch
        return image.to(device), [label.to(device).long(), *(t.to(device) for t in dense)]

    def losses(self, outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
        """[ℓ_seg, ℓ_depth(, ℓ_normal)]: NLL (ignore −1), masked L1, 1 − masked cosine."""
        if len(outputs) != self.n_tasks or len(targets) != self.n_tasks:
            raise ValueError(f"{self.name} expects {self.n_tasks} outputs and targets, got {len(outputs)} and {len(targets)}")
        losses = [segmentation_loss(outputs[0], targets[0]), depth_loss(outputs[1], targets[1])]
        if self.layout.with_normals:
            losses.append(normal_loss(outputs[2], targets[2]))
        return torch.stack(losses)

    def metric_accumulator(self) -> SceneMetricAccumulator:
        return SceneMetricAccumulator(self.metric_names, self.layout.n_classes, self.layout.with_normals)
