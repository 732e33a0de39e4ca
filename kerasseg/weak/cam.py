"""``cam``: image-level labels to pseudo-masks through class activation maps.

    net = weak.cam.classifier(num_classes=3, backbone="resnet50")     # foreground classes only
    weak.cam.fit_classifier(net, batches, steps=500)   # batches: (images, multi-hot [B, 3])
    maps = weak.cam.cams(net, image)                   # float32 [H,W,3] in [0, 1]
    labels = weak.cam.cam_labels(maps, tags, threshold=0.3)
    masks = weak.cam.pseudo_masks(image, maps, tags)   # CRF-refined, 255 where unsure

The classifier is a backbone of the registry (or, with ``backbone=None``, a small stride-4 conv
net, optionally with batch norm), a 1x1 convolution without bias to one score map per class
(layer ``"cam"``), global average pooling (or, ``pooling="max"``, global max pooling) and a
sigmoid: GAP then a dense layer, with the order of the two linear steps swapped, so the score map
*is* the class activation map. ``cams`` runs it at several scales and flipped,
keeps the positive part, resizes each to the image and averages them, then divides each class
by its maximum. Background is the pixels where no present class reaches ``threshold``.
``pseudo_masks`` turns the maps into probabilities (background score ``threshold``, a softmax at
``temperature``), optionally propagates them by a random walk on the image's local colour
affinities (AffinityNet / IRN style, with the affinity taken from the CRF kernel rather than
learned), refines them with ``weak.crf`` and leaves pixels whose refined probability stays under
``min_confidence`` unlabelled (255). ``weak.saliency.region_pseudo_masks`` is the alternative
that takes the background from a saliency cue instead of a CAM threshold.
"""

import keras
import numpy as np
import tensorflow as tf

from kerasseg.losses.weak import local_kernel, neighbours
from kerasseg.weak.crf import crf

__all__ = [
    "cam_labels",
    "cam_model",
    "cams",
    "classifier",
    "fit_classifier",
    "pseudo_masks",
    "random_walk",
]


def classifier(
    num_classes,
    backbone=None,
    weights=None,
    input_shape=(None, None, 3),
    filters=32,
    stride=16,
    pooling="avg",
    batch_norm=False,
):
    """Multi-label classifier (global pooling + sigmoid) whose ``"cam"`` layer gives the CAMs.

    ``num_classes`` counts the foreground classes (the multi-hot targets without background).
    ``backbone``: a registry name (its stride-``stride`` map, or the deepest one it has) or None
    for a small conv net (four 3x3 convolutions of ``filters`` to 4 x ``filters`` channels, at
    stride 4, each followed by batch normalisation with ``batch_norm``; pixels scaled to [0, 1]
    inside). ``pooling``: ``"avg"`` (GAP, the CAM paper) or ``"max"`` (global max pooling, as in
    Oquab et al. 2015: a small object is not averaged away by the background around it).
    """
    if pooling not in ("avg", "max"):
        raise ValueError(f"classifier: pooling must be 'avg' or 'max', got {pooling!r}")
    inputs = keras.Input(input_shape, name="image")
    if backbone is None:
        x = keras.layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
        for i, (width, pool) in enumerate([(1, True), (2, True), (2, False), (4, False)]):
            x = keras.layers.Conv2D(
                filters * width, 3, padding="same", use_bias=not batch_norm, name=f"conv{i + 1}"
            )(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"bn{i + 1}")(x)
            x = keras.layers.ReLU(name=f"relu{i + 1}")(x)
            if pool:
                x = keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    else:
        from kerasseg.backbones import STRIDES, build_backbone

        encoder = build_backbone(backbone, input_shape=input_shape, weights=weights)
        features = encoder(inputs)
        by_stride = dict(zip(STRIDES, features))
        x = by_stride.get(stride)
        if x is None:
            x = [f for f in features if f is not None][-1]
    cam = keras.layers.Conv2D(num_classes, 1, use_bias=False, name="cam")(x)
    if pooling == "max":
        logits = keras.layers.GlobalMaxPooling2D(name="gmp")(cam)
    else:
        logits = keras.layers.GlobalAveragePooling2D(name="gap")(cam)
    scores = keras.layers.Activation("sigmoid", name="scores", dtype="float32")(logits)
    return keras.Model(inputs, scores, name="cam_classifier")


def cam_model(net):
    """The model from the classifier's input to its ``"cam"`` score maps."""
    return keras.Model(net.input, net.get_layer("cam").output)


def fit_classifier(net, batches, steps, learning_rate=1e-3, verbose=0):
    """Compile ``net`` (Adam, binary cross-entropy) and fit it for ``steps`` batches of
    ``(images [B,H,W,C], multi-hot [B,K])`` (a repeated dataset); returns the history."""
    net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
    return net.fit(batches, steps_per_epoch=int(steps), epochs=1, verbose=verbose)


