"""Models shared by several test modules (``from tests.shared_models import ...``).

A small trained U-Net and its data (test_inference, test_export; ``trained_unet`` is cached,
so the session trains it once), and a stand-in for keras.applications' ImageNet VGG16
(test_fcn, test_segnet). Kept out of the test modules so that none imports another.
"""

import functools

import keras
import numpy as np

import kerasseg

K = 4


def random_blocks(rng, n, height, width, block=8):
    """Blocks of random colours; the class is the dominant channel, or 3 where it is dark."""
    small = rng.integers(0, 256, (n, -(-height // block), -(-width // block), 3), dtype=np.uint8)
    images = small.repeat(block, 1).repeat(block, 2)[:, :height, :width]
    labels = np.where(images.max(-1) < 96, 3, images.argmax(-1)).astype(np.int32)
    return images, labels


@functools.lru_cache(maxsize=None)
def trained_unet():
    """A tiny U-Net trained for a few steps on random_blocks: confident, varied predictions.

    Cached: the session trains it once for both test modules. Without batch
    norm: a few steps leave BN's moving statistics far from the batch ones.
    """
    keras.utils.set_random_seed(0)
    images, labels = random_blocks(np.random.default_rng(0), 96, 32, 32)
    model = kerasseg.unet(
        num_classes=K, backbone=None, filters=4, depth=3, weights=None, batch_norm=False
    )
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(images, labels, batch_size=16, epochs=5, verbose=0)
    return model


class RandomVGG:
    """Stands in for keras.applications.VGG16 with ImageNet weights: randomly initialised,
    biases made non-zero (so a copy cannot pass by both being zero), built once per
    include_top setting."""

    def __init__(self):
        self.models = {}

    def __call__(self, include_top=True, weights=None, **kwargs):
        assert weights == "imagenet"  # the builders ask for the real thing
        if include_top not in self.models:
            vgg = keras.applications.VGG16(include_top=include_top, weights=None)
            vgg.set_weights(
                [
                    w if w.ndim > 1 else np.linspace(-0.1, 0.1, w.size, dtype=w.dtype)
                    for w in vgg.get_weights()
                ]
            )
            self.models[include_top] = vgg
        return self.models[include_top]
