"""A small trained model and its data, shared by test_inference and test_export.

Kept out of the test modules so that neither imports the other; ``trained_unet`` is cached,
so the session trains it once.
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
    model = kerasseg.unet(num_classes=K, backbone=None, filters=4, depth=3, weights=None,
                          batch_norm=False)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(images, labels, batch_size=16, epochs=5, verbose=0)
    return model
