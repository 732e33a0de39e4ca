"""`.keras` files written before the layered package (commit e126d8d, tests/fixtures/
make_legacy.py) still load with plain keras.models.load_model and compute what they did."""

import os

import keras
import numpy as np
import pytest

import kerasseg  # noqa: F401  (registers kerasseg's classes)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


@pytest.fixture(scope="module")
def expected():
    return np.load(os.path.join(FIXTURES, "legacy_expected.npz"))


@pytest.mark.parametrize("name", ["legacy_unet", "legacy_layers"])
def test_legacy_file_loads_and_predicts_as_before(name, expected):
    model = keras.models.load_model(os.path.join(FIXTURES, f"{name}.keras"))
    out = model.predict(expected["images"], verbose=0)
    np.testing.assert_allclose(out, expected[name], atol=1e-5)


def test_legacy_compiled_file_keeps_loss_metrics_and_schedule(expected):
    model = keras.models.load_model(os.path.join(FIXTURES, "legacy_unet.keras"))
    assert type(model.loss).__name__ == "CombinedLoss"
    assert type(model.optimizer._learning_rate).__name__ == "PolyDecay"
    scores = model.evaluate(expected["images"], expected["labels"], verbose=0, return_dict=True)
    assert set(scores) == {"loss", "mean_iou", "pixel_accuracy"}
    labels = expected["legacy_unet"].argmax(-1)
    truth = expected["labels"]
    assert scores["pixel_accuracy"] == pytest.approx(float((labels == truth).mean()), abs=1e-6)
