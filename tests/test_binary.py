"""Binary segmentation end to end: 0/255 folder masks, num_classes=1 sigmoid losses and metrics.

Every expected value is computed here in numpy from the definitions.
"""

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasseg
from kerasseg import data, datasets
from kerasseg import losses as L
from kerasseg import metrics as M
from kerasseg.datasets import folder as folder_module
from tests.folder_cli import write_squares

IGNORE = 255


# --------------------------------------------------------------------------- numpy references


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z.astype(np.float64)))


def _batch(seed=0, shape=(2, 12, 10), ignored=0.2):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, shape)
    y[rng.random(shape) < ignored] = IGNORE
    z = (rng.normal(size=shape + (1,)) * 2).astype(np.float32)
    return y.astype(np.int32), z


def ref_bce(y, z, from_logits, class_weights=(1.0, 1.0), label_smoothing=0.0):
    y, z = y.reshape(-1), z.reshape(-1).astype(np.float64)
    keep = y != IGNORE
    t, z = y[keep].astype(np.float64), z[keep]
    if from_logits:
        log_p, log_q = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
    else:  # z holds probabilities here
        log_p, log_q = np.log(np.clip(z, 1e-7, 1.0)), np.log(np.clip(1.0 - z, 1e-7, 1.0))
    target = t * (1.0 - label_smoothing) + label_smoothing / 2.0
    bce = -(target * log_p + (1.0 - target) * log_q)
    w = np.where(t == 1, class_weights[1], class_weights[0])
    return float((w * bce).sum() / w.sum())


def _soft_counts(y, z, from_logits):
    y, z = y.reshape(-1), z.reshape(-1)
    keep = y != IGNORE
    t = y[keep].astype(np.float64)
    p = np_sigmoid(z[keep]) if from_logits else z[keep].astype(np.float64)
    return (p * t).sum(), (p * (1 - t)).sum(), ((1 - p) * t).sum()


def ref_region(y, z, from_logits, kind, smooth=1.0):
    tp, fp, fn = _soft_counts(y, z, from_logits)
    if kind == "dice":
        return 1.0 - (2 * tp + smooth) / (2 * tp + fp + fn + smooth)
    if kind == "jaccard":
        return 1.0 - (tp + smooth) / (tp + fp + fn + smooth)
    return 1.0 - (tp + smooth) / (tp + 0.3 * fp + 0.7 * fn + smooth)  # tversky defaults


def np_confusion(y, z, from_logits):
    y, z = y.reshape(-1), z.reshape(-1)
    keep = y != IGNORE
    pred = (z[keep] > (0.0 if from_logits else 0.5)).astype(int)
    cm = np.zeros((2, 2))
    np.add.at(cm, (y[keep], pred), 1)
    return cm


def np_scores(cm):
    tp = np.diag(cm)
    gt, pred = cm.sum(1), cm.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (gt + pred - tp)
        dice = 2 * tp / (gt + pred)
    return {
        "iou": iou,
        "miou": np.nanmean(iou),
        "fg_iou": iou[1],
        "acc": tp.sum() / cm.sum(),
        "dice": np.nanmean(dice),
    }


# --------------------------------------------------------------------------- losses


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_rank", [3, 4])
def test_binary_cross_entropy_matches_numpy(from_logits, label_rank):
    y, z = _batch(1)
    y_pred = z if from_logits else np_sigmoid(z).astype(np.float32)
    labels = y if label_rank == 3 else y[..., None]
    got = float(L.BinaryCrossEntropy(from_logits=from_logits)(labels, y_pred))
    np.testing.assert_allclose(got, ref_bce(y, y_pred, from_logits), rtol=2e-5)
    got = float(
        L.BinaryCrossEntropy(
            from_logits=from_logits, class_weights=[0.5, 3.0], label_smoothing=0.1
        )(labels, y_pred)
    )
    want = ref_bce(y, y_pred, from_logits, class_weights=(0.5, 3.0), label_smoothing=0.1)
    np.testing.assert_allclose(got, want, rtol=2e-5)
    # The same as CrossEntropy's binary mode.
    np.testing.assert_allclose(
        got,
        float(
            L.CrossEntropy(from_logits=from_logits, class_weights=[0.5, 3.0], label_smoothing=0.1)(
                labels, y_pred
            )
        ),
        rtol=1e-6,
    )


