"""ROIAlign against a NumPy transcription of its definition, and the box ops on hand cases."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kerasseg.ops import boxes as B
from kerasseg.ops.roi_align import fpn_levels, multilevel_roi_align, roi_align


def _bilinear(fmap, y, x):
    """torchvision's bilinear_interpolate (roi_align_kernel.cpp), one point of one map."""
    height, width = fmap.shape[:2]
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros(fmap.shape[2:])
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (
        hy * hx * fmap[y_low, x_low]
        + hy * lx * fmap[y_low, x_high]
        + ly * hx * fmap[y_high, x_low]
        + ly * lx * fmap[y_high, x_high]
    )


def _roi_align_numpy(fmap, box, size, scale, ratio):
    y1, x1, y2, x2 = (v * scale - 0.5 for v in box)
    bin_h, bin_w = (y2 - y1) / size, (x2 - x1) / size
    out = np.zeros((size, size) + fmap.shape[2:])
    for i in range(size):
        for j in range(size):
            acc = 0.0
            for a in range(ratio):
                for b in range(ratio):
                    y = y1 + i * bin_h + (a + 0.5) * bin_h / ratio
                    x = x1 + j * bin_w + (b + 0.5) * bin_w / ratio
                    acc = acc + _bilinear(fmap, y, x)
            out[i, j] = acc / (ratio * ratio)
    return out


def test_roi_align_hand_example():
    # f(y, x) = x on a 4x4 map: bilinear sampling is exact on a linear map, so each bin reads
    # the mean of its sample columns. Box = the whole map: aligned samples at x = 0, 1, 2, 3.
    fmap = np.tile(np.arange(4, dtype=np.float32), (4, 1))[None, :, :, None]
    out = roi_align(tf.constant(fmap), tf.constant([[0.0, 0.0, 4.0, 4.0]]), [0], 2)
    np.testing.assert_allclose(out.numpy()[0, :, :, 0], [[0.5, 2.5], [0.5, 2.5]], atol=1e-6)


def test_roi_align_gives_torchvisions_values():
    # torchvision 0.29.1: roi_align(arange(25).reshape(1, 1, 5, 5), [boxes (x1, y1, x2, y2)],
    # 2, 1.0, sampling_ratio=2, aligned=True) for the same three boxes, printed to 6 digits.
    fmap = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    boxes = [[1.0, 0.5, 4.5, 3.0], [-1.0, -2.0, 3.0, 2.0], [3.4, 3.2, 3.9, 3.6]]  # y1, x1, ...
    torchvision = [
        [[7.5, 8.75], [16.25, 17.5]],
        [[0.0, 0.5], [3.75, 8.0]],
        [[17.925, 18.125], [19.175, 19.375]],
    ]
    out = roi_align(tf.constant(fmap), tf.constant(boxes), [0, 0, 0], 2).numpy()[..., 0]
    np.testing.assert_allclose(out, torchvision, atol=1e-5)


def test_roi_align_matches_numpy_definition():
    rng = np.random.default_rng(0)
    fmap = rng.normal(size=(2, 9, 11, 3)).astype(np.float32)
    boxes = np.array(
        [
            [1.0, 2.0, 7.5, 9.0],  # inside
            [-4.0, -3.0, 5.0, 6.0],  # partly outside, top-left
            [6.0, 8.0, 14.0, 15.0],  # partly outside, bottom-right
            [3.2, 4.1, 3.7, 4.4],  # sub-pixel
            [-6.0, -6.0, -2.5, -2.5],  # entirely outside: zeros
            [0.0, 0.0, 18.0, 22.0],  # the whole image at scale 0.5
        ],
        np.float32,
    )
    indices = np.array([0, 1, 0, 1, 0, 1])
    for scale in (1.0, 0.5):
        got = roi_align(tf.constant(fmap), tf.constant(boxes), indices, 5, scale=scale).numpy()
        for r, (box, b) in enumerate(zip(boxes, indices)):
            want = _roi_align_numpy(fmap[b], box, 5, scale, 2)
            np.testing.assert_allclose(got[r], want, atol=1e-5, err_msg=f"box {r} scale {scale}")


