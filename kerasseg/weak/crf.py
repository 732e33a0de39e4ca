"""``crf``: a TensorFlow mean-field dense CRF over a local window, for pseudo-masks and as
post-processing of ``predict``.

    refined = weak.crf(images, probs)              # float32 [N,H,W,K] probabilities
    labels = tf.argmax(weak.crf(images, model.predict(images)), -1)

The pairwise term is the Potts model with the Gaussian spatial and bilateral kernels of
``kerasseg.losses.weak.local_kernel`` (the very kernel of ``losses.GatedCRFLoss``) over a
``(2 radius + 1)^2`` window; each of ``iterations`` mean-field updates is
``Q_i = softmax(log P_i + weight * sum_j k_ij Q_j)`` (the Potts penalty of the other labels, up
to a term equal for every label). It runs in TensorFlow ops on any device, batched, at the
images' own size (``downsample`` > 1 runs it on average-pooled copies and resizes the result).
"""

import tensorflow as tf

from kerasseg.losses.weak import local_kernel, neighbours

__all__ = ["crf"]


def crf(
    images,
    probs,
    iterations=5,
    weight=5.0,
    radius=5,
    sigma_xy=5.0,
    sigma_rgb=15.0,
    bilateral_weight=0.9,
    spatial_weight=0.1,
    downsample=1,
):
    """Refined probabilities ``(N,H,W,K)`` of ``probs`` on ``images`` ``(N,H,W,C)`` in [0, 255]
    (one image ``(H,W,C)`` with ``(H,W,K)`` probabilities works too)."""
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    probs = tf.cast(tf.convert_to_tensor(probs), tf.float32)
    single = images.shape.rank == 3
    if single:
        images, probs = images[None], probs[None]
    if images.shape.rank != 4 or probs.shape.rank != 4:
        raise ValueError(
            f"crf expects images (N,H,W,C) and probabilities (N,H,W,K); got {images.shape} and "
            f"{probs.shape}"
        )
    size = tf.shape(probs)[1:3]
    factor = int(downsample)
    if factor > 1:
        images = tf.nn.avg_pool2d(images, factor, factor, "SAME")
        probs = tf.nn.avg_pool2d(probs, factor, factor, "SAME")
    kernel = local_kernel(
        images, radius, sigma_xy / factor, sigma_rgb, bilateral_weight, spatial_weight
    )
    unary = tf.math.log(tf.clip_by_value(probs, 1e-6, 1.0))
    q = probs
    for _ in range(int(iterations)):
        message = tf.einsum("nhwk,nhwkc->nhwc", kernel, neighbours(q, radius))
        q = tf.nn.softmax(unary + weight * message, axis=-1)
    if factor > 1:
        q = tf.image.resize(q, size, method="bilinear")
        q = q / tf.reduce_sum(q, -1, keepdims=True)
    return q[0] if single else q
