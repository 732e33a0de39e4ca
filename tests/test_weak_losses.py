"""The weak-supervision losses: GatedCRFLoss against a direct numpy evaluation of its energy,
its gradients, its preference for labellings that follow image edges; partial cross-entropy and
the packed targets; the mean-field CRF that shares the loss's kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasseg import losses, metrics, weak


def numpy_energy(image, probs, radius, factor, sigma_xy, sigma_rgb, wb, ws):
    """sum over pixels i and window neighbours j != i of k_ij (1 - p_i . p_j), / pixels, / Z
    (the spatial kernel summed over a full window)."""
    n, h, w, c = image.shape
    k = probs.shape[-1]
    img = image.reshape(n, h // factor, factor, w // factor, factor, c).mean((2, 4))
    p = probs.reshape(n, h // factor, factor, w // factor, factor, k).mean((2, 4))
    sxy = sigma_xy / factor
    hs, ws_ = img.shape[1:3]
    total = 0.0
    z = sum(
        np.exp(-(dy * dy + dx * dx) / (2 * sxy**2))
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if (dy, dx) != (0, 0)
    )
    for b in range(n):
        for y in range(hs):
            for x in range(ws_):
                for dy in range(-radius, radius + 1):
                    for dx in range(-radius, radius + 1):
                        yy, xx = y + dy, x + dx
                        if (dy, dx) == (0, 0) or not (0 <= yy < hs and 0 <= xx < ws_):
                            continue
                        d2 = dy * dy + dx * dx
                        c2 = np.sum((img[b, y, x] - img[b, yy, xx]) ** 2)
                        kern = (wb * np.exp(-c2 / (2 * sigma_rgb**2)) + ws) * np.exp(
                            -d2 / (2 * sxy**2)
                        )
                        total += kern * (1.0 - np.dot(p[b, y, x], p[b, yy, xx]))
    return total / (n * hs * ws_) / z


@pytest.fixture(scope="module")
def small_case():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (2, 8, 12, 3)).astype(np.float32)
    logits = rng.normal(size=(2, 8, 12, 3)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, 3, (2, 8, 12)).astype(np.float32)
    labels[:, ::2] = 255
    return image, logits, probs, labels


@pytest.mark.parametrize("downsample", [1, 2])
def test_gated_crf_loss_equals_its_energy_evaluated_directly(small_case, downsample):
    image, _, probs, labels = small_case
    options = dict(
        radius=2,
        downsample=downsample,
        sigma_xy=3.0,
        sigma_rgb=40.0,
        bilateral_weight=0.8,
        spatial_weight=0.2,
    )
    loss = losses.GatedCRFLoss(**options)
    _, packed = weak.pack(image, labels)
    value = float(loss(packed, probs))
    expected = numpy_energy(image, probs, 2, downsample, 3.0, 40.0, 0.8, 0.2)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_gated_crf_gradients_are_finite_and_flow_to_the_logits(small_case):
    image, logits, _, labels = small_case
    _, packed = weak.pack(image, labels)
    loss = losses.PartialCrossEntropy(from_logits=True) + 0.1 * losses.GatedCRFLoss(
        from_logits=True, radius=3
    )
    x = tf.Variable(logits)
    with tf.GradientTape() as tape:
        value = loss(packed, x)
    grad = tape.gradient(value, x).numpy()
    assert np.isfinite(float(value)) and np.all(np.isfinite(grad))
    assert np.abs(grad).sum() > 0
    # the unlabelled rows get a gradient only from the CRF term
    crf_only = 0.1 * losses.GatedCRFLoss(from_logits=True, radius=3)
    with tf.GradientTape() as tape:
        value = crf_only(packed, x)
    assert np.abs(tape.gradient(value, x).numpy()[:, ::2]).sum() > 0


def test_a_labelling_along_an_edge_costs_less_than_one_across_it():
    image = np.zeros((1, 16, 16, 3), np.float32)
    image[:, :, 8:] = 255.0  # black left half, white right half
    along = np.zeros((1, 16, 16, 2), np.float32)
    along[:, :, :8, 0] = 1.0
    along[:, :, 8:, 1] = 1.0
    across = np.transpose(along, (0, 2, 1, 3))  # the same cut, top/bottom
    _, packed = weak.pack(image, np.zeros((1, 16, 16), np.float32))
    loss = losses.GatedCRFLoss()
    e_along, e_across = float(loss(packed, along)), float(loss(packed, across))
    assert e_along < e_across
    # the same pairs are cut; along the edge each weighs only its spatial kernel (0.1)
    np.testing.assert_allclose(
        e_along, numpy_energy(image, along, 5, 2, 6.0, 15.0, 0.9, 0.1), rtol=1e-5
    )
    np.testing.assert_allclose(
        e_along, 0.1 * numpy_energy(image, along, 5, 2, 6.0, 15.0, 0.0, 1.0), rtol=1e-5
    )
    assert e_along < 0.2 * e_across
    uniform = np.zeros_like(along)
    uniform[..., 0] = 1.0
    assert float(loss(packed, uniform)) == 0.0  # one label everywhere: no pair disagrees


def test_partial_cross_entropy_reads_packed_targets(small_case):
    image, _, probs, labels = small_case
    _, packed = weak.pack(image, labels)
    plain = float(losses.CrossEntropy()(labels, probs))
    assert float(losses.PartialCrossEntropy()(packed, probs)) == pytest.approx(plain, rel=1e-6)
    assert float(losses.PartialCrossEntropy()(labels, probs)) == pytest.approx(plain, rel=1e-6)
    iou, packed_iou = metrics.MeanIoU(3), weak.PackedMeanIoU(3)
    iou.update_state(labels, probs)
    packed_iou.update_state(packed, probs)
    assert float(packed_iou.result()) == pytest.approx(float(iou.result()))


def test_weak_losses_serialize_and_name_the_missing_image(small_case):
    image, _, probs, labels = small_case
    _, packed = weak.pack(image, labels)
    loss = losses.PartialCrossEntropy() + 0.1 * losses.GatedCRFLoss(radius=3, downsample=2)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert float(again(packed, probs)) == pytest.approx(float(loss(packed, probs)), rel=1e-6)
    assert again.losses[1].radius == 3 and again.weights == [1.0, 0.1]
    with pytest.raises(ValueError, match="GatedCRFLoss needs the image.*pack_image"):
        losses.GatedCRFLoss()(labels, probs)
    with pytest.raises(ValueError, match="radius and downsample must be >= 1"):
        losses.GatedCRFLoss(radius=0)


def test_mean_field_crf_snaps_labels_to_the_image():
    image = np.zeros((1, 16, 16, 3), np.float32)
    image[:, :, 8:] = 255.0
    probs = np.zeros((1, 16, 16, 2), np.float32)
    probs[:, :, :8] = [0.9, 0.1]
    probs[:, :, 8:] = [0.1, 0.9]
    probs[0, 5, 3] = [0.4, 0.6]  # a weakly wrong pixel inside the black half
    probs[0, 10, 12] = [0.55, 0.45]  # and one inside the white half
    refined = weak.crf(image, probs).numpy()
    np.testing.assert_allclose(refined.sum(-1), 1.0, rtol=1e-5)
    labels = refined.argmax(-1)[0]
    np.testing.assert_array_equal(labels, np.repeat([[0] * 8 + [1] * 8], 16, 0))
    # with no pairwise weight the CRF returns its input
    np.testing.assert_allclose(weak.crf(image, probs, weight=0.0).numpy(), probs, atol=1e-6)
    one = weak.crf(image[0], probs[0], downsample=2).numpy()
    assert one.shape == (16, 16, 2) and np.allclose(one.sum(-1), 1.0, atol=1e-5)