def test_multilevel_reads_each_box_from_its_level():
    rng = np.random.default_rng(1)
    maps = [rng.normal(size=(2, 32 // s, 32 // s, 4)).astype(np.float32) for s in (4, 8, 16, 32)]
    boxes = np.array(
        [[0, 0, 20, 20], [2, 3, 150, 120], [5, 5, 30, 60], [0, 0, 500, 500]], np.float32
    )
    levels = fpn_levels(tf.constant(boxes)).numpy()
    indices = np.array([0, 1, 1, 0])
    got = multilevel_roi_align(
        [tf.constant(m) for m in maps],
        boxes,
        indices,
        7,
        [1 / 4, 1 / 8, 1 / 16, 1 / 32],
        levels=tf.constant(levels - 2),
    ).numpy()
    for r in range(len(boxes)):
        level = levels[r]
        want = _roi_align_numpy(maps[level - 2][indices[r]], boxes[r], 7, 2.0**-level, 2)
        np.testing.assert_allclose(got[r], want, atol=1e-5)


def test_fpn_levels_follow_the_paper():
    def level(side):
        return int(fpn_levels(tf.constant([[0.0, 0.0, side, side]])).numpy()[0])

    assert [level(s) for s in (10, 111, 112, 223, 224, 447, 448, 2000)] == [2, 2, 3, 3, 4, 4, 5, 5]


def test_roi_align_gradient_flows_to_sampled_pixels():
    fmap = tf.Variable(tf.zeros([1, 6, 6, 1]))
    with tf.GradientTape() as tape:
        out = roi_align(fmap, tf.constant([[1.0, 1.0, 3.0, 3.0]]), [0], 2)
        loss = tf.reduce_sum(out)
    grad = tape.gradient(loss, fmap).numpy()[0, :, :, 0]
    assert grad.sum() == pytest.approx(4.0)  # each of the 4 outputs is a mean: weights sum to 1
    assert grad[4:, :].sum() == 0 and grad[:, 4:].sum() == 0


def test_anchors_layout_and_sizes():
    anchors = B.anchors_for_level(2, 3, stride=16, size=32).numpy()
    assert anchors.shape == (2 * 3 * 3, 4)
    # location (1, 2): centre (16, 32); ratio 1 anchor is 32 x 32.
    square = anchors[(1 * 3 + 2) * 3 + 1]
    np.testing.assert_allclose(square, [0.0, 16.0, 32.0, 48.0])
    heights = anchors[:3, 2] - anchors[:3, 0]
    widths = anchors[:3, 3] - anchors[:3, 1]
    np.testing.assert_allclose(heights / widths, [0.5, 1.0, 2.0], rtol=0.05)
    np.testing.assert_allclose(heights * widths, 32.0**2, rtol=0.05)


def test_encode_decode_round_trip_and_hand_values():
    refs = tf.constant([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 15.0, 9.0]])
    boxes = tf.constant([[1.0, 2.0, 11.0, 22.0], [4.0, 3.0, 20.0, 12.0]])
    for weights in (B.BOX_WEIGHTS, B.RPN_WEIGHTS):
        deltas = B.encode_boxes(boxes, refs, weights)
        np.testing.assert_allclose(B.decode_boxes(deltas, refs, weights), boxes, atol=1e-4)
    deltas = B.encode_boxes(boxes, refs, B.BOX_WEIGHTS).numpy()
    # first box: centre moves (1, 2) on a 10 x 20 reference, size 10 x 20 -> 10 x 20.
    np.testing.assert_allclose(deltas[0], [10 * 0.1, 10 * 0.1, 0.0, 0.0], atol=1e-5)


def test_decode_clamps_huge_scales():
    out = B.decode_boxes(tf.constant([[0.0, 0.0, 100.0, 100.0]]), tf.constant([[0.0, 0.0, 2, 2]]))
    assert np.isfinite(out.numpy()).all()
    assert out.numpy()[0, 2] - out.numpy()[0, 0] == pytest.approx(2 * math.exp(B.MAX_LOG_SCALE))


def test_iou_matrix_hand_values():
    a = tf.constant([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    b = tf.constant([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0]])
    np.testing.assert_allclose(B.iou_matrix(a, b).numpy(), [[1 / 7, 1.0], [0.0, 0.0]], atol=1e-6)


def test_match_anchors_thresholds_and_best_anchor():
    anchors = tf.constant(
        [[0, 0, 10, 10], [0, 0, 10, 8], [0, 0, 10, 5], [50, 50, 60, 60], [0, 0, 10, 6.5]],
        tf.float32,
    )
    gt = tf.constant([[[0, 0, 10, 10], [100, 100, 120, 120], [0, 0, 0, 0]]], tf.float32)
    valid = tf.constant([[True, True, False]])
    labels, matched = B.match_anchors(anchors, gt, valid)
    # IoUs with gt 0: 1, 0.8, 0.5, 0, 0.65 -> pos, pos, neither, neg, neither; gt 1 overlaps
    # nothing, so it gets no forced positive (IoU 0 everywhere).
    assert labels.numpy().tolist() == [[1, 1, -1, 0, -1]]
    assert matched.numpy()[0, :2].tolist() == [0, 0]
    # a ground truth whose best IoU is low still gets its best anchor as positive; a batch of
    # two images is matched image by image; an image without ground truth is all negative.
    gt = tf.constant([[[0, 0, 10, 4.0]], [[0, 0, 0, 0]]])
    labels, matched = B.match_anchors(anchors, gt, tf.constant([[True], [False]]))
    assert labels.numpy()[0, 2] == 1 and matched.numpy()[0, 2] == 0
    assert labels.numpy()[1].tolist() == [0] * 5


def test_match_proposals():
    proposals = tf.constant([[[0, 0, 10, 10], [0, 0, 10, 4], [20, 20, 30, 30]]], tf.float32)
    gt = tf.constant([[[0, 0, 10, 5], [20, 20, 30, 31]]], tf.float32)
    foreground, matched = B.match_proposals(proposals, gt, tf.constant([[True, True]]))
    assert foreground.numpy().tolist() == [[True, True, True]]
    assert matched.numpy().tolist() == [[0, 0, 1]]
    foreground, _ = B.match_proposals(proposals, gt, tf.constant([[True, False]]))
    assert foreground.numpy().tolist() == [[True, True, False]]


def test_sampling_is_balanced_and_fixed_size():
    positive = tf.constant([[True] * 10 + [False] * 90])
    negative = tf.logical_not(positive)
    idx, valid, is_pos = B.sample_indices(positive, negative, 16, 0.25, tf.constant([1, 2]))
    idx, valid = idx.numpy()[0], valid.numpy()[0]
    assert idx.shape == (16,) and valid.all()
    assert is_pos.numpy()[0].tolist() == [True] * 4 + [False] * 12
    assert (idx[:4] < 10).all() and (idx[4:] >= 10).all() and len(set(idx)) == 16
    # too few candidates: fewer positives, more negatives; too few of both: invalid tail.
    positive = tf.constant([[True] + [False] * 9])
    negative = tf.constant([[False] * 5 + [True] * 5])
    idx, valid, is_pos = B.sample_indices(positive, negative, 8, 0.5, tf.constant([3, 4]))
    idx, valid = idx.numpy()[0], valid.numpy()[0]
    assert valid.tolist() == [True] * 6 + [False] * 2
    assert is_pos.numpy()[0].tolist() == [True] + [False] * 7
    assert idx[0] == 0 and sorted(idx[1:6]) == [5, 6, 7, 8, 9]
