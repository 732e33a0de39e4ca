"""kerasseg.data.prepare: alignment of image and mask under augmentation, padding, determinism."""

import numpy as np
import pytest
import tensorflow as tf

from kerasseg import data


def _block_pairs(n=6, h=40, w=56, block=8, classes=6, seed=0, channels=3):
    """Images whose channel 0 encodes the mask ((class + 1) * 20) on blocky masks, so the mask can
    be read back from the augmented image."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(n):
        hh, ww = h + 8 * (i % 3), w - 8 * (i % 2)
        grid = rng.integers(0, classes, (hh // block + 1, ww // block + 1))
        mask = np.kron(grid, np.ones((block, block), np.int64))[:hh, :ww].astype(np.int32)
        image = np.zeros((hh, ww, channels), np.uint8)
        image[..., 0] = (mask + 1) * 20
        image[..., 1] = 100
        image[..., 2] = 200
        if channels == 4:
            image[..., 3] = np.arange(ww, dtype=np.uint8)[None, :] * 4
        images.append(image)
        masks.append(mask)
    return images, masks


def _dataset(images, masks):
    def gen():
        yield from zip(images, masks)

    spec = (
        tf.TensorSpec((None, None, images[0].shape[-1]), tf.uint8),
        tf.TensorSpec((None, None), tf.int32),
    )
    return tf.data.Dataset.from_generator(gen, output_signature=spec)


def _collect(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def _uniform_neighbourhood(mask):
    """True where the 3x3 neighbourhood of a pixel holds one value (away from class borders)."""
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)), mode="edge")
    same = np.ones(mask.shape, bool)
    for dy in range(3):
        for dx in range(3):
            same &= padded[:, dy : dy + mask.shape[1], dx : dx + mask.shape[2]] == mask
    return same


def test_training_keeps_image_and_mask_aligned():
    images, masks = _block_pairs()
    ds = data.prepare(
        _dataset(images, masks),
        batch_size=3,
        crop_size=(48, 40),
        training=True,
        seed=1,
        photometric=False,
        scale_range=(0.5, 2.0),
        cat_max_ratio=0.75,
    )
    x, y = _collect(ds)
    assert x.shape == (6, 48, 40, 3) and x.dtype == np.float32
    assert y.shape == (6, 48, 40) and y.dtype == np.int32
    decoded = np.round(x[..., 0] / 20.0).astype(np.int32) - 1
    valid = y != 255
    interior = valid & _uniform_neighbourhood(y)
    assert interior.sum() > 1000
    np.testing.assert_array_equal(decoded[interior], y[interior])
    # Borders may blend under bilinear resizing, but nearly every labelled pixel still agrees.
    assert (decoded[valid] == y[valid]).mean() > 0.9
    # Padding: ignore in the mask, zero in the image.
    assert np.all(x[~valid] == 0)


def test_flip_mirrors_image_and_mask_together():
    images, masks = _block_pairs(n=12, channels=4)
    ds = data.prepare(
        _dataset(images, masks),
        batch_size=1,
        training=True,
        seed=5,
        photometric=False,
        scale_range=None,
        shuffle=False,
    )
    flipped = 0
    for (x, y), image, mask in zip(ds, images, masks):
        x, y = x.numpy()[0], y.numpy()[0]
        if np.array_equal(y, mask):
            np.testing.assert_array_equal(x, image.astype(np.float32))
        else:
            np.testing.assert_array_equal(y, mask[:, ::-1])
            np.testing.assert_array_equal(x, image[:, ::-1].astype(np.float32))
            flipped += 1
    assert 0 < flipped < 12


def test_small_image_is_padded_with_ignore_and_zero():
    rng = np.random.default_rng(0)
    image = rng.integers(1, 255, (20, 30, 3)).astype(np.uint8)
    mask = rng.integers(0, 4, (20, 30)).astype(np.int32)
    ds = data.prepare(
        _dataset([image], [mask]),
        batch_size=1,
        crop_size=(48, 64),
        training=True,
        seed=0,
        scale_range=None,
        flip=False,
        photometric=False,
        ignore_index=255,
    )
    x, y = _collect(ds)
    assert x.shape == (1, 48, 64, 3)
    np.testing.assert_array_equal(x[0, :20, :30], image)
    np.testing.assert_array_equal(y[0, :20, :30], mask)
    assert np.all(y[0, 20:] == 255) and np.all(y[0, :, 30:] == 255)
    assert np.all(x[0, 20:] == 0) and np.all(x[0, :, 30:] == 0)


def test_random_scale_matches_tf_image_resize():
    # With the crop larger than the resized image the whole resized image is kept (offset 0), so the
    # result must equal tf.image.resize (bilinear image, nearest mask) padded to the crop.
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    mask = rng.integers(0, 5, (20, 30)).astype(np.int32)
    for scale, size in ((1.5, (30, 45)), (0.7, (14, 21))):
        ds = data.prepare(
            _dataset([image], [mask]),
            batch_size=1,
            crop_size=(48, 64),
            training=True,
            seed=0,
            scale_range=(scale, scale),
            flip=False,
            photometric=False,
        )
        x, y = _collect(ds)
        h, w = size
        want_x = tf.image.resize(image.astype(np.float32), size, method="bilinear").numpy()
        want_y = tf.image.resize(mask[..., None], size, method="nearest").numpy()[..., 0]
        np.testing.assert_allclose(x[0, :h, :w], want_x, atol=0.01)
        np.testing.assert_array_equal(y[0, :h, :w], want_y)
        assert np.all(y[0, h:] == 255) and np.all(y[0, :, w:] == 255) and np.all(x[0, h:] == 0)


def test_same_seed_same_batches_and_epochs_differ():
    images, masks = _block_pairs(n=8)

    def run(seed):
        ds = data.prepare(
            _dataset(images, masks), batch_size=4, crop_size=32, training=True, seed=seed
        )
        return _collect(ds), _collect(ds)  # two epochs of one pipeline

    (a1, a2), (b1, _) = run(7), run(7)
    np.testing.assert_array_equal(a1[0], b1[0])
    np.testing.assert_array_equal(a1[1], b1[1])
    assert not np.array_equal(a1[0], a2[0])  # a new epoch draws new augmentations
    (c1, _) = run(8)
    assert not np.array_equal(a1[0], c1[0])


def test_cat_max_ratio_redraws_dominated_crops():
    # Class 0 except a 32x32 patch of class 1 in a corner: fewer than half of the 48x48 crops keep
    # class 0 under 75 %, but ten draws almost always find one.
    mask = np.zeros((64, 64), np.int32)
    mask[:32, :32] = 1
    image = np.repeat(((mask + 1) * 20).astype(np.uint8)[..., None], 3, -1)
    ds = _dataset([image] * 24, [mask] * 24)

    def share_ok(ratio):
        out = data.prepare(
            ds,
            batch_size=24,
            crop_size=48,
            training=True,
            seed=2,
            scale_range=None,
            flip=False,
            photometric=False,
            cat_max_ratio=ratio,
            cat_max_tries=10,
        )
        _, y = _collect(out)
        ok = []
        for crop in y:
            counts = np.bincount(crop[crop != 255].ravel(), minlength=2)
            ok.append((counts > 0).sum() > 1 and counts.max() / counts.sum() < 0.75)
        return np.mean(ok)

    without, with_rule = share_ok(None), share_ok(0.75)
    assert without < 0.7
    assert with_rule >= 0.9


def test_photometric_changes_colour_only_on_rgb_channels():
    images, masks = _block_pairs(n=6, channels=4)
    ds = data.prepare(
        _dataset(images, masks),
        batch_size=1,
        training=True,
        seed=3,
        scale_range=None,
        flip=False,
        shuffle=False,
        photometric=True,
    )
    changed = 0
    for (x, y), image, mask in zip(ds, images, masks):
        x = x.numpy()[0]
        assert x.shape == image.shape
        np.testing.assert_array_equal(x[..., 3], image[..., 3])  # depth untouched
        np.testing.assert_array_equal(y.numpy()[0], mask)
        assert x.min() >= 0 and x.max() <= 255
        changed += not np.allclose(x[..., :3], image[..., :3], atol=1)
    assert changed >= 3


def test_photometric_brightness_only_shifts_values():
    image = np.full((8, 8, 3), 100, np.uint8)
    mask = np.zeros((8, 8), np.int32)
    ds = data.prepare(
        _dataset([image] * 32, [mask] * 32),
        batch_size=32,
        training=True,
        seed=0,
        scale_range=None,
        flip=False,
        contrast_range=(1, 1),
        saturation_range=(1, 1),
        hue_delta=0,
    )
    x, _ = _collect(ds)
    shifts = x[:, 0, 0, 0] - 100
    assert np.all(np.abs(shifts) <= 32 + 1e-3)
    assert np.sum(np.abs(shifts) < 1e-4) >= 4  # applied with probability 0.5
    assert np.sum(np.abs(shifts) > 1) >= 4


def test_evaluation_native_size_and_padding():
    images, masks = _block_pairs(n=4)
    ds = _dataset(images, masks)
    for (x, y), image, mask in zip(data.prepare(ds, batch_size=1, training=False), images, masks):
        np.testing.assert_array_equal(x.numpy()[0], image.astype(np.float32))
        np.testing.assert_array_equal(y.numpy()[0], mask)
    x, y = next(iter(data.prepare(ds, batch_size=4, training=False)))
    hmax, wmax = max(m.shape[0] for m in masks), max(m.shape[1] for m in masks)
    assert x.shape == (4, hmax, wmax, 3)
    for i, mask in enumerate(masks):
        np.testing.assert_array_equal(y[i, : mask.shape[0], : mask.shape[1]], mask)
        assert np.all(y.numpy()[i, mask.shape[0] :] == 255)
    x, y = next(
        iter(data.prepare(ds, batch_size=2, training=False, crop_size=(64, 64), pad_multiple=32))
    )
    assert x.shape == (2, 64, 64, 3) and y.shape == (2, 64, 64)
    np.testing.assert_array_equal(y.numpy()[0, : masks[0].shape[0], : masks[0].shape[1]], masks[0])


def test_evaluation_fits_large_images_into_crop_size():
    image = np.zeros((80, 160, 3), np.uint8)
    mask = np.zeros((80, 160), np.int32)
    mask[:, 80:] = 1
    x, y = next(
        iter(data.prepare(_dataset([image], [mask]), batch_size=2, training=False, crop_size=40))
    )
    y = y.numpy()[0]
    assert y.shape == (40, 40)
    # Scaled by 1/4 keeping the aspect ratio: 20x40 of labels, the rest padding.
    assert np.all(y[:20, :20] == 0) and np.all(y[:20, 20:] == 1) and np.all(y[20:] == 255)


def test_scalar_labels_pass_through():
    images = [np.full((32, 32, 3), i, np.uint8) for i in range(4)]
    ds = tf.data.Dataset.from_tensor_slices((np.stack(images), np.arange(4, dtype=np.int32)))
    x, y = _collect(
        data.prepare(ds, batch_size=4, crop_size=24, training=True, seed=0, shuffle=False)
    )
    assert x.shape == (4, 24, 24, 3)
    np.testing.assert_array_equal(y, np.arange(4))


def test_bad_arguments():
    images, masks = _block_pairs(n=1)
    ds = _dataset(images, masks)
    with pytest.raises(ValueError, match="crop_size"):
        data.prepare(ds, crop_size=(0, 32))
    with pytest.raises(ValueError, match="cat_max_ratio"):
        data.prepare(ds, crop_size=32, cat_max_ratio=1.5)
    with pytest.raises(ValueError, match="scale_range"):
        data.prepare(ds, scale_range=(2.0, 0.5))
    with pytest.raises(TypeError):
        data.prepare([1, 2, 3])
