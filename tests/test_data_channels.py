"""kerasseg.data.prepare on 1-, 2-, 3- and 4-channel images with every augmentation on."""

import numpy as np
import pytest
import tensorflow as tf

from kerasseg import data

ALL_ON = dict(
    crop_size=(40, 48),
    scale_range=(0.5, 2.0),
    flip=True,
    photometric=True,
    cat_max_ratio=0.9,
    training=True,
)


def _blocky(n=8, h=48, w=64, block=8, classes=4, channels=1, seed=0):
    """Blocky masks and images of smooth patterns (callers write (class + 1) * 40 into a channel
    to read the mask back from the augmented image)."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(n):
        hh, ww = h + 8 * (i % 2), w - 8 * (i % 3)
        grid = rng.integers(0, classes, (hh // block + 1, ww // block + 1))
        mask = np.kron(grid, np.ones((block, block), np.int64))[:hh, :ww].astype(np.int32)
        image = np.zeros((hh, ww, channels), np.uint8)
        for c in range(channels):
            image[..., c] = (np.add.outer(np.arange(hh) * (c + 1), np.arange(ww) * 2) % 200) + 20
        images.append(image)
        masks.append(mask)
    return images, masks


def _from_generator(images, masks, channels):
    def gen():
        yield from zip(images, masks)

    spec = (tf.TensorSpec((None, None, channels), tf.uint8), tf.TensorSpec((None, None), tf.int32))
    return tf.data.Dataset.from_generator(gen, output_signature=spec)


def _collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def _interior(mask):
    """Labelled pixels whose 3x3 neighbourhood holds one value (away from class borders and from
    the crop's edges, where bilinear sampling may reach past the crop)."""
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)), constant_values=-1)
    same = np.ones(mask.shape, bool)
    for dy in range(3):
        for dx in range(3):
            same &= padded[:, dy : dy + mask.shape[1], dx : dx + mask.shape[2]] == mask
    return same & (mask != 255)


def _is_monotone_function(before, after):
    """True when `after` is a non-decreasing function of `before` pixel by pixel: equal inputs give
    equal outputs and larger inputs never give smaller outputs."""
    b, a = before.ravel(), after.ravel()
    order = np.lexsort((a, b))
    b, a = b[order], a[order]
    same_input = b[1:] == b[:-1]
    return bool(np.all(a[1:][same_input] == a[:-1][same_input]) and np.all(np.diff(a) >= 0))


def _grey_with_mask_code(n=8):
    images, masks = _blocky(n=n, channels=1)
    for image, mask in zip(images, masks):
        image[..., 0] = (mask + 1) * 40
    return images, masks


@pytest.mark.parametrize("source", ["tensor_slices_rank2", "tensor_slices", "generator"])
def test_grayscale_every_augmentation(source):
    images, masks = _grey_with_mask_code()
    if source == "generator":
        ds = _from_generator(images, masks, 1)
    else:
        size = (48, 48)  # from_tensor_slices needs one size
        stack = np.stack([im[: size[0], : size[1]] for im in images])
        masks = [m[: size[0], : size[1]] for m in masks]
        if source == "tensor_slices_rank2":
            stack = stack[..., 0]  # (N, H, W) grey without a channel axis
        ds = tf.data.Dataset.from_tensor_slices((stack, np.stack(masks)))
    on = data.prepare(ds, batch_size=4, seed=3, **ALL_ON)
    assert on.element_spec[0].shape.as_list() == [None, 40, 48, 1]
    x_on, y_on = _collect(on)
    assert x_on.shape == (8, 40, 48, 1) and x_on.dtype == np.float32
    assert y_on.shape == (8, 40, 48) and y_on.dtype == np.int32
    assert x_on.min() >= 0.0 and x_on.max() <= 255.0
    assert set(np.unique(y_on)) <= {0, 1, 2, 3, 255}

    options = dict(ALL_ON, photometric=False)
    x_off, y_off = _collect(data.prepare(ds, batch_size=4, seed=3, **options))
    # The same seed draws the same geometry with photometric on or off.
    np.testing.assert_array_equal(y_on, y_off)
    # Labels aligned with the (un-distorted) image: the mask is read back from the grey values.
    interior = _interior(y_off)
    assert interior.sum() > 2000
    np.testing.assert_array_equal(
        np.round(x_off[..., 0] / 40.0).astype(np.int32)[interior] - 1, y_off[interior]
    )
    assert np.all(x_off[y_off == 255] == 0)  # padding
    # Brightness and contrast only: per image a non-decreasing map of the grey values.
    for a, b in zip(x_on, x_off):
        assert _is_monotone_function(b, a)
    assert any(not np.array_equal(a, b) for a, b in zip(x_on, x_off))