def test_binary_cross_entropy_ignores_pixels_and_other_index():
    y, z = _batch(2)
    p = np_sigmoid(z).astype(np.float32)
    # Changing predictions under ignored pixels changes nothing; their gradient is zero.
    p2 = np.where((y == IGNORE)[..., None], 0.999, p).astype(np.float32)
    loss = L.BinaryCrossEntropy()
    np.testing.assert_allclose(float(loss(y, p)), float(loss(y, p2)), rtol=1e-7)
    tp = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(tp)
        value = loss(y, tp)
    grad = tape.gradient(value, tp).numpy()[..., 0]
    assert np.all(grad[y == IGNORE] == 0) and np.any(grad[y != IGNORE] != 0)
    # Another ignore index: 255 is then an out-of-range label, 7 is dropped.
    y7 = np.where(y == IGNORE, 7, y)
    np.testing.assert_allclose(
        float(L.BinaryCrossEntropy(ignore_index=7)(y7, p)), ref_bce(y, p, False), rtol=2e-5
    )
    with pytest.raises(ValueError, match="255"):
        L.BinaryCrossEntropy(ignore_index=7)(y, p)
    # All pixels ignored: 0, not NaN.
    assert float(loss(np.full_like(y, IGNORE), p)) == 0.0


def test_binary_cross_entropy_needs_one_channel():
    y, z = _batch(3)
    with pytest.raises(ValueError, match="one-channel"):
        L.BinaryCrossEntropy()(y, np.concatenate([z, z], -1))


@pytest.mark.parametrize(
    "kind,factory", [("dice", L.DiceLoss), ("jaccard", L.JaccardLoss), ("tversky", L.TverskyLoss)]
)
@pytest.mark.parametrize("from_logits", [False, True])
def test_region_losses_score_the_foreground_of_a_sigmoid_output(kind, factory, from_logits):
    y, z = _batch(4)
    y_pred = z if from_logits else np_sigmoid(z).astype(np.float32)
    got = float(factory(from_logits=from_logits)(y, y_pred))
    np.testing.assert_allclose(got, ref_region(y, y_pred, from_logits, kind), rtol=2e-5)


@pytest.mark.parametrize(
    "name", ["binary_cross_entropy", "bce", "binary_crossentropy", "BCE", "binary-cross-entropy"]
)
def test_get_binary_cross_entropy_by_name(name):
    loss = L.get(name, ignore_index=IGNORE)
    assert type(loss) is L.BinaryCrossEntropy and loss.ignore_index == IGNORE
    assert L.get(name, ignore_index=3).ignore_index == 3


def test_cli_loss_spec_with_binary_cross_entropy():
    from kerasseg.cli.train import parse_loss

    loss = parse_loss("binary_cross_entropy+dice", "shapes", None)
    assert isinstance(loss, L.CombinedLoss)
    assert [type(l) for l in loss.losses] == [L.BinaryCrossEntropy, L.DiceLoss]
    assert [l.ignore_index for l in loss.losses] == [IGNORE, IGNORE]
    loss = parse_loss("bce+0.5*dice", "shapes", None)
    assert loss.weights == [1.0, 0.5]
    y, z = _batch(5)
    p = np_sigmoid(z).astype(np.float32)
    want = ref_bce(y, p, False) + 0.5 * ref_region(y, p, False, "dice")
    np.testing.assert_allclose(float(loss(y, p)), want, rtol=2e-5)


def test_binary_cross_entropy_serializes():
    loss = L.BinaryCrossEntropy(
        ignore_index=7, from_logits=True, class_weights=[1.0, 2.0]
    ) + 0.5 * L.DiceLoss(from_logits=True, ignore_index=7)
    config = keras.saving.serialize_keras_object(loss)
    restored = keras.saving.deserialize_keras_object(config)
    assert restored.get_config() == loss.get_config()
    single = keras.saving.serialize_keras_object(loss.losses[0])
    assert single["registered_name"] == "kerasseg>BinaryCrossEntropy"
    assert "mode" not in single["config"]
    y, z = _batch(6)
    y = np.where(y == IGNORE, 7, y)
    np.testing.assert_allclose(float(restored(y, z)), float(loss(y, z)), rtol=1e-7)


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_metrics_with_num_classes_1_match_numpy(from_logits):
    y1, z1 = _batch(7)
    y2, z2 = _batch(8, shape=(3, 8, 9))
    classes = [
        M.MeanIoU,
        M.ForegroundIoU,
        M.PixelAccuracy,
        M.DiceScore,
        M.PerClassIoU,
        M.ConfusionMatrix,
    ]
    scores = [cls(1, from_logits=from_logits) for cls in classes]
    scores.append(M.MeanIoU(2, from_logits=from_logits))
    batches = []
    for y, z in ((y1, z1), (y2, z2)):
        y_pred = z if from_logits else np_sigmoid(z).astype(np.float32)
        batches.append((y, y_pred))
        for metric in scores:
            metric.update_state(y[..., None], y_pred)
    cm = sum(np_confusion(y, p, from_logits) for y, p in batches)
    want = np_scores(cm)
    miou, fg, acc, dice, per_class, matrix, miou2 = [m.result().numpy() for m in scores]
    np.testing.assert_array_equal(matrix, cm)
    np.testing.assert_allclose(miou, want["miou"], rtol=1e-6)
    np.testing.assert_allclose(miou2, want["miou"], rtol=1e-6)
    np.testing.assert_allclose(fg, want["fg_iou"], rtol=1e-6)
    np.testing.assert_allclose(acc, want["acc"], rtol=1e-6)
    np.testing.assert_allclose(dice, want["dice"], rtol=1e-6)
    np.testing.assert_allclose(per_class, want["iou"], rtol=1e-6)
    summary = scores[0].summary()
    assert [c["name"] for c in summary["classes"]] == ["background", "foreground"]
    assert [c["name"] for c in scores[0].summary(["road"])["classes"]] == ["background", "road"]


