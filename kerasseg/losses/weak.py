"""Weak-supervision losses: partial cross-entropy on sparse labels and the Gated CRF loss.

Points, scribbles and box pseudo-masks are sparse label maps (255 = unlabelled), so partial
cross-entropy is ``CrossEntropy(ignore_index=255)``. The regularized loss of Obukhov et al. 2019
(Gated CRF) spreads those labels along image structure; it needs the image, which travels in
``y_true``: a **packed** target ``(N, H, W, 1 + C)`` float32 whose channel 0 holds the labels and
channels 1.. the image in [0, 255], as ``kerasseg.weak.pack_image`` builds it from a batched
``(image, labels)`` dataset (after ``data.prepare``, so augmentation has already kept the two
aligned). This works with plain ``model.fit`` and composes like every kerasseg loss::

    loss = kerasseg.losses.PartialCrossEntropy() + 0.1 * kerasseg.losses.GatedCRFLoss()
    model.fit(kerasseg.weak.pack_image(train_batches), ...)

``PartialCrossEntropy`` is ``CrossEntropy`` that reads channel 0 of a packed target (and plain
sparse labels as well); score packed targets with ``kerasseg.weak.PackedMeanIoU``.

``local_kernel`` (RGB + position Gaussian kernels over a ``(2r+1)^2`` window, computed with patch
extraction) is shared with the mean-field CRF of ``kerasseg.weak.crf``.
"""

import keras
import numpy as np
import tensorflow as tf

from kerasseg.losses.base import SegmentationLoss
from kerasseg.losses.pixel import CrossEntropy

__all__ = [
    "GatedCRFLoss",
    "PartialCrossEntropy",
    "gated_crf_energy",
    "local_kernel",
    "neighbours",
    "unpack",
]


def unpack(y_true):
    """-> (labels, image or None) of a packed ``(N,H,W,1+C)`` target (plain labels: image None)."""
    y_true = tf.convert_to_tensor(y_true)
    if y_true.shape.rank == 4 and (y_true.shape[-1] or 1) > 1:
        return y_true[..., 0], tf.cast(y_true[..., 1:], tf.float32)
    return y_true, None


def neighbours(x, radius):
    """``(N,h,w,K,C)``: the ``K = (2 radius + 1)^2`` window of every pixel of ``x`` (N,h,w,C),
    row-major over the offsets, zeros outside the image (``tf.image.extract_patches``)."""
    size = 2 * int(radius) + 1
    channels = x.shape[-1]
    patches = tf.image.extract_patches(
        x, sizes=[1, size, size, 1], strides=[1, 1, 1, 1], rates=[1, 1, 1, 1], padding="SAME"
    )
    shape = tf.shape(patches)
    return tf.reshape(patches, [shape[0], shape[1], shape[2], size * size, channels])


def _offsets(radius):
    r = int(radius)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    return (dy.astype(np.float32).ravel() ** 2 + dx.astype(np.float32).ravel() ** 2), r


def local_kernel(
    image, radius=5, sigma_xy=6.0, sigma_rgb=15.0, bilateral_weight=0.9, spatial_weight=0.1
):
    """``(N,h,w,K)`` pairwise weights ``k_ij`` between each pixel i and the pixels j of its
    ``(2r+1)^2`` window: ``bilateral_weight * exp(-d_xy^2 / 2 sigma_xy^2 - d_rgb^2 / 2
    sigma_rgb^2) + spatial_weight * exp(-d_xy^2 / 2 sigma_xy^2)``, with ``d_xy`` in pixels of
    ``image`` and ``d_rgb`` the Euclidean colour distance in the image's units ([0, 255]);
    ``k_ii = 0`` and ``k_ij = 0`` for j outside the image. No gradient flows into the image."""
    image = tf.stop_gradient(tf.cast(image, tf.float32))
    d2, r = _offsets(radius)
    spatial = tf.constant(np.exp(-d2 / (2.0 * float(sigma_xy) ** 2)), tf.float32)
    centre = tf.constant((d2 > 0).astype(np.float32))
    around = neighbours(image, r)  # N,h,w,K,C
    colour = tf.reduce_sum(tf.square(around - image[..., None, :]), axis=-1)
    bilateral = tf.exp(-colour / (2.0 * float(sigma_rgb) ** 2))
    ones = tf.ones_like(image[..., :1])
    inside = neighbours(ones, r)[..., 0]
    kernel = (bilateral_weight * bilateral + spatial_weight) * spatial
    return kernel * inside * centre


def _pool(x, factor):
    if factor == 1:
        return x
    return tf.nn.avg_pool2d(x, factor, factor, "SAME")


