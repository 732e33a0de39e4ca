"""Weakly supervised runs: the training split's labels replaced by weak ones before ``train``.

``train(..., supervision=...)`` (and ``kerasseg train --supervision``):

- ``"full"``: the masks as they are.
- ``"scribbles"`` / ``"points"``: ``weak.simulate`` from the masks, seeded by ``(seed, index)``;
  with ``superpixels="slic"|"felzenszwalb"`` spread over superpixels first (ScribbleSup), with
  ``"random_walker"`` by Grady's random walker on the image.
- ``"boxes"``: the masks' component boxes, cut by ``weak.grabcut`` into pseudo-masks (box pixels
  GrabCut calls background unlabelled), spread over ``superpixels`` too when given.
- ``"image"``: the multi-hot image labels train a CAM classifier (``weak.cam``, the run's
  backbone, or for the encoder-free models a small conv net with batch norm and global max
  pooling) for ``cam_steps`` steps at the run's batch, on whole images fitted into the run's crop
  (a random crop could drop a tagged object), randomly flipped. The pseudo-masks are CAM +
  saliency (``weak.saliency.region_pseudo_masks``): background from the boundary prior, each
  salient superpixel the tagged class of its highest relative mean CAM (an image's only tag when
  it has one). The run folder's ``weak.json`` holds the CAM and pseudo-mask mIoU on the training
  split (against the masks the labels were simulated from).

Then the segmentation model trains on the sparse labels with ``losses.PartialCrossEntropy() +
crf_weight * losses.GatedCRFLoss(**crf_options)`` (unless ``loss`` is given), its targets packed
with the image (``weak.pack_image``) and scored by ``weak.PackedMeanIoU``; validation uses the
full masks.
Real weak labels (``given_labels=True``, ``kerasseg train --given-labels``): the dataset's masks
already are the weak labels and are trained on as they are, e.g. a ``folder`` set whose masks are
scribbles or points as sparse PNGs (255 = unlabelled; ``weak.read_scribble_xml``,
``read_scribble_png``, ``read_points_json`` + ``points_map`` read the published files) or the
pseudo-masks ``kerasseg pseudo-labels`` writes (GrabCut boxes, CAMs).
"""

import json
import os

import numpy as np
import tensorflow as tf

__all__ = [
    "SUPERVISIONS",
    "check_supervision",
    "miou",
    "uses_image",
    "weak_loss",
    "weak_training_set",
    "write_figures",
]

SUPERVISIONS = ("full", "scribbles", "points", "boxes", "image")
CAM_MARGIN = 0.0  # image-level: the CAM lead a region needs in a multi-class image


def check_supervision(supervision, superpixels=None):
    if supervision not in SUPERVISIONS:
        raise ValueError(
            f"unknown supervision {supervision!r}; choose one of {', '.join(SUPERVISIONS)}."
        )
    from kerasseg.weak.superpixels import PROPAGATION_METHODS

    if superpixels not in (None, *PROPAGATION_METHODS):
        raise ValueError(
            f"unknown superpixels {superpixels!r}; choose one of none, "
            f"{', '.join(PROPAGATION_METHODS)}."
        )


def weak_loss(ignore_index, crf_weight, crf_options=None):
    from kerasseg import losses

    loss = losses.PartialCrossEntropy(ignore_index=ignore_index)
    if not crf_weight:
        return loss
    return loss + float(crf_weight) * losses.GatedCRFLoss(**(crf_options or {}))


def uses_image(loss):
    """Whether ``loss`` (or a term of it) is a ``GatedCRFLoss``, which needs packed targets."""
    from kerasseg.losses import GatedCRFLoss

    terms = getattr(loss, "losses", None)
    if isinstance(terms, (list, tuple)):
        return any(uses_image(t) for t in terms)
    return isinstance(loss, GatedCRFLoss)