def test_foreground_iou_threshold_and_edge_cases():
    y = np.array([[[0, 1, 1, IGNORE]]])
    p = np.array([[[[0.5], [0.5001], [0.2], [0.9]]]], np.float32)  # 0.5 is background
    metric = M.ForegroundIoU()
    metric.update_state(y, p)
    assert float(metric.result()) == pytest.approx(0.5)  # TP 1, FN 1, FP 0
    # Logits: foreground where z > 0.
    metric = M.BinaryIoU(from_logits=True)
    assert M.BinaryIoU is M.ForegroundIoU
    metric.update_state(y, np.array([[[[0.0], [0.1], [-3.0], [5.0]]]], np.float32))
    assert float(metric.result()) == pytest.approx(0.5)
    # No foreground in truth or prediction: 0, not NaN.
    metric = M.ForegroundIoU()
    metric.update_state(np.zeros((1, 4, 4)), np.zeros((1, 4, 4, 1), np.float32))
    assert float(metric.result()) == 0.0
    # A two-class softmax output: the foreground is class 1.
    metric = M.ForegroundIoU(2)
    probs = np.concatenate([1 - p, p], -1)
    metric.update_state(y, probs)
    assert float(metric.result()) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="binary"):
        M.ForegroundIoU(3)


def test_binary_metric_errors():
    y, z = _batch(9)
    with pytest.raises(ValueError, match="2 channels but num_classes=1"):
        M.MeanIoU(1).update_state(y, np.concatenate([z, z], -1))
    with pytest.raises(ValueError, match="one-channel"):
        M.MeanIoU(3).update_state(y, z)
    with pytest.raises(ValueError, match="found label value 2"):
        M.MeanIoU(1).update_state(np.full_like(y, 2), z)


@pytest.mark.parametrize("cls", [M.ForegroundIoU, M.MeanIoU])
def test_binary_metric_config_round_trip(cls):
    metric = cls(1, ignore_index=7, from_logits=True)
    config = keras.saving.serialize_keras_object(metric)
    assert config["registered_name"] == f"kerasseg>{cls.__name__}"
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is cls and restored.get_config() == metric.get_config()
    assert restored.num_classes == 1 and restored.confusion_matrix().shape == (2, 2)


# --------------------------------------------------------------------------- the folder loader


def _square_set(root, foreground, n=6, size=64, seed=0, split=None, bad=None):
    """`n` dark images with one bright square each, masks 0 / `foreground`; mask `bad` (an index)
    gets one pixel of value 128."""
    base = os.path.join(root, split) if split else str(root)
    write_squares(base, foreground, n, np.random.default_rng(seed), size=size, bad=bad)


