"""Batch-norm momentum: every batch norm of every model runs at ``bn_momentum`` (0.9 unless
asked otherwise), keras.applications' included, and keeps it through ``.keras``; a model
trained from scratch for 150 steps predicts in inference mode as it does in training mode.
"""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasseg
from kerasseg import losses, metrics
from kerasseg.models import BN_MOMENTUM


def _batch_norms(model):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer
        elif isinstance(layer, keras.Model):
            yield from _batch_norms(layer)


def test_every_builder_takes_bn_momentum_with_the_segmentation_default():
    assert BN_MOMENTUM == 0.9
    for name in kerasseg.list_models():
        params = inspect.signature(kerasseg.MODELS[name]).parameters
        assert params["bn_momentum"].default == 0.9, name
        assert params["bn_momentum"].kind is inspect.Parameter.KEYWORD_ONLY, name


@pytest.mark.parametrize(
    "arch,options",
    [
        ("unet", dict(backbone="mobilenetv2")),  # keras.applications' 0.999 batch norms
        ("deeplabv3plus", dict(backbone="resnet50")),  # kerasseg's and keras.applications' own
        ("fc_densenet56", dict()),
    ],
)
def test_every_batch_norm_gets_the_momentum(arch, options):
    model = kerasseg.build(arch, 3, weights=None, **options)
    norms = list(_batch_norms(model))
    assert len(norms) > 10
    assert {bn.momentum for bn in norms} == {0.9}
    other = kerasseg.build(arch, 3, weights=None, bn_momentum=0.75, **options)
    assert {bn.momentum for bn in _batch_norms(other)} == {0.75}


def test_momentum_survives_the_keras_file(tmp_path):
    model = kerasseg.unet(2, backbone="mobilenetv2", weights=None, bn_momentum=0.5)
    path = str(tmp_path / "m.keras")
    model.save(path)
    norms = list(_batch_norms(keras.models.load_model(path)))
    assert len(norms) == len(list(_batch_norms(model)))
    assert {bn.momentum for bn in norms} == {0.5}
    assert {bn.get_config()["momentum"] for bn in norms} == {0.5}


def test_the_momentum_is_what_training_uses():
    model = kerasseg.unet(2, backbone=None, weights=None, filters=4, depth=2, bn_momentum=0.25)
    bn = next(_batch_norms(model))
    first_conv = keras.Model(model.inputs, model.get_layer("enc1_1_conv").output)
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    batch_mean = first_conv(x).numpy().mean(axis=(0, 1, 2))
    before = bn.moving_mean.numpy().copy()
    model(x, training=True)
    np.testing.assert_allclose(
        bn.moving_mean.numpy(), 0.25 * before + 0.75 * batch_mean, rtol=1e-4, atol=1e-4
    )


def test_bad_momentum_is_a_value_error():
    with pytest.raises(ValueError, match="bn_momentum"):
        kerasseg.unet(2, backbone=None, weights=None, filters=4, depth=2, bn_momentum=1.0)


def _rectangles(n, seed, size=64):
    """Images with a red and a blue rectangle on grey noise; labels 0 (background), 1, 2."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 120, (n, size, size, 3)).astype("uint8")
    labels = np.zeros((n, size, size), "int32")
    for i in range(n):
        for cls, colour in ((1, (220, 40, 40)), (2, (40, 60, 220))):
            y, x = rng.integers(0, size - 16, 2)
            h, w = rng.integers(10, 28, 2)
            images[i, y : y + h, x : x + w] = colour
            labels[i, y : y + h, x : x + w] = cls
    return images, labels


def _miou(model, images, labels, training):
    metric = metrics.MeanIoU(3)
    for start in range(0, len(images), 8):
        metric.update_state(
            labels[start : start + 8],
            model(images[start : start + 8].astype("float32"), training=training),
        )
    return float(metric.result())


def test_from_scratch_model_predicts_in_inference_mode_as_in_training_mode():
    """keras.applications' MobileNetV2 batch norms (0.999) left at their initial statistics
    after 150 steps (batch 4) made such a model predict background everywhere in inference
    mode (mIoU 0.12 against 0.98 in training mode; at 0.9, 0.988 and 0.983)."""
    keras.utils.set_random_seed(0)
    images, labels = _rectangles(400, seed=0)
    train = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(400, seed=0)
    train = train.repeat().batch(4)
    model = kerasseg.unet(3, backbone="mobilenetv2", weights=None)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=losses.CrossEntropy())
    model.optimizer.build(model.trainable_variables)  # one trace of the step, not two
    model.fit(train, epochs=1, steps_per_epoch=150, verbose=0)
    val_images, val_labels = _rectangles(32, seed=1)
    # Inference mode first: a training-mode call moves the moving statistics.
    inference = _miou(model, val_images, val_labels, training=False)
    training = _miou(model, val_images, val_labels, training=True)
    assert inference >= 0.7, (inference, training)
    assert abs(inference - training) <= 0.05, (inference, training)