def _map_numpy(raw, fn):
    """(image, label) -> (image, fn(index, image, mask)) through numpy, one element at a time."""

    def wrapped(index, element):
        image, mask = element
        labels = tf.numpy_function(fn, [index, image, mask], tf.int32, stateful=False)
        labels.set_shape(mask.shape)
        return image, labels

    return raw.enumerate().map(wrapped, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _sparse(kind, seed, ignore_index, superpixels):
    from kerasseg import weak

    def fn(index, image, mask):
        labels = weak.simulate(mask, kind, seed=(seed, int(index)), ignore_index=ignore_index)
        if superpixels:
            labels = weak.propagate(image, labels, superpixels, ignore_index=ignore_index)
        return labels.astype(np.int32)

    return fn


def _boxes(seed, ignore_index, superpixels):
    from kerasseg import weak

    def fn(index, image, mask):
        boxes, classes = weak.simulate(
            mask, "boxes", seed=(seed, int(index)), ignore_index=ignore_index
        )
        labels = weak.grabcut(image, boxes, classes, ignore_index=ignore_index, seed=seed)
        if superpixels:
            labels = weak.propagate(image, labels, superpixels, ignore_index=ignore_index)
        return labels.astype(np.int32)

    return fn


def _confusion(truth, pred, num_classes, ignore_index):
    valid = (truth != ignore_index) & (pred != ignore_index)
    idx = truth[valid].astype(np.int64) * num_classes + pred[valid]
    return np.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def miou(confusion):
    """Mean IoU of a confusion matrix (rows truth), classes absent from both left out."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    return float(np.mean(tp[union > 0] / union[union > 0])) if (union > 0).any() else float("nan")


def _image_level(raw, task, config, prepare):
    """Train the CAM classifier, then -> (list of images, list of pseudo-masks, figures)."""
    from kerasseg import weak

    k, ignore = task.num_classes, task.ignore_index
    channels = raw.element_spec[0].shape[-1] or 3

    def image_tags(mask):
        return weak.simulate(mask, "image", num_classes=k, ignore_index=ignore)

    def with_tags(image, mask):
        t = tf.numpy_function(image_tags, [mask], tf.int32, stateful=False)
        return tf.ensure_shape(image, (None, None, channels)), tf.ensure_shape(t, (k,))

    def foreground(images, t):
        images = tf.ensure_shape(images, (None, None, None, channels))
        return images, tf.ensure_shape(tf.cast(t[:, 1:], tf.float32), (None, k - 1))

    tags = raw.map(with_tags)
    # Whole images, scaled down to fit the crop and padded (prepare's evaluation mode): a random
    # crop could cut out an object its tags name.
    batches = prepare(
        tags,
        batch_size=config.batch_size,
        crop_size=config.crop_size,
        training=False,
        shuffle=True,
        repeat=True,
        drop_remainder=True,
        seed=config.seed,
        ignore_index=ignore,
    )
    # Each image flipped left-right at random: the classifier's only augmentation.
    batches = batches.map(foreground).map(
        lambda images, t: (tf.image.random_flip_left_right(images), t)
    )
    small = config.backbone is None
    net = weak.cam.classifier(
        k - 1,
        backbone=config.backbone,
        weights=None if small else config.weights,
        input_shape=(None, None, channels),
        pooling="max" if small else "avg",
        batch_norm=small,
    )
    steps = config.cam_steps or config.epochs * config.steps_per_epoch
    weak.cam.fit_classifier(net, batches, steps)
    images, masks = [], []
    cam_cm = np.zeros((k, k), np.int64)
    pseudo_cm = np.zeros((k, k), np.int64)
    for image, mask in raw.as_numpy_iterator():
        present = weak.simulate(mask, "image", num_classes=k, ignore_index=ignore)[1:]
        maps = weak.cam.cams(net, image, tags=present)
        cam = weak.cam.cam_labels(maps).numpy()
        pseudo = weak.saliency.region_pseudo_masks(
            image, maps.numpy(), present, min_margin=CAM_MARGIN, ignore_index=ignore
        )
        cam_cm += _confusion(mask, cam, k, ignore)
        pseudo_cm += _confusion(mask, pseudo, k, ignore)
        images.append(image)
        masks.append(pseudo.astype(np.int32))
    figures = {"cam_miou": miou(cam_cm), "pseudo_mask_miou": miou(pseudo_cm), "cam_steps": steps}
    return images, masks, figures


def weak_training_set(raw, task, config, prepare):
    """-> (the training split with weak labels as sparse masks, figures for weak.json)."""
    kind, ignore = config.supervision, task.ignore_index
    if task.binary:
        raise ValueError("weak supervision trains multi-class models; drop --binary.")
    if getattr(config, "given_labels", False):
        return raw, {}  # the masks already are the weak labels / pseudo-masks
    # Cached: simulating (and GrabCut above all) runs once, not on every pass over the split.
    if kind in ("scribbles", "points"):
        fn = _sparse(kind, config.seed, ignore, config.superpixels)
        return _map_numpy(raw, fn).cache(), {}
    if kind == "boxes":
        return _map_numpy(raw, _boxes(config.seed, ignore, config.superpixels)).cache(), {}
    images, masks, figures = _image_level(raw, task, config, prepare)
    spec = raw.element_spec

    def gen():
        yield from zip(images, masks)

    ds = tf.data.Dataset.from_generator(
        gen, output_signature=(spec[0], tf.TensorSpec((None, None), tf.int32))
    )
    return ds.apply(tf.data.experimental.assert_cardinality(len(images))), figures


def write_figures(output, supervision, figures):
    path = os.path.join(output, "weak.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"supervision": supervision, **figures}, f, indent=2)
    return path