def test_rgbd_depth_untouched_and_labels_aligned():
    images, masks = _blocky(n=8, channels=4)
    for image, mask in zip(images, masks):
        image[..., 3] = (mask + 1) * 40  # depth carries the mask code
    ds = _from_generator(images, masks, 4)

    # Photometric alone (no geometry): depth is the input's, bit for bit.
    plain = dict(training=True, scale_range=None, flip=False, shuffle=False, photometric=True)
    rgb_changed = 0
    for (x, y), image, mask in zip(data.prepare(ds, batch_size=1, seed=5, **plain), images, masks):
        x, y = x.numpy()[0], y.numpy()[0]
        assert x.shape == image.shape and x.dtype == np.float32
        np.testing.assert_array_equal(x[..., 3], image[..., 3].astype(np.float32))
        np.testing.assert_array_equal(y, mask)
        rgb_changed += not np.array_equal(x[..., :3], image[..., :3].astype(np.float32))
    assert rgb_changed > 0

    # Photometric on / off, same seed, flip and scale off: channel 4 identical.
    no_geometry = dict(training=True, crop_size=(40, 48), scale_range=None, flip=False)
    x_on, y_on = _collect(data.prepare(ds, batch_size=4, seed=9, photometric=True, **no_geometry))
    x_off, y_off = _collect(
        data.prepare(ds, batch_size=4, seed=9, photometric=False, **no_geometry)
    )
    np.testing.assert_array_equal(x_on[..., 3], x_off[..., 3])
    np.testing.assert_array_equal(y_on, y_off)
    assert not np.array_equal(x_on[..., :3], x_off[..., :3])

    # Every augmentation on: still channel 4 identical to photometric off, and the labels match
    # the mask read back from the depth channel.
    on = data.prepare(ds, batch_size=4, seed=11, **ALL_ON)
    assert on.element_spec[0].shape.as_list() == [None, 40, 48, 4]
    x_on, y_on = _collect(on)
    off = dict(ALL_ON, photometric=False)
    x_off, y_off = _collect(data.prepare(ds, batch_size=4, seed=11, **off))
    assert x_on.shape == (8, 40, 48, 4) and x_on.dtype == np.float32 and y_on.dtype == np.int32
    np.testing.assert_array_equal(x_on[..., 3], x_off[..., 3])
    np.testing.assert_array_equal(y_on, y_off)
    assert x_on.min() >= 0.0 and x_on.max() <= 255.0
    interior = _interior(y_on)
    assert interior.sum() > 2000
    decoded = np.round(x_on[..., 3] / 40.0).astype(np.int32) - 1
    np.testing.assert_array_equal(decoded[interior], y_on[interior])


def test_rgb_still_gets_colour_distortion():
    # Only saturation on (x0.2, drawn with probability 0.5): the value (R, the largest channel)
    # stays and the smallest channel moves towards it, so R - B drops from 170 to about 34.
    image = np.zeros((16, 16, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 200, 60, 30
    mask = np.zeros((16, 16), np.int32)
    ds = _from_generator([image] * 16, [mask] * 16, 3)
    x, _ = _collect(
        data.prepare(
            ds,
            batch_size=16,
            seed=0,
            scale_range=None,
            flip=False,
            brightness_delta=0.0,
            contrast_range=(1, 1),
            saturation_range=(0.2, 0.2),
            hue_delta=0.0,
        )
    )
    np.testing.assert_allclose(x[:, 0, 0, 0], 200.0, atol=1e-3)
    spread = x[:, 0, 0, 0] - x[:, 0, 0, 2]
    untouched = np.abs(spread - 170) < 1e-3
    desaturated = np.abs(spread - 34) < 1.0
    assert np.all(untouched | desaturated) and untouched.any() and desaturated.any()


def test_two_channels_distort_channel_zero_only_by_default():
    images, masks = _blocky(n=8, channels=2)
    ds = _from_generator(images, masks, 2)
    plain = dict(training=True, scale_range=None, flip=False, shuffle=False, batch_size=1)
    changed = 0
    for (x, _), image in zip(data.prepare(ds, seed=1, **plain), images):
        x = x.numpy()[0]
        assert x.shape == image.shape
        np.testing.assert_array_equal(x[..., 1], image[..., 1].astype(np.float32))
        assert _is_monotone_function(image[..., 0], x[..., 0])
        changed += not np.array_equal(x[..., 0], image[..., 0].astype(np.float32))
    assert changed > 0
    # photometric_channels=2: one brightness shift and contrast factor for both channels.
    changed = 0
    for (x, _), image in zip(data.prepare(ds, seed=1, photometric_channels=2, **plain), images):
        x = x.numpy()[0]
        assert _is_monotone_function(image.astype(np.float32), x)
        changed += not np.array_equal(x[..., 1], image[..., 1].astype(np.float32))
    assert changed > 0


def test_channel_count_known_only_at_run_time():
    images, masks = _grey_with_mask_code(n=4)

    def gen():
        yield from zip(images, masks)

    spec = (tf.TensorSpec((None, None, None), tf.uint8), tf.TensorSpec((None, None), tf.int32))
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
    x, y = _collect(data.prepare(ds, batch_size=2, seed=0, **ALL_ON))
    assert x.shape == (4, 40, 48, 1) and y.shape == (4, 40, 48)
    off = dict(ALL_ON, photometric=False)
    x_off, y_off = _collect(data.prepare(ds, batch_size=2, seed=0, **off))
    np.testing.assert_array_equal(y, y_off)
    for a, b in zip(x, x_off):
        assert _is_monotone_function(b, a)


def test_photometric_channels_checked():
    images, masks = _blocky(n=1, channels=1)
    ds = _from_generator(images, masks, 1)
    with pytest.raises(ValueError, match="photometric_channels"):
        data.prepare(ds, photometric_channels=3)
    with pytest.raises(ValueError, match="photometric_channels"):
        data.prepare(ds, photometric_channels=0)
