"""kerasseg.metrics against independent numpy definitions, Keras, scikit-learn and a saved model."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import jaccard_score

from kerasseg import losses as L
from kerasseg import metrics as M
from kerasseg.visualize import plots as V

IGNORE = 255
C = 5
SCALAR_METRICS = {
    "pixel_accuracy": M.PixelAccuracy,
    "mean_pixel_accuracy": M.MeanPixelAccuracy,
    "mean_iou": M.MeanIoU,
    "fw_iou": M.FrequencyWeightedIoU,
    "dice": M.DiceScore,
}


# --------------------------------------------------------------------------- numpy references


def np_confusion(y, pred, n, weights=None):
    y = np.asarray(y).reshape(-1)
    pred = np.asarray(pred).reshape(-1)
    w = np.ones(y.shape) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    cm = np.zeros((n, n))
    for t, p, wi in zip(y, pred, w):
        if t != IGNORE:
            cm[t, p] += wi
    return cm


def np_scores(cm):
    """mmsegmentation's definitions, written per class with explicit NaN for empty denominators."""
    n = cm.shape[0]
    iou, acc, dice = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for c in range(n):
        tp, fn, fp = cm[c, c], cm[c].sum() - cm[c, c], cm[:, c].sum() - cm[c, c]
        if tp + fp + fn > 0:
            iou[c] = tp / (tp + fp + fn)
            dice[c] = 2 * tp / (2 * tp + fp + fn)
        if tp + fn > 0:
            acc[c] = tp / (tp + fn)
    gt_share = cm.sum(1) / cm.sum()
    return {
        "pixel_accuracy": np.trace(cm) / cm.sum(),
        "mean_pixel_accuracy": np.nanmean(acc),
        "mean_iou": np.nanmean(iou),
        "fw_iou": sum(gt_share[c] * iou[c] for c in range(n) if gt_share[c] > 0),
        "dice": np.nanmean(dice),
        "per_class_iou": iou,
        "accuracy": acc,
        "per_class_dice": dice,
    }


