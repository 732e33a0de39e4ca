"""``propagate``: ScribbleSup-style spreading of sparse labels over superpixels (scikit-image).

    dense = weak.propagate(image, scribbles, method="slic")

The image is cut into superpixels (``skimage.segmentation.slic`` or ``felzenszwalb``); every
superpixel holding labelled pixels of a single class takes that class, and one holding several
classes keeps only its labelled pixels (the conflict is left to the network). Superpixels without
labelled pixels stay unlabelled (255), as do pixels that were ``ignore_index`` in a superpixel
that holds no label. Labelled pixels are never changed.
"""

import numpy as np

__all__ = ["SUPERPIXEL_METHODS", "propagate", "superpixels"]

SUPERPIXEL_METHODS = ("slic", "felzenszwalb")


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
