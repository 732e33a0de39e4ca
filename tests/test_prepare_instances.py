"""kerasseg.data.prepare on instance targets: fixed-shape padded batches, masks that follow the
image exactly under every augmentation, boxes recomputed from the masks, the checks inside the
pipeline.

Alignment is checked exactly: two channels of each source image hold ramps (row + 1, column + 1),
so every output pixel tells which source coordinate the image was sampled at (bilinear sampling of
a ramp is the coordinate itself, padding reads 0). The mask an output pixel should carry is the
source mask at the nearest pixel, whatever the scale, crop and flip were. With five channels the
ramps sit in channels 3 and 4, which photometric distortion leaves alone, so the check is exact
with every augmentation on."""

import numpy as np
import pytest
import tensorflow as tf

from kerasseg import data
from kerasseg.datasets import pipeline_error_message

SPEC = {
    "boxes": tf.TensorSpec((None, 4), tf.float32),
    "classes": tf.TensorSpec((None,), tf.int32),
    "masks": tf.TensorSpec((None, None, None), tf.uint8),
}


def _dataset(examples, channels=3):
    def gen():
        yield from examples

    spec = (tf.TensorSpec((None, None, channels), tf.uint8), SPEC)
    return tf.data.Dataset.from_generator(gen, output_signature=spec)