def _pairs(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_folder_0_255_and_0_1_masks_load_alike(tmp_path):
    _square_set(tmp_path / "a", 255)
    _square_set(tmp_path / "b", 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds_a = datasets.load("folder", data_dir=tmp_path / "a", split="all")
        first = [str(w.message) for w in caught]
        a = _pairs(ds_a)
        info_a = datasets.info("folder", data_dir=tmp_path / "a")
        a_again = _pairs(datasets.load("folder", data_dir=tmp_path / "a", split="all"))
        b = _pairs(datasets.load("folder", data_dir=tmp_path / "b", split="all"))
        info_b = datasets.info("folder", data_dir=tmp_path / "b")
    assert len(first) == 1 and "0 and 255" in first[0] and "ignore_index=255" in first[0]
    assert len(caught) == 1  # said once: not per file, not per load, not for 0/1 masks
    assert len(a) == len(b) == 6
    for (xa, ya), (xb, yb), (_, yc) in zip(a, b, a_again):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(ya, yc)
        assert ya.dtype == np.int32 and set(np.unique(ya)) == {0, 1}
        # The mask is where the bright square is.
        np.testing.assert_array_equal(ya == 1, xa.min(-1) >= 200)
    for info in (info_a, info_b):
        assert info.num_classes == 2 and info.class_names == ("background", "foreground")
        assert info.ignore_index == 255 and info.splits == {"all": 6, "train": 5, "val": 1}


def test_folder_explicit_ignore_index_keeps_255_as_ignore(tmp_path):
    _square_set(tmp_path, 255)
    for options in ({"ignore_index": 255}, {"binary": False}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pairs = _pairs(datasets.load("folder", data_dir=tmp_path, split="all", **options))
        assert not [w for w in caught if "0 and 255" in str(w.message)]  # no binary warning
        for _, y in pairs:
            assert set(np.unique(y)) == {0, 255}
    info = datasets.info("folder", data_dir=tmp_path, ignore_index=255)
    assert info.num_classes == 1
    # Explicit class names of two classes keep the detection and the names.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = datasets.info("folder", data_dir=tmp_path, class_names=["sky", "cloud"])
        pairs = _pairs(
            datasets.load("folder", data_dir=tmp_path, split="all", class_names=["sky", "cloud"])
        )
    assert info.class_names == ("sky", "cloud")
    assert all(set(np.unique(y)) == {0, 1} for _, y in pairs)
    # binary=True with another ignore index: 255 is foreground, 128 would be ignored.
    pairs = _pairs(
        datasets.load("folder", data_dir=tmp_path, split="all", binary=True, ignore_index=128)
    )
    assert all(set(np.unique(y)) == {0, 1} for _, y in pairs)


def test_folder_binary_split_folders_agree(tmp_path):
    _square_set(tmp_path, 255, n=4, split="train")
    _square_set(tmp_path, 255, n=2, split="val", seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = datasets.info("folder", data_dir=tmp_path)
        val = _pairs(datasets.load("folder", data_dir=tmp_path, split="val"))
        train = _pairs(datasets.load("folder", data_dir=tmp_path, split="train"))
    assert len(caught) == 1
    assert info.num_classes == 2 and info.splits == {"train": 4, "val": 2}
    assert len(train) == 4 and len(val) == 2
    assert all(set(np.unique(y)) == {0, 1} for _, y in train + val)


def test_folder_binary_value_outside_sample_names_file(tmp_path, monkeypatch):
    monkeypatch.setattr(folder_module, "BINARY_SAMPLE", 2)  # reads im0 and im3 of 4
    _square_set(tmp_path, 255, n=4, bad=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = datasets.load("folder", data_dir=tmp_path, split="all")
    with pytest.raises(Exception) as error:
        _pairs(ds)
    assert "128" in str(error.value) and "im1.png" in str(error.value)


# --------------------------------------------------------------------------- training


def test_sigmoid_unet_fits_and_evaluates_on_a_binary_folder_set(tmp_path):
    _square_set(tmp_path, 255, n=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = datasets.load("folder", data_dir=tmp_path, split="all")
        meta = datasets.info("folder", data_dir=tmp_path)
    assert meta.num_classes == 2
    train = data.prepare(
        raw, batch_size=2, crop_size=(48, 48), training=True, seed=0, repeat=True, cat_max_ratio=0.9
    )
    val = data.prepare(raw, batch_size=2, training=False)
    keras.utils.set_random_seed(0)
    model = kerasseg.unet(
        1,
        backbone=None,
        weights=None,
        filters=4,
        depth=2,
        activation="sigmoid",
        input_shape=(None, None, 3),
    )
    assert model.outputs[0].shape[-1] == 1
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=L.get("binary_cross_entropy", ignore_index=meta.ignore_index)
        + L.get("dice", ignore_index=meta.ignore_index),
        metrics=[M.ForegroundIoU(), M.MeanIoU(1), M.PixelAccuracy(1)],
    )
    history = model.fit(train, steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    for key in ("foreground_iou", "mean_iou", "pixel_accuracy"):
        assert 0.0 <= history.history[key][0] <= 1.0
    result = model.evaluate(val, verbose=0, return_dict=True)
    assert np.isfinite(result["loss"])
    for key in ("foreground_iou", "mean_iou", "pixel_accuracy"):
        assert 0.0 <= result[key] <= 1.0
    # The evaluated metrics are those of the predictions (BN in inference mode both ways).
    ys, ps = zip(*[(y.numpy(), model(x, training=False).numpy()) for x, y in val])
    cm = sum(np_confusion(y, p, False) for y, p in zip(ys, ps))
    want = np_scores(cm)
    # ForegroundIoU is 0 where no foreground was seen at all (numpy's NaN).
    np.testing.assert_allclose(result["foreground_iou"], np.nan_to_num(want["fg_iou"]), atol=1e-6)
    np.testing.assert_allclose(result["mean_iou"], want["miou"], atol=1e-6)
    np.testing.assert_allclose(result["pixel_accuracy"], want["acc"], atol=1e-6)