def make_stream(seed, batches=3, n=2, h=8, w=10, c=C, absent=None):
    """Batches of (labels, logits); `absent` is a class kept out of truth and prediction."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(batches):
        y = rng.integers(0, c, (n, h, w))
        logits = rng.normal(size=(n, h, w, c)).astype(np.float32)
        # Make predictions correlate with truth so the scores are not all near chance.
        logits += 2.0 * np.eye(c, dtype=np.float32)[y] * (rng.random((n, h, w, 1)) < 0.6)
        if absent is not None:
            y[y == absent] = (absent + 1) % c
            logits[..., absent] = -100.0
        y[rng.random((n, h, w)) < 0.15] = IGNORE
        out.append((y, logits))
    return out


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("label_shape", ["nhw", "nhw1"])
@pytest.mark.parametrize("pred_kind", ["probs", "logits"])
def test_streamed_metrics_match_numpy(label_shape, pred_kind):
    stream = make_stream(1, absent=3)
    metrics = {k: cls(C, from_logits=pred_kind == "logits") for k, cls in SCALAR_METRICS.items()}
    metrics["per_class_iou"] = M.PerClassIoU(C)
    cm_metric = M.ConfusionMatrix(C)
    for y, logits in stream:
        labels = y[..., None] if label_shape == "nhw1" else y
        y_pred = logits if pred_kind == "logits" else softmax(logits).astype(np.float32)
        for m in list(metrics.values()) + [cm_metric]:
            m.update_state(labels, y_pred)
    all_y = np.concatenate([y for y, _ in stream])
    all_pred = np.concatenate([l.argmax(-1) for _, l in stream])
    cm = np_confusion(all_y, all_pred, C)
    ref = np_scores(cm)
    assert np.isnan(ref["per_class_iou"][3])  # the absent class really is left out
    np.testing.assert_array_equal(cm_metric.result().numpy(), cm)
    for key, m in metrics.items():
        np.testing.assert_allclose(m.result().numpy(), ref[key], rtol=1e-6, err_msg=key)
    assert metrics["mean_iou"].name == "mean_iou" and metrics["fw_iou"].name == "fw_iou"
    assert metrics["dice"].name == "dice" and metrics["pixel_accuracy"].name == "pixel_accuracy"


@pytest.mark.parametrize("from_logits", [False, True])
def test_one_channel_binary_predictions(from_logits):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, (3, 7, 9))
    y[rng.random(y.shape) < 0.2] = IGNORE
    z = rng.normal(size=(3, 7, 9, 1)).astype(np.float32)
    y_pred = z if from_logits else (1 / (1 + np.exp(-z))).astype(np.float32)
    m = M.MeanIoU(2, from_logits=from_logits)
    cm_metric = M.ConfusionMatrix(2, from_logits=from_logits)
    m.update_state(y, y_pred)
    cm_metric.update_state(y, y_pred)
    cm = np_confusion(y, (z[..., 0] > 0).astype(int), 2)
    np.testing.assert_array_equal(cm_metric.result().numpy(), cm)
    np.testing.assert_allclose(float(m.result()), np_scores(cm)["mean_iou"], rtol=1e-6)
    with pytest.raises(ValueError, match="num_classes=5"):
        M.MeanIoU(5).update_state(y, y_pred)


def test_integer_class_predictions_and_sample_weight():
    rng = np.random.default_rng(3)
    y = rng.integers(0, C, (2, 6, 6))
    y[0, 0] = IGNORE
    pred = rng.integers(0, C, (2, 6, 6))
    w = rng.random((2, 6, 6))
    cm_metric = M.ConfusionMatrix(C)
    cm_metric.update_state(y, pred.astype(np.int32), sample_weight=w)
    np.testing.assert_allclose(cm_metric.result().numpy(), np_confusion(y, pred, C, w), rtol=1e-12)
    per_sample = M.ConfusionMatrix(C)
    per_sample.update_state(y, pred.astype(np.int64), sample_weight=np.array([2.0, 0.5]))
    w2 = np.broadcast_to(np.array([2.0, 0.5])[:, None, None], y.shape)
    np.testing.assert_allclose(per_sample.result().numpy(), np_confusion(y, pred, C, w2))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes=5"):
        M.MeanIoU(C).update_state(y, np.full((2, 6, 6), 7, np.int32))


def test_mean_iou_agrees_with_keras_mean_iou():
    for absent in (None, 2):
        ours = M.MeanIoU(C)
        theirs = keras.metrics.MeanIoU(C, ignore_class=IGNORE, sparse_y_pred=False)
        for y, logits in make_stream(4, absent=absent):
            ours.update_state(y, logits)
            theirs.update_state(y, logits)
        # Keras also leaves classes with an empty union out of its mean.
        np.testing.assert_allclose(float(ours.result()), float(theirs.result()), rtol=1e-5)


def test_per_class_iou_agrees_with_scikit_learn():
    stream = make_stream(5, absent=1)
    m = M.PerClassIoU(C)
    for y, logits in stream:
        m.update_state(y, logits)
    y = np.concatenate([y for y, _ in stream]).reshape(-1)
    pred = np.concatenate([l.argmax(-1) for _, l in stream]).reshape(-1)
    keep = y != IGNORE
    # This scikit-learn scores a class absent from truth and prediction as zero_division (0);
    # kerasseg reports NaN there (mmsegmentation), so compare the defined classes only.
    sk = jaccard_score(y[keep], pred[keep], labels=list(range(C)), average=None, zero_division=0)
    got = m.result().numpy()
    seen = np.isin(np.arange(C), np.concatenate([y[keep], pred[keep]]))
    assert not seen[1] and seen.sum() == C - 1
    np.testing.assert_array_equal(np.isnan(got), ~seen)
    np.testing.assert_allclose(got[seen], sk[seen], rtol=1e-6)


def test_empty_and_reset_state():
    m = M.MeanIoU(C)
    assert float(m.result()) == 0.0  # nothing seen yet: 0, not NaN
    m.update_state(np.full((1, 4, 4), IGNORE), np.zeros((1, 4, 4, C), np.float32))
    assert float(m.result()) == 0.0
    y, logits = make_stream(6, batches=1)[0]
    m.update_state(y, logits)
    assert float(m.result()) > 0.0
    m.reset_state()
    assert float(m.result()) == 0.0
    assert M.ConfusionMatrix(C).result().numpy().sum() == 0


def test_shape_and_channel_mismatches_are_value_errors():
    with pytest.raises(ValueError, match="5 channels but num_classes=3"):
        M.MeanIoU(3).update_state(np.zeros((1, 4, 4)), np.zeros((1, 4, 4, 5), np.float32))
    with pytest.raises(ValueError, match="resolution"):
        M.MeanIoU(3).update_state(np.zeros((1, 8, 8)), np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        M.MeanIoU(0)


# --------------------------------------------------------------------------- bad labels


def test_out_of_range_label_eager_is_value_error_naming_it():
    y, logits = make_stream(7, batches=1)[0]
    y[1, 2, 3] = 300
    with pytest.raises(ValueError, match=r"\[0, 5\).*ignore_index=255.*300"):
        M.MeanIoU(C).update_state(y, logits)
    negative = y.copy()
    negative[1, 2, 3] = -1
    with pytest.raises(ValueError, match="-1"):
        M.PixelAccuracy(C).update_state(negative, logits)


def test_out_of_range_label_inside_evaluate_names_the_value():
    y, logits = make_stream(8, batches=1)[0]
    y[0, 1, 1] = 17
    model = keras.Sequential([keras.Input((8, 10, C)), keras.layers.Identity()])
    model.compile(
        loss=L.CrossEntropy(from_logits=True, ignore_index=17),
        metrics=[M.MeanIoU(C, from_logits=True)],
        jit_compile=False,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)\[0, 5\).*17"):
        model.evaluate(logits, y, verbose=0)


def test_out_of_range_label_under_xla_poisons_results_and_report():
    y, logits = make_stream(9, batches=1)[0]
    y[0, 0, 0] = 42
    m = M.MeanIoU(C)
    tf.function(m.update_state, jit_compile=True)(y, logits)  # XLA drops the assert
    assert np.isnan(float(m.result()))
    with pytest.raises(ValueError, match="e.g. 42"):
        m.report()
    clean = M.MeanIoU(C)
    y[0, 0, 0] = 1
    tf.function(clean.update_state, jit_compile=True)(y, logits)
    ref = np_scores(np_confusion(y, logits.argmax(-1), C))["mean_iou"]
    np.testing.assert_allclose(float(clean.result()), ref, rtol=1e-6)


# --------------------------------------------------------------------------- report


def test_report_and_summary():
    stream = make_stream(10, absent=4)
    m = M.ConfusionMatrix(C)
    for y, logits in stream:
        m.update_state(y, logits)
    names = ["road", "car", "sky", "tree", "boat"]
    summary = m.summary(class_names=names)
    json.dumps(summary)
    cm = np_confusion(
        np.concatenate([y for y, _ in stream]), np.concatenate([l.argmax(-1) for _, l in stream]), C
    )
    ref = np_scores(cm)
    for key, ref_key in [
        ("mean_iou", "mean_iou"),
        ("fw_iou", "fw_iou"),
        ("pixel_accuracy", "pixel_accuracy"),
        ("mean_accuracy", "mean_pixel_accuracy"),
        ("mean_dice", "dice"),
    ]:
        np.testing.assert_allclose(summary[key], ref[ref_key], rtol=1e-12, err_msg=key)
    for c, row in enumerate(summary["classes"]):
        assert row["name"] == names[c]
        assert row["gt_pixels"] == cm[c].sum() and row["pred_pixels"] == cm[:, c].sum()
        for key, ref_key in [
            ("iou", "per_class_iou"),
            ("accuracy", "accuracy"),
            ("dice", "per_class_dice"),
        ]:
            if np.isnan(ref[ref_key][c]):
                assert row[key] is None
            else:
                np.testing.assert_allclose(row[key], ref[ref_key][c], rtol=1e-12)
    assert summary["classes"][4]["iou"] is None
    text = m.report(class_names=names)
    lines = text.splitlines()
    assert len(lines) == 2 + C + 2
    car = next(line for line in lines if line.startswith("car"))
    assert f"{100 * ref['per_class_iou'][1]:.2f}" in car and f"{cm[1].sum():.0f}" in car
    assert "n/a" in next(line for line in lines if line.startswith("boat"))
    assert f"mIoU {100 * ref['mean_iou']:.2f}" in lines[-1]
    # Every metric can report, since they all hold the same matrix.
    miou = M.MeanIoU(C)
    for y, logits in stream:
        miou.update_state(y, logits)
    assert miou.report(names) == text
    with pytest.raises(ValueError, match="4 class names for 5 classes"):
        m.summary(class_names=names[:4])


# --------------------------------------------------------------------------- inside Keras


def _tiny_segmenter(c=C, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((8, 10, 3)), keras.layers.Conv2D(c, 3, padding="same", activation="softmax")]
    )


def _all_metrics(c=C):
    return [cls(c) for cls in SCALAR_METRICS.values()] + [M.PerClassIoU(c), M.ConfusionMatrix(c)]


def _data(seed=0, n=6):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 10, 3)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(3, C)), -1)
    y[rng.random(y.shape) < 0.1] = IGNORE
    return x, y


def test_metrics_in_compile_fit_evaluate_match_numpy_on_predictions():
    x, y = _data()
    model = _tiny_segmenter()
    model.compile(optimizer="adam", loss=L.CrossEntropy(), metrics=_all_metrics())
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    results = model.evaluate(x, y[..., None], batch_size=4, verbose=0, return_dict=True)
    ref = np_scores(np_confusion(y, model.predict(x, verbose=0).argmax(-1), C))
    for key in SCALAR_METRICS:
        np.testing.assert_allclose(results[key], ref[key], rtol=1e-6, err_msg=key)
    np.testing.assert_allclose(results["per_class_iou"], ref["per_class_iou"], rtol=1e-6)
    assert results["confusion_matrix"].sum() == (y != IGNORE).sum()


def test_compiled_model_with_combined_loss_and_metrics_round_trips_keras_file(tmp_path):
    x, y = _data(1)
    model = _tiny_segmenter(seed=1)
    model.compile(
        optimizer="adam", loss=L.CrossEntropy() + 0.5 * L.DiceLoss(), metrics=_all_metrics()
    )
    model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    before = model.evaluate(x, y, batch_size=3, verbose=0, return_dict=True)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)  # no custom_objects
    assert isinstance(restored.loss, L.CombinedLoss)
    assert [type(l) for l in restored.loss.losses] == [L.CrossEntropy, L.DiceLoss]
    assert restored.loss.weights == [1.0, 0.5]
    after = restored.evaluate(x, y, batch_size=3, verbose=0, return_dict=True)
    assert set(after) == set(before)
    for key in before:
        np.testing.assert_allclose(after[key], before[key], rtol=1e-6, err_msg=key)
    # evaluate averages the loss of its two equal batches; Dice is not additive over pixels.
    probs = model.predict(x, verbose=0)
    loss_ref = np.mean(
        [
            float(L.CrossEntropy()(y[i : i + 3], probs[i : i + 3]))
            + 0.5 * float(L.DiceLoss()(y[i : i + 3], probs[i : i + 3]))
            for i in (0, 3)
        ]
    )
    np.testing.assert_allclose(after["loss"], loss_ref, rtol=1e-5)


@pytest.mark.parametrize("cls", list(SCALAR_METRICS.values()) + [M.PerClassIoU, M.ConfusionMatrix])
def test_metric_config_round_trip(cls):
    m = cls(7, ignore_index=0, from_logits=True, name="custom")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(m))
    assert type(restored) is cls
    assert restored.get_config() == m.get_config()
    assert (restored.num_classes, restored.ignore_index, restored.from_logits, restored.name) == (
        7,
        0,
        True,
        "custom",
    )
    assert restored.total_cm.dtype == "float64" and tuple(restored.total_cm.shape) == (7, 7)


# --------------------------------------------------------------------------- plots


def test_plot_confusion_matrix(tmp_path):
    cm = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]], np.float64)
    fig = V.plot_confusion_matrix(cm, ["a", "b", "c"], path=tmp_path / "cm.png")
    image = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(image, [[0.8, 0.2, 0], [0.25, 0.75, 0], [0, 0, 0]])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "c"]
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    raw = V.plot_confusion_matrix(cm, normalize=False)
    np.testing.assert_array_equal(raw.axes[0].images[0].get_array(), cm)
    assert "8" in [t.get_text() for t in raw.axes[0].texts]
    with pytest.raises(ValueError, match="square"):
        V.plot_confusion_matrix(np.zeros((2, 3)))


def test_plot_per_class_iou(tmp_path):
    ious = np.array([0.5, np.nan, 0.9, 0.1])
    fig = V.plot_per_class_iou(ious, ["w", "x", "y", "z"], path=tmp_path / "iou.svg")
    widths = [bar.get_width() for bar in fig.axes[0].patches]
    np.testing.assert_allclose(widths, [0.5, 0.0, 0.9, 0.1])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "n/a" in texts and "90.0" in texts
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "mIoU 50.0"
    assert (tmp_path / "iou.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="3 class names for 4 classes"):
        V.plot_per_class_iou(ious, ["a", "b", "c"])


def test_empty_batch_in_a_graph_counts_nothing_and_does_not_fail():
    # Under tf.distribute a replica's share of a last, short batch can be empty.
    from kerasseg import losses, metrics

    metric = metrics.MeanIoU(3)
    metric.update_state(np.array([[0, 1]]), np.eye(3, dtype="float32")[[[0, 1]]])
    update = tf.function(lambda y, p: metric.update_state(y, p))
    update(tf.zeros((0, 8, 8), tf.int32), tf.zeros((0, 8, 8, 3)))
    assert float(metric.result()) == 1.0
    loss = tf.function(losses.CrossEntropy())(tf.zeros((0, 8, 8), tf.int32), tf.zeros((0, 8, 8, 3)))
    assert float(loss) == 0.0