def _tight(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return np.zeros(4, np.float32)
    return np.array([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1], np.float32)


def _target(masks, classes=None):
    masks = np.asarray(masks, np.uint8)
    classes = np.arange(len(masks)) if classes is None else classes
    boxes = np.array([_tight(m) for m in masks], np.float32).reshape(-1, 4)
    return {"boxes": boxes, "classes": np.asarray(classes, np.int32), "masks": masks}


def _ramp_image(h, w, channels, rng):
    """uint8 [h,w,channels]: ramps row + 1 and column + 1 in the last two channels; the others
    (photometric's) random colours, or a constant 255 with three channels."""
    image = np.zeros((h, w, channels), np.uint8)
    image[..., -2] = np.arange(1, h + 1)[:, None]
    image[..., -1] = np.arange(1, w + 1)[None, :]
    image[..., : channels - 2] = 255 if channels == 3 else rng.integers(0, 256, (h, w, 3))
    return image


def _examples(n=24, channels=3, seed=0, most=5):
    """Images of 32..64 px with 0..most instances: rectangles with holes, some of them tiny,
    overlapping at times; class k is instance k of its image (so output slots name their source)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = rng.integers(32, 65, 2)
        masks = np.zeros((int(rng.integers(0, most + 1)), h, w), np.uint8)
        for mask in masks:
            mh, mw = rng.integers(1, [h // 2, w // 2]) if i % 4 else rng.integers(1, 4, 2)
            y, x = rng.integers(0, h - mh + 1), rng.integers(0, w - mw + 1)
            mask[y : y + mh, x : x + mw] = rng.random((mh, mw)) < 0.85
            mask[y, x] = 1
        out.append((_ramp_image(h, w, channels, rng), _target(masks)))
    return out


def _collect(ds):
    images, targets = [], {k: [] for k in data.instances.KEYS}
    for x, y in ds:
        images.append(x.numpy())
        for k in targets:
            targets[k].append(y[k].numpy())
    return np.concatenate(images), {k: np.concatenate(v) for k, v in targets.items()}


def _expected_masks(image, source_masks):
    """The source masks read at the coordinates the ramps of output ``image`` name, and where
    that reading is unambiguous (not on a nearest-neighbour tie)."""
    valid = image[..., -2] > 0.5
    cy, cx = image[..., -2] - 0.5, image[..., -1] - 0.5  # source pixel centres + 0.5
    h, w = source_masks.shape[1:]
    rows = np.clip(np.floor(cy).astype(int), 0, h - 1)
    cols = np.clip(np.floor(cx).astype(int), 0, w - 1)
    tie = (np.abs(cy - np.round(cy)) < 1e-3) | (np.abs(cx - np.round(cx)) < 1e-3)
    return source_masks[:, rows, cols] * valid, ~(tie & valid)


def _check_element(image, boxes, classes, masks, source_masks):
    """Every valid slot: its mask is the source instance's mask through the image's geometry, its
    box the mask's tight box; instances missing are empty there; padding slots are all zero."""
    expected, sure = _expected_masks(image, source_masks)
    valid = classes >= 0
    kept = classes[valid]
    assert np.all(np.diff(kept) > 0), "instances keep their order"
    assert np.all(classes[valid.sum() :] == -1), "valid slots come first"
    for j in np.flatnonzero(valid):
        assert masks[j].any(), "a valid slot has a non-empty mask"
        np.testing.assert_array_equal(masks[j][sure], expected[classes[j]][sure])
        np.testing.assert_array_equal(boxes[j], _tight(masks[j]))
    dropped = [k for k in range(len(source_masks)) if k not in kept]
    for k in dropped:
        assert not expected[k][sure].any(), f"instance {k} is visible but was dropped"
    assert np.all(boxes[~valid] == 0) and np.all(masks[~valid] == 0)
    assert set(np.unique(masks)) <= {0, 1}
    return len(dropped)


@pytest.mark.parametrize("channels, photometric", [(3, False), (5, True)])
def test_masks_follow_the_image_under_every_augmentation(channels, photometric):
    examples = _examples(channels=channels)
    stats = {"flipped": 0, "scaled": 0, "dropped": 0, "padded": 0}

    def run(seed, photometric):
        ds = data.prepare(
            _dataset(examples, channels),
            batch_size=4,
            crop_size=(40, 48),
            training=True,
            seed=seed,
            scale_range=(0.5, 2.0),
            photometric=photometric,
            shuffle=False,
            max_instances=6,
        )
        return _collect(ds)

    for seed in (0, 1):
        x, y = run(seed, photometric)
        assert x.shape == (len(examples), 40, 48, channels)
        for i, (_, target) in enumerate(examples):
            image = x[i]
            stats["dropped"] += _check_element(
                image, y["boxes"][i], y["classes"][i], y["masks"][i], target["masks"]
            )
            valid = image[..., -2] > 0.5
            row = image[0, valid[0], -1]
            stats["flipped"] += row.size > 1 and row[0] > row[-1]
            stats["scaled"] += not np.isclose(image[1, 0, -2] - image[0, 0, -2], 1.0)
            stats["padded"] += not valid.all()
    assert min(stats.values()) > 0, stats
    if photometric:  # the same geometry without it: only the colour channels change
        plain, y_plain = run(1, False)
        np.testing.assert_array_equal(x[..., 3:], plain[..., 3:])
        for k in y:
            np.testing.assert_array_equal(y[k], y_plain[k])
        changed = np.abs(x[..., :3] - plain[..., :3]).max(axis=(1, 2, 3)) > 1
        assert changed.mean() > 0.5


def test_output_shapes_dtypes_and_padding():
    examples = _examples(n=5, seed=3)
    for training in (True, False):
        ds = data.prepare(
            _dataset(examples),
            batch_size=2,
            crop_size=(30, 40),
            pad_multiple=16,
            training=training,
            seed=0,
            max_instances=7,
        )
        image, target = ds.element_spec
        assert image.shape.as_list() == [None, 32, 48, 3] and image.dtype == tf.float32
        assert target["boxes"].shape.as_list() == [None, 7, 4]
        assert target["classes"].shape.as_list() == [None, 7]
        assert target["masks"].shape.as_list() == [None, 7, 32, 48]
        assert (target["boxes"].dtype, target["classes"].dtype) == (tf.float32, tf.int32)
        assert target["masks"].dtype == tf.uint8
        x, y = _collect(ds)
        assert x.shape == (5, 32, 48, 3) and 0 <= x.min() and x.max() <= 255
        assert np.all(x[:, 30:] == 0) and np.all(y["masks"][:, :, 30:] == 0)
        empty = y["classes"] == -1
        assert empty.any() and np.all(y["boxes"][empty] == 0) and np.all(y["masks"][empty] == 0)


def test_evaluation_fits_pads_and_keeps_alignment():
    examples = _examples(n=8, seed=4)
    ds = data.prepare(
        _dataset(examples), batch_size=3, crop_size=(32, 40), training=False, max_instances=6
    )
    x, y = _collect(ds)
    assert x.shape == (8, 32, 40, 3)
    for i, (source, target) in enumerate(examples):
        _check_element(x[i], y["boxes"][i], y["classes"][i], y["masks"][i], target["masks"])
        h, w = source.shape[:2]
        factor = min(1.0, 32 / h, 40 / w)
        size = (min(round(h * factor), 32), min(round(w * factor), 40))
        assert (x[i, ..., -2] > 0.5).sum() == size[0] * size[1]  # aspect kept, padded after


def test_evaluation_small_image_is_exact_and_native_batches_pad():
    rng = np.random.default_rng(5)
    masks = np.zeros((2, 20, 30), np.uint8)
    masks[0, 2:9, 3:17] = 1
    masks[1, 11:20, 20:30] = 1
    small = (_ramp_image(20, 30, 3, rng), _target(masks, classes=[4, 1]))
    ds = data.prepare(_dataset([small]), batch_size=1, crop_size=32, training=False)
    x, y = next(iter(ds))
    np.testing.assert_array_equal(x[0, :20, :30].numpy(), small[0])
    np.testing.assert_array_equal(y["masks"][0, :2, :20, :30].numpy(), masks)
    np.testing.assert_array_equal(y["boxes"][0, :2].numpy(), small[1]["boxes"])
    assert y["classes"][0, :3].numpy().tolist() == [4, 1, -1]
    big = (_ramp_image(24, 34, 3, rng), _target(np.ones((1, 24, 34))))
    ds = data.prepare(_dataset([small, big]), batch_size=2, training=False, max_instances=3)
    x, y = next(iter(ds))
    assert x.shape == (2, 24, 34, 3) and y["masks"].shape == (2, 3, 24, 34)
    assert y["classes"].numpy().tolist() == [[4, 1, -1], [0, -1, -1]]
    assert not y["masks"][0, :, 20:].numpy().any() and not y["masks"][0, :, :, 30:].numpy().any()


def test_training_without_crop_scales_and_pads_batches_to_the_largest():
    examples = _examples(n=6, seed=11)
    ds = data.prepare(
        _dataset(examples),
        batch_size=3,
        training=True,
        seed=3,
        shuffle=False,
        photometric=False,
        max_instances=5,
    )
    assert ds.element_spec[1]["masks"].shape.as_list() == [None, 5, None, None]
    i = 0
    for x, y in ds:
        x, y = x.numpy(), {k: v.numpy() for k, v in y.items()}
        assert y["masks"].shape[2:] == x.shape[1:3]
        for j in range(len(x)):
            masks = examples[i][1]["masks"]
            _check_element(x[j], y["boxes"][j], y["classes"][j], y["masks"][j], masks)
            i += 1
    assert i == 6


def test_crop_drops_the_instances_it_cuts_away():
    rng = np.random.default_rng(6)
    masks = np.zeros((3, 64, 64), np.uint8)
    masks[0, :6, :6] = 1
    masks[1, -6:, -6:] = 1
    masks[2, 28:36, 28:36] = 1
    example = (_ramp_image(64, 64, 3, rng), _target(masks))
    ds = data.prepare(
        _dataset([example]).repeat(12),
        batch_size=12,
        crop_size=16,
        training=True,
        seed=2,
        scale_range=None,
        flip=False,
        photometric=False,
    )
    x, y = next(iter(ds))
    x, y = x.numpy(), {k: v.numpy() for k, v in y.items()}
    counts = []
    for i in range(12):
        y0, x0 = int(x[i, 0, 0, 1]) - 1, int(x[i, 0, 0, 2]) - 1  # the crop's offset
        visible = [k for k in range(3) if masks[k, y0 : y0 + 16, x0 : x0 + 16].any()]
        assert y["classes"][i][: len(visible)].tolist() == visible
        assert np.all(y["classes"][i][len(visible) :] == -1)
        _check_element(x[i], y["boxes"][i], y["classes"][i], y["masks"][i], masks)
        counts.append(len(visible))
    assert min(counts) < 3  # some instances were cut away


def test_same_seed_same_batches():
    examples = _examples(n=6, seed=7)

    def run(seed):
        return _collect(data.prepare(_dataset(examples), batch_size=3, crop_size=32, seed=seed))

    (a, ya), (b, yb), (c, _) = run(11), run(11), run(12)
    np.testing.assert_array_equal(a, b)
    for k in ya:
        np.testing.assert_array_equal(ya[k], yb[k])
    assert not np.array_equal(a, c)


def test_max_instances_keeps_the_largest_masks():
    rng = np.random.default_rng(8)
    masks = np.zeros((5, 40, 40), np.uint8)
    for k, side in enumerate([3, 9, 5, 8, 2]):
        masks[k, 8 * k : 8 * k + side, :side] = 1
    example = (_ramp_image(40, 40, 3, rng), _target(masks, classes=[10, 11, 12, 13, 14]))
    ds = data.prepare(_dataset([example]), batch_size=1, training=False, max_instances=3)
    _, y = next(iter(ds))
    assert y["classes"].numpy().tolist() == [[11, 12, 13]]  # the 3 largest, in their order
    np.testing.assert_array_equal(y["masks"][0].numpy(), masks[[1, 2, 3]])


def test_image_without_instances_is_all_padding():
    rng = np.random.default_rng(9)
    empty = (_ramp_image(36, 44, 3, rng), _target(np.zeros((0, 36, 44))))
    for training in (True, False):
        ds = data.prepare(
            _dataset([empty, empty]), batch_size=2, crop_size=32, training=training, seed=0
        )
        x, y = next(iter(ds))
        assert x.shape == (2, 32, 32, 3) and y["masks"].shape == (2, 100, 32, 32)
        assert np.all(y["classes"].numpy() == -1) and not y["boxes"].numpy().any()
        assert not y["masks"].numpy().any()


def test_ragged_tensor_slices():
    masks = np.zeros((3, 32, 32), np.uint8)
    masks[0, 4:10, 4:20] = masks[1, 20:30, 2:5] = masks[2, 12:16, 12:16] = 1
    boxes = np.stack([_tight(m) for m in masks])
    ds = tf.data.Dataset.from_tensor_slices(
        (
            np.zeros((2, 32, 32, 3), np.uint8),
            {
                "boxes": tf.ragged.constant([boxes[:1], boxes[1:]], ragged_rank=1),
                "classes": tf.ragged.constant([[0], [1, 2]]),
                "masks": tf.RaggedTensor.from_row_lengths(masks, [1, 2]),
            },
        )
    )
    _, y = next(iter(data.prepare(ds, batch_size=2, training=False, max_instances=4)))
    assert y["classes"].numpy().tolist() == [[0, -1, -1, -1], [1, 2, -1, -1]]
    np.testing.assert_array_equal(y["boxes"][1, :2].numpy(), boxes[1:])


def _bad(**change):
    masks = np.zeros((2, 32, 32), np.uint8)
    masks[0, 2:8, 2:8] = masks[1, 10:20, 5:9] = 1
    target = _target(masks)
    target.update(change)
    return np.zeros((32, 32, 3), np.uint8), target


BAD = {
    "masks of another size": (
        _bad(masks=np.ones((2, 30, 32), np.uint8)),
        "instance masks are 30x32 but their image is 32x32",
    ),
    "y2 < y1": (
        _bad(boxes=np.array([[2, 2, 8, 8], [20, 5, 10, 9]], np.float32)),
        "instance box 1 is (y1, x1, y2, x2) = (20, 5, 10, 9): y2 < y1 or x2 < x1",
    ),
    "x2 < x1": (
        _bad(boxes=np.array([[2, 8, 8, 2], [10, 5, 20, 9]], np.float32)),
        "instance box 0 is (y1, x1, y2, x2) = (2, 8, 8, 2)",
    ),
    "too few classes": (
        _bad(classes=np.array([1], np.int32)),
        "an instance target has 2 boxes, 1 classes and 2 masks",
    ),
    "too many masks": (
        _bad(masks=np.ones((3, 32, 32), np.uint8)),
        "an instance target has 2 boxes, 2 classes and 3 masks",
    ),
    "negative class": (
        _bad(classes=np.array([0, -3], np.int32)),
        "instance classes must be >= 0 (-1 marks padding); found -3",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_examples_stop_the_pipeline_with_a_clear_message(name):
    example, text = BAD[name]
    ds = data.prepare(_dataset([example]), batch_size=1, crop_size=32, seed=0)
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        next(iter(ds))
    assert text in pipeline_error_message(raised.value)
    with pytest.raises(ValueError, match="instance example 0"):
        data.check_instances(_dataset([example]))


def test_numpy_check_and_arguments():
    examples = _examples(n=4, seed=10)
    assert data.check_instances(_dataset(examples)) == 4
    assert data.check_instances(examples, limit=2) == 2
    with pytest.raises(ValueError, match=r"classes must lie in 0\.\.1; found \[0, 5\]"):
        data.check_instance_example(*_bad(classes=np.array([0, 5], np.int32)), num_classes=2)
    with pytest.raises(ValueError, match="lacks"):
        data.check_instance_example(examples[0][0], {"masks": examples[0][1]["masks"]})
    flat = tf.data.Dataset.from_tensors(
        (np.zeros((8, 8, 3), np.uint8), {**_target(np.zeros((1, 8, 8))), "masks": np.zeros((8, 8))})
    )
    with pytest.raises(ValueError, match="'masks' must have rank 3"):
        data.prepare(flat, batch_size=1)
    good = _dataset(examples)
    with pytest.raises(ValueError, match="cat_max_ratio"):
        data.prepare(good, batch_size=1, crop_size=32, cat_max_ratio=0.75)
    with pytest.raises(ValueError, match="max_instances"):
        data.prepare(good, batch_size=1, max_instances=0)
