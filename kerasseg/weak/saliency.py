"""``saliency``: a boundary-prior background model, and CAM + saliency pseudo-masks.

    score = weak.saliency.boundary_saliency(image)            # float32 [H,W], high = object
    masks = weak.saliency.region_pseudo_masks(image, maps, tags, score)

Image-level labels say which classes are present, not where the background is; weakly supervised
segmentation methods commonly take the background from a class-agnostic saliency cue (DSRG, OAA,
ICD...) and the classes from the CAMs. ``boundary_saliency`` is the classic boundary prior (Wei
et al., "Geodesic saliency using background priors", 2012; Yang et al., manifold ranking, 2013)
in its simplest form: the image border is taken to be mostly background, a Gaussian is fitted to
the border pixels' colours (robustly: the ``1 - keep`` farthest are dropped and the fit redone
``iterations`` times, so an object crossing the border does not join the background model) and
every pixel's score is its Mahalanobis distance to it.

``region_pseudo_masks`` labels pixels scoring under ``threshold`` background and cuts the others
into regions (``weak.superpixels``, restricted to the salient pixels). A region takes the tag
when the image has a single foreground tag (every object of the image is of that class), else the
tagged class whose mean CAM over the region, relative to that class's best region (every tagged
class is present somewhere, so the region it scores highest on scores 1), is highest, provided it
leads the runner-up by ``min_margin`` (otherwise the region stays unlabelled, 255). Regions of
fewer than ``min_size`` pixels stay unlabelled too. With ``drop_incomplete`` an image with an
unsure region is left out whole (all 255): its background labelled without its objects would
teach the model that unlabelled objects look like background.
"""

import numpy as np

__all__ = ["boundary_saliency", "region_pseudo_masks"]


def boundary_saliency(image, border=2, keep=0.7, iterations=3, regularisation=16.0):
    """float32 [H,W]: Mahalanobis distance of each pixel's colour to the robust Gaussian of the
    colours of the ``border`` outermost rows and columns (covariance + ``regularisation`` x I)."""
    x = np.asarray(image, np.float64)
    if x.ndim == 2:
        x = x[..., None]
    c = x.shape[-1]
    b = int(border)
    edge = np.concatenate(
        [
            x[:b].reshape(-1, c),
            x[-b:].reshape(-1, c),
            x[:, :b].reshape(-1, c),
            x[:, -b:].reshape(-1, c),
        ]
    )

    def fit(samples):
        mu = samples.mean(0)
        cov = np.atleast_2d(np.cov(samples.T)) + float(regularisation) * np.eye(c)
        return mu, np.linalg.inv(cov)

    def distance(points, mu, inv):
        d = points - mu
        return np.einsum("ni,ij,nj->n", d, inv, d)

    chosen = edge
    for _ in range(int(iterations)):
        mu, inv = fit(chosen)
        d = distance(edge, mu, inv)
        chosen = edge[d <= np.quantile(d, float(keep))]
    mu, inv = fit(chosen)
    return np.sqrt(distance(x.reshape(-1, c), mu, inv)).reshape(x.shape[:2]).astype(np.float32)


def region_pseudo_masks(
    image,
    maps,
    tags,
    saliency=None,
    threshold=9.0,
    method="felzenszwalb",
    min_margin=0.0,
    min_size=4,
    drop_incomplete=True,
    ignore_index=255,
    **options,
):
    """int32 [H,W] pseudo-mask of one image (0 background, k + 1 foreground class k) from its
    CAMs ``maps`` [H,W,K] (foreground classes), multi-hot ``tags`` [K] and ``saliency`` [H,W]
    (default ``boundary_saliency(image)``); see the module doc. ``options`` go to
    ``weak.superpixels``."""
    from kerasseg.weak.superpixels import superpixels

    image = np.asarray(image)
    maps = np.asarray(maps, np.float32)
    tags = np.asarray(tags).reshape(-1)
    present = np.flatnonzero(tags > 0)
    score = boundary_saliency(image) if saliency is None else np.asarray(saliency)
    salient = score >= float(threshold)
    out = np.where(salient, ignore_index, 0).astype(np.int32)
    if not len(present):
        return np.zeros(salient.shape, np.int32)
    segments = superpixels(image, method, **options)
    segments = np.where(salient, segments, -1)
    regions = [segments == sp for sp in np.unique(segments[salient])]
    regions = [r for r in regions if r.sum() >= int(min_size)]
    if not regions:
        return out
    means = np.stack([maps[r][:, present].mean(0) for r in regions])  # [regions, tags]
    # Every tagged class is somewhere: its best region scores 1.
    means = means / np.maximum(means.max(0, keepdims=True), 1e-6)
    complete = True
    for region, relative in zip(regions, means):
        order = np.argsort(relative)[::-1]
        if len(present) == 1 or relative[order[0]] - relative[order[1]] >= float(min_margin):
            out[region] = present[order[0]] + 1
        else:
            complete = False
    if drop_incomplete and not complete:
        return np.full(out.shape, ignore_index, np.int32)
    return out
