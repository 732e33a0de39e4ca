"""Backbone weights: the ``weights`` argument, ImageNet downloads that fail offline, and
moving weights between two builds of one network (``transfer_weights``), also where their input
channel counts differ.

``keras.applications`` ships RGB weights only. A build with C != 3 channels gets them through
an RGB twin: the first kernel is averaged over its input channels and repeated, scaled by 3/C.
(``load_backbone_file``, which builds such a twin, is in build.py, above applications.py.)
"""

import os
import re


class WeightsUnavailableError(ConnectionError):
    """The ImageNet weights of a backbone are neither in Keras's cache nor downloadable (no
    network, a proxy refusing the address, ...). The message names the backbone, the address,
    the cache file Keras reads and the way out (``weights=None``)."""

    def __init__(self, message, backbone=None, url=None, cache_file=None):
        super().__init__(message)
        self.backbone, self.url, self.cache_file = backbone, url, cache_file

    def __str__(self):
        return self.args[0] if self.args else ""


_FETCH_FAILURE = re.compile(r"URL fetch failure on (\S+?):? (.*)", re.S)


def check_weights_arg(weights):
    """A ValueError unless ``weights`` is "imagenet", None or a path; FileNotFoundError for a
    path that does not exist."""
    if weights is None or weights == "imagenet":
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights must be 'imagenet', None or a file path; got {weights!r}.")
    if not os.path.exists(weights):
        raise FileNotFoundError(f"Weights file not found: {os.fspath(weights)!r}.")


NO_IMAGENET = (
    "{name}: there are no published ImageNet weights for this encoder in Keras "
    "(keras.applications has no {what}). Use weights=None (random initialisation), a path to "
    "a weights file{extra}."
)


def refuse_imagenet(name, what, extra=""):
    """Raise the ValueError for ``weights="imagenet"`` of an encoder written here (no Keras
    ImageNet weights exist for it); ``what`` names the network, ``extra`` adds a way out."""
    raise ValueError(NO_IMAGENET.format(name=name, what=what, extra=extra))


def keras_cache_folder():
    """Where ``keras.utils.get_file`` keeps downloaded weights (``cache_subdir="models"``)."""
    try:
        from keras.src.backend import config

        base = os.path.expanduser(config.keras_home())
    except Exception:  # noqa: BLE001 - a Keras without that accessor: its documented default
        base = os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))
    if not os.access(base, os.W_OK):  # get_file's own fallback, as it decides it
        import tempfile

        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return os.path.join(base, "models")


def weights_unavailable(name, error):
    """The WeightsUnavailableError for a failed ImageNet download of backbone ``name``, or None
    where ``error`` is another error."""
    match = _FETCH_FAILURE.search(str(error))
    if match is None:
        return None
    url, reason = match.group(1), " ".join(match.group(2).split())
    code, _, text = reason.partition(" -- ")  # get_file's "<errno or HTTP code> -- <reason>"
    reason = text if code in ("None", "") else f"{code} {text}".strip()
    cache = os.path.join(keras_cache_folder(), os.path.basename(url.split("?")[0]))
    return WeightsUnavailableError(
        f"the ImageNet weights of backbone {name!r} could not be downloaded from {url} "
        f"({reason or 'no network?'}) and are not in the Keras cache {cache!r}. Copy that file "
        f"there from a machine with network access, or build with weights=None (random "
        f"initialisation).",
        backbone=name,
        url=url,
        cache_file=cache,
    )


def adapt_channels(value, target_shape):
    """Fit a weight made for 3 input channels to another channel count.

    Kernels are averaged over the input-channel axis and repeated, scaled by 3/C so a grey
    image replicated over C channels gives the same response as it did in RGB; per-channel
    statistics (a Normalization layer's mean and variance) are averaged and repeated.
    """
    import numpy as np

    value = np.asarray(value)
    if value.ndim == 4:  # conv kernel [kh, kw, cin, cout]
        channels = target_shape[2]
        mean = value.mean(axis=2, keepdims=True) * (value.shape[2] / channels)
        return np.repeat(mean, channels, axis=2)
    return np.full(target_shape, value.mean(), dtype=value.dtype)


def _weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def transfer_weights(source, target):
    """Copy weights layer by layer (in order) between two builds of the same network.

    Shapes may differ only where the input channel count differs; those weights are adapted.
    Layer order, not names, pairs them up: keras auto-names some layers with session counters.
    """
    src, dst = _weighted_layers(source), _weighted_layers(target)
    if len(src) != len(dst):
        raise ValueError(
            f"Cannot transfer weights: {source.name!r} has {len(src)} weighted layers, "
            f"{target.name!r} has {len(dst)}."
        )
    for s, d in zip(src, dst):
        values = []
        for sw, dw in zip(s.get_weights(), d.get_weights()):
            values.append(sw if sw.shape == dw.shape else adapt_channels(sw, dw.shape))
        d.set_weights(values)