def gated_crf_energy(image, probs, radius=5, downsample=2, **kernel_options):
    """The Potts energy ``mean_i sum_j k_ij (1 - sum_c p_ic p_jc) / Z`` (i over the pixels of
    the batch, j over i's window) of probabilities ``probs`` (N,H,W,K) on ``image`` (N,H,W,C),
    both average-pooled by ``downsample`` first (``sigma_xy`` is in full-resolution pixels).
    ``Z = sum_{j != i} exp(-d_xy^2 / 2 sigma_xy^2)`` over a whole window: the energy of a pixel
    whose neighbours all disagree at zero colour distance is 1 (``bilateral_weight +
    spatial_weight``), whatever the radius, sigma and resolution."""
    factor = int(downsample)
    small = _pool(tf.cast(image, tf.float32), factor)
    p = _pool(tf.cast(probs, tf.float32), factor)
    options = dict(kernel_options)
    options["sigma_xy"] = float(options.get("sigma_xy", 6.0)) / factor
    kernel = local_kernel(small, radius, **options)
    d2, _ = _offsets(radius)
    z = float(np.exp(-d2[d2 > 0] / (2.0 * options["sigma_xy"] ** 2)).sum())
    agree = tf.reduce_sum(neighbours(p, radius) * p[..., None, :], axis=-1)  # N,h,w,K
    return tf.reduce_mean(tf.reduce_sum(kernel * (1.0 - agree), axis=-1)) / z


@keras.saving.register_keras_serializable(package="kerasseg")
class PartialCrossEntropy(CrossEntropy):
    """Partial cross-entropy: ``CrossEntropy`` over the labelled pixels (255 = unlabelled) that
    also reads channel 0 of a packed ``(N,H,W,1+C)`` target (see the module doc)."""

    def __init__(self, ignore_index=255, from_logits=False, name="partial_cross_entropy", **kw):
        super().__init__(ignore_index=ignore_index, from_logits=from_logits, name=name, **kw)

    def call(self, y_true, y_pred, sample_weight=None):
        labels, _ = unpack(y_true)
        return super().call(labels, y_pred, sample_weight)


@keras.saving.register_keras_serializable(package="kerasseg")
class GatedCRFLoss(SegmentationLoss):
    """Gated CRF loss (Obukhov et al. 2019): a local-window Potts energy with RGB and position
    kernels, computed at a reduced resolution with patch extraction.

    ``y_true`` is a packed target (labels, then the image: ``weak.pack_image``); the labels are not
    used, only the image. ``y_pred``: probabilities (or logits with ``from_logits=True``). The loss
    is ``mean_i sum_{j in window(i)} k_ij (1 - sum_c p_ic p_jc) / Z`` over the pooled pixels (see
    ``local_kernel`` for ``k_ij``, ``gated_crf_energy`` for the normaliser ``Z``, which keeps the
    loss in [0, 1]). Defaults follow the paper: radius 5, a bilateral kernel
    (weight 0.9, sigma_xy 6 px, sigma_rgb 15 of 255, i.e. 0.06 of the range) and a spatial one
    (weight 0.1), at half resolution; the paper weights the loss 0.1 next to partial CE.
    """

    def __init__(
        self,
        radius=5,
        downsample=2,
        sigma_xy=6.0,
        sigma_rgb=15.0,
        bilateral_weight=0.9,
        spatial_weight=0.1,
        from_logits=False,
        ignore_index=255,
        name="gated_crf_loss",
    ):
        # ignore_index is kept for symmetry with the other losses: the energy covers every pixel.
        super().__init__(
            ignore_index=ignore_index, from_logits=from_logits, mode="multiclass", name=name
        )
        if int(radius) < 1 or int(downsample) < 1:
            raise ValueError(
                f"GatedCRFLoss: radius and downsample must be >= 1; got {radius}, {downsample}."
            )
        if sigma_xy <= 0 or sigma_rgb <= 0:
            raise ValueError(
                f"GatedCRFLoss: sigma_xy and sigma_rgb must be > 0; got {sigma_xy}, {sigma_rgb}."
            )
        self.radius, self.downsample = int(radius), int(downsample)
        self.sigma_xy, self.sigma_rgb = float(sigma_xy), float(sigma_rgb)
        self.bilateral_weight, self.spatial_weight = float(bilateral_weight), float(spatial_weight)

    def call(self, y_true, y_pred, sample_weight=None):
        _, image = unpack(y_true)
        if image is None:
            raise ValueError(
                "GatedCRFLoss needs the image in y_true: a packed target (N, H, W, 1 + C) of the "
                "labels then the image, as kerasseg.weak.pack_image(batches) makes it; got y_true "
                f"of shape {tuple(tf.convert_to_tensor(y_true).shape)}."
            )
        y_pred = tf.cast(y_pred, tf.float32)
        probs = tf.nn.softmax(y_pred, axis=-1) if self.from_logits else y_pred
        return gated_crf_energy(
            image,
            probs,
            self.radius,
            self.downsample,
            sigma_xy=self.sigma_xy,
            sigma_rgb=self.sigma_rgb,
            bilateral_weight=self.bilateral_weight,
            spatial_weight=self.spatial_weight,
        )

    def get_config(self):
        return {
            "radius": self.radius,
            "downsample": self.downsample,
            "sigma_xy": self.sigma_xy,
            "sigma_rgb": self.sigma_rgb,
            "bilateral_weight": self.bilateral_weight,
            "spatial_weight": self.spatial_weight,
            "from_logits": self.from_logits,
            "ignore_index": self.ignore_index,
            "name": self.name,
        }
