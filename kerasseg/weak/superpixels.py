"""``propagate``: ScribbleSup-style spreading of sparse labels over superpixels (scikit-image).

    dense = weak.propagate(image, scribbles, method="slic")

The image is cut into superpixels (``skimage.segmentation.slic`` or ``felzenszwalb``); every
superpixel holding labelled pixels of a single class takes that class, and one holding several
classes keeps only its labelled pixels (the conflict is left to the network). Superpixels without
labelled pixels stay unlabelled (255), as do pixels that were ``ignore_index`` in a superpixel
that holds no label. Labelled pixels are never changed.

``method="random_walker"`` spreads them by Grady's random walker instead
(``skimage.segmentation.random_walker``, "Random walks for image segmentation", 2006): every
pixel takes the class whose seeds a random walk from it, on the image's colour-weighted pixel
graph (edge weights ``exp(-beta |dI|^2)``), most likely reaches first, and stays unlabelled when
that probability is under ``min_confidence``. A label map holding a single class is returned as
it is (a walk needs two classes to compete).
"""

import numpy as np

__all__ = ["PROPAGATION_METHODS", "SUPERPIXEL_METHODS", "propagate", "random_walk", "superpixels"]

SUPERPIXEL_METHODS = ("slic", "felzenszwalb")
PROPAGATION_METHODS = SUPERPIXEL_METHODS + ("random_walker",)


def superpixels(
    image, method="slic", n_segments=None, compactness=10.0, scale=100.0, sigma=0.8, min_size=20
):
    """int [H,W] superpixel ids of ``image`` (uint8 [H,W,3]); ``n_segments`` for SLIC defaults
    to one superpixel per 64 pixels."""
    from skimage import segmentation

    image = np.asarray(image)
    if method not in SUPERPIXEL_METHODS:
        raise ValueError(
            f"superpixels: unknown method {method!r}; choose one of {', '.join(SUPERPIXEL_METHODS)}"
        )
    if method == "slic":
        n = n_segments or max(image.shape[0] * image.shape[1] // 64, 1)
        return segmentation.slic(
            image, n_segments=int(n), compactness=compactness, start_label=0, channel_axis=-1
        )
    return segmentation.felzenszwalb(image, scale=scale, sigma=sigma, min_size=int(min_size))


def propagate(image, labels, method="slic", ignore_index=255, **options):
    """int32 [H,W]: ``labels`` (sparse, 255 = unlabelled) spread over the superpixels of
    ``image``; see the module doc. ``options`` go to ``superpixels``."""
    labels = np.asarray(labels).astype(np.int32)
    if method == "random_walker":
        return random_walk(image, labels, ignore_index=ignore_index, **options)
    segments = superpixels(image, method, **options)
    if segments.shape != labels.shape:
        raise ValueError(
            f"propagate: image {segments.shape} and labels {labels.shape} differ in size"
        )
    out = labels.copy()
    known = labels != ignore_index
    ids = segments[known]
    values = labels[known]
    for sp in np.unique(ids):
        classes = np.unique(values[ids == sp])
        if len(classes) == 1:
            out[(segments == sp) & ~known] = classes[0]
    return out


def random_walk(image, labels, beta=130.0, min_confidence=0.6, ignore_index=255, tol=1e-3):
    """int32 [H,W]: ``labels`` (sparse, 255 = unlabelled) spread by the random walker over
    ``image`` (uint8 [H,W,C], scaled to [0, 1]); see the module doc."""
    from skimage.segmentation import random_walker

    labels = np.asarray(labels).astype(np.int32)
    known = labels != ignore_index
    classes = np.unique(labels[known])
    if len(classes) < 2:
        return labels
    seeds = np.zeros(labels.shape, np.int32)  # 0: unlabelled, j + 1: classes[j]
    seeds[known] = np.searchsorted(classes, labels[known]) + 1
    x = np.asarray(image, np.float64) / 255.0
    probs = random_walker(
        x,
        seeds,
        beta=float(beta),
        mode="cg_j",
        tol=float(tol),
        channel_axis=-1 if x.ndim == 3 else None,
        return_full_prob=True,
    )
    out = np.where(probs.max(0) >= float(min_confidence), classes[probs.argmax(0)], ignore_index)
    out[known] = labels[known]
    return out.astype(np.int32)
