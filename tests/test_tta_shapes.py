"""Test-time augmentation on a model trained on `shapes`: flips and scales must not hurt."""
import keras
import numpy as np
import pytest

import kerasseg
from kerasseg import data, datasets, inference, losses

NUM_CLASSES = 4


def _miou(pairs, predictions):
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES))
    for (_, mask), pred in zip(pairs, predictions):
        valid = mask != 255
        np.add.at(cm, (mask[valid], pred[valid]), 1)
    tp = np.diag(cm)
    with np.errstate(invalid="ignore"):
        return np.nanmean(tp / (cm.sum(0) + cm.sum(1) - tp))


@pytest.mark.slow
def test_tta_improves_or_equals_miou_on_shapes():
    keras.utils.set_random_seed(0)
    train = datasets.load("shapes", split="train", seed=0, num_images=400)
    val = list(datasets.load("shapes", split="val", seed=0, num_images=30).as_numpy_iterator())
    model = kerasseg.unet(NUM_CLASSES, backbone=None, filters=16, depth=4)
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=losses.CrossEntropy() + losses.DiceLoss())
    batches = data.prepare(train, batch_size=8, crop_size=(64, 64), training=True, seed=0)
    model.fit(batches.repeat(), steps_per_epoch=400, epochs=1, verbose=0)

    images = [image for image, _ in val]
    plain = _miou(val, inference.predict(model, images, multiple=16))
    flipped = _miou(val, inference.predict(model, images, multiple=16, flip=True))
    multi = _miou(val, inference.predict(model, images, multiple=16, flip=True,
                                         scales=(0.75, 1.0, 1.25)))
    assert plain > 0.25  # the model learned something: TTA on noise would prove nothing
    assert flipped >= plain
    assert multi >= plain