def cams(net, images, scales=(1.0, 0.5, 1.5), flip=True, tags=None):
    """float32 CAMs ``[N,H,W,K]`` (one image ``[H,W,C]``: ``[H,W,K]``) in [0, 1] at the images'
    size: multi-scale and flip averaged, per-class max-normalised; with ``tags`` (multi-hot
    ``[N,K]``) absent classes are zero."""
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    single = images.shape.rank == 3
    if single:
        images = images[None]
    maps_of = cam_model(net)
    size = tf.shape(images)[1:3]
    total = 0.0
    for scale in scales:
        scaled = tf.cast(tf.round(tf.cast(size, tf.float32) * float(scale)), tf.int32)
        x = tf.image.resize(images, tf.maximum(scaled, 1), method="bilinear")
        views = [(x, False)] + ([(tf.reverse(x, [2]), True)] if flip else [])
        for view, flipped in views:
            m = tf.nn.relu(tf.cast(maps_of(view, training=False), tf.float32))
            if flipped:
                m = tf.reverse(m, [2])
            total = total + tf.image.resize(m, size, method="bilinear")
    top = tf.reduce_max(total, axis=[1, 2], keepdims=True)
    out = tf.math.divide_no_nan(total, top + 1e-5)
    if tags is not None:
        tags = tf.cast(tf.reshape(tags, [-1, 1, 1, out.shape[-1]]), tf.float32)
        out = out * tags
    return out[0] if single else out


def _scores(maps, threshold):
    maps = tf.convert_to_tensor(maps, tf.float32)
    background = tf.fill(tf.concat([tf.shape(maps)[:-1], [1]], 0), float(threshold))
    return tf.concat([background, maps], axis=-1)


def cam_labels(maps, tags=None, threshold=0.3):
    """int32 labels (0 background, k + 1 for foreground class k): the argmax of the CAMs with a
    background score of ``threshold``; ``tags`` (multi-hot over the foreground classes) zero the
    absent classes first."""
    maps = tf.convert_to_tensor(maps, tf.float32)
    if tags is not None:
        shape = [-1] + [1] * (maps.shape.rank - 2) + [maps.shape[-1]]
        maps = maps * tf.reshape(tf.cast(tags, tf.float32), shape)
    return tf.argmax(_scores(maps, threshold), axis=-1, output_type=tf.int32)


def random_walk(images, probs, iterations=10, beta=8.0, radius=3, sigma_rgb=15.0):
    """Propagates probabilities ``[N,H,W,K]`` along the transition matrix ``T = D^-1 A^beta``
    of the local colour affinities ``A`` (the bilateral kernel of the CRF, plus the self loop)."""
    images = tf.cast(images, tf.float32)
    kernel = local_kernel(images, radius, 2.0 * radius, sigma_rgb, 1.0, 0.0)
    affinity = tf.pow(kernel, float(beta))
    centre = (2 * radius + 1) ** 2 // 2
    affinity = affinity + tf.one_hot(centre, affinity.shape[-1])
    affinity = affinity / tf.reduce_sum(affinity, -1, keepdims=True)
    v = tf.cast(probs, tf.float32)
    for _ in range(int(iterations)):
        v = tf.einsum("nhwk,nhwkc->nhwc", affinity, neighbours(v, radius))
    return v


def pseudo_masks(
    images,
    maps,
    tags=None,
    threshold=0.3,
    temperature=0.1,
    use_crf=True,
    crf_options=None,
    walk=False,
    min_confidence=0.0,
    ignore_index=255,
):
    """int32 pseudo-masks ``[N,H,W]`` (or ``[H,W]``) from CAMs; see the module doc."""
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    maps = tf.convert_to_tensor(maps, tf.float32)
    single = images.shape.rank == 3
    if single:
        images, maps = images[None], maps[None]
    if tags is not None:
        maps = maps * tf.reshape(tf.cast(tags, tf.float32), [-1, 1, 1, maps.shape[-1]])
    probs = tf.nn.softmax(_scores(maps, threshold) / float(temperature), axis=-1)
    present = None
    if tags is not None:
        t = tf.reshape(tf.cast(tags, tf.float32), [-1, 1, 1, maps.shape[-1]])
        present = tf.concat([tf.ones_like(t[..., :1]), t], -1)
    if walk:
        probs = random_walk(images, probs)
    if use_crf:
        probs = crf(images, probs, **(crf_options or {}))
    if present is not None:
        probs = probs * present
    labels = tf.argmax(probs, axis=-1, output_type=tf.int32)
    if min_confidence > 0:
        sure = tf.reduce_max(probs, -1) / tf.reduce_sum(probs, -1) >= float(min_confidence)
        labels = tf.where(sure, labels, ignore_index)
    out = labels.numpy() if tf.executing_eagerly() else labels
    return out[0] if single else out


def multi_hot_foreground(tags, background=0):
    """The foreground part of multi-hot vectors that include the background class."""
    tags = np.asarray(tags)
    return np.delete(tags, background, axis=-1)
