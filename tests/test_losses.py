"""kerasseg.losses against independent numpy implementations of each definition."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasseg import losses as L

IGNORE = 255
C = 4


# --------------------------------------------------------------------------- numpy references


def np_softmax(z):
    z = z.astype(np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z.astype(np.float64)))


def np_probs(y_pred, from_logits):
    """(M, C) float64 class probabilities; a one-channel input becomes [1 - s, s]."""
    if y_pred.shape[-1] == 1:
        s = np_sigmoid(y_pred) if from_logits else y_pred.astype(np.float64)
        return np.concatenate([1.0 - s, s], axis=-1)
    return np_softmax(y_pred) if from_logits else y_pred.astype(np.float64)


def np_log_probs(y_pred, from_logits):
    if from_logits and y_pred.shape[-1] > 1:
        z = y_pred.astype(np.float64)
        m = z.max(-1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))
    return np.log(np.clip(np_probs(y_pred, from_logits), 1e-7, 1.0))


def flat_valid(y, y_pred, from_logits, sample_weight=None):
    """Valid labels (M,), probabilities (M, C), log-probabilities (M, C), weights (M,)."""
    y = np.asarray(y).reshape(y.shape[0], y.shape[1], y.shape[2])
    c = y_pred.shape[-1]
    w = (
        np.ones(y.shape)
        if sample_weight is None
        else np.broadcast_to(
            np.asarray(sample_weight, np.float64).reshape(
                sample_weight.shape + (1,) * (3 - np.ndim(sample_weight))
            ),
            y.shape,
        )
    )
    keep = y != IGNORE
    yp = y_pred.reshape(-1, c)[keep.reshape(-1)]
    return (
        y[keep].astype(int),
        np_probs(yp, from_logits),
        np_log_probs(yp, from_logits),
        w[keep].astype(np.float64),
    )


def ref_ce(y, y_pred, from_logits, class_weights=None, label_smoothing=0.0, sample_weight=None):
    t, _, logp, w = flat_valid(y, y_pred, from_logits, sample_weight)
    k = logp.shape[1]
    target = np.eye(k)[t] * (1 - label_smoothing) + label_smoothing / k
    ce = -(target * logp).sum(1)
    if class_weights is not None:
        w = w * np.asarray(class_weights)[t]
    return (w * ce).sum() / w.sum() if w.sum() > 0 else 0.0


def ref_bce(y, s_or_z, from_logits):
    """Binary cross-entropy written directly (not through the two-channel trick)."""
    y = np.asarray(y).reshape(-1)
    v = s_or_z.reshape(-1).astype(np.float64)
    keep = y != IGNORE
    t, v = y[keep], v[keep]
    if from_logits:
        log_s, log_1ms = -np.logaddexp(0, -v), -np.logaddexp(0, v)
    else:
        log_s, log_1ms = np.log(np.clip(v, 1e-7, 1)), np.log(np.clip(1 - v, 1e-7, 1))
    return float(-(t * log_s + (1 - t) * log_1ms).mean())


def ref_ohem(y, y_pred, from_logits, threshold, min_kept):
    t, p, logp, _ = flat_valid(y, y_pred, from_logits)
    pt = p[np.arange(len(t)), t]
    rank = np.empty(len(t), int)
    rank[np.argsort(pt, kind="stable")] = np.arange(len(t))
    kept = (pt < threshold) | (rank < min_kept * y.shape[0])
    ce = -logp[np.arange(len(t)), t]
    return ce[kept].mean() if kept.any() else 0.0


def ref_focal(y, y_pred, from_logits, gamma, alpha=None):
    t, _, logp, _ = flat_valid(y, y_pred, from_logits)
    log_pt = logp[np.arange(len(t)), t]
    a = 1.0 if alpha is None else np.asarray(alpha)[t] if np.ndim(alpha) else alpha
    return float(np.mean(-a * (1 - np.exp(log_pt)) ** gamma * log_pt))


def ref_region(
    y,
    y_pred,
    from_logits,
    kind,
    smooth=1.0,
    alpha=0.3,
    beta=0.7,
    gamma=1.0,
    sample_weight=None,
    classes="present",
):
    t, p, _, w = flat_valid(y, y_pred, from_logits, sample_weight)
    binary = y_pred.shape[-1] == 1
    scores = []
    for c in [1] if binary else range(p.shape[1]):
        g = (t == c).astype(np.float64)
        if not binary and classes == "present" and g.sum() == 0:
            continue
        tp = (w * p[:, c] * g).sum()
        fp = (w * p[:, c] * (1 - g)).sum()
        fn = (w * (1 - p[:, c]) * g).sum()
        if kind == "dice":
            loss = 1 - (2 * tp + smooth) / (2 * tp + fp + fn + smooth)
        elif kind == "jaccard":
            loss = 1 - (tp + smooth) / (tp + fp + fn + smooth)
        else:
            loss = (1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)) ** gamma
        scores.append(loss)
    return float(np.mean(scores)) if len(t) else 0.0


def lovasz_grad(gt_sorted):
    """Gradient of the Lovasz extension of the Jaccard loss (Berman et al. 2018, Alg. 1)."""
    gts = gt_sorted.sum()
    intersection = gts - np.cumsum(gt_sorted)
    union = gts + np.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def ref_lovasz(y, y_pred, from_logits):
    t, p, _, _ = flat_valid(y, y_pred, from_logits)
    binary = y_pred.shape[-1] == 1
    out = []
    for c in [1] if binary else range(p.shape[1]):
        fg = (t == c).astype(np.float64)
        if not binary and fg.sum() == 0:
            continue
        errors = np.abs(fg - p[:, c])
        order = np.argsort(-errors, kind="stable")
        out.append(float(np.dot(errors[order], lovasz_grad(fg[order]))))
    return float(np.mean(out))


# Each case: name -> (factory(from_logits), reference(y, y_pred, from_logits)).
CASES = {
    "ce": (lambda fl: L.CrossEntropy(from_logits=fl), ref_ce),
    "ce_weighted_smoothed": (
        lambda fl: L.CrossEntropy(
            class_weights=[1.0, 2.0, 0.5, 3.0], label_smoothing=0.1, from_logits=fl
        ),
        lambda y, p, fl: ref_ce(y, p, fl, [1.0, 2.0, 0.5, 3.0], 0.1),
    ),
    "ohem": (
        lambda fl: L.OhemCrossEntropy(threshold=0.3, min_kept=40, from_logits=fl),
        lambda y, p, fl: ref_ohem(y, p, fl, 0.3, 40),
    ),
    "ohem_min_kept_only": (
        lambda fl: L.OhemCrossEntropy(threshold=1e-6, min_kept=25, from_logits=fl),
        lambda y, p, fl: ref_ohem(y, p, fl, 1e-6, 25),
    ),
    "focal": (
        lambda fl: L.FocalLoss(gamma=2.0, from_logits=fl),
        lambda y, p, fl: ref_focal(y, p, fl, 2.0),
    ),
    "focal_alpha": (
        lambda fl: L.FocalLoss(gamma=1.5, alpha=[0.25, 0.5, 1.0, 2.0], from_logits=fl),
        lambda y, p, fl: ref_focal(y, p, fl, 1.5, [0.25, 0.5, 1.0, 2.0]),
    ),
    "dice": (lambda fl: L.DiceLoss(from_logits=fl), lambda y, p, fl: ref_region(y, p, fl, "dice")),
    "dice_all_smooth0": (
        lambda fl: L.DiceLoss(smooth=0.0, classes="all", from_logits=fl),
        lambda y, p, fl: ref_region(y, p, fl, "dice", smooth=0.0, classes="all"),
    ),
    "jaccard": (
        lambda fl: L.JaccardLoss(smooth=0.5, from_logits=fl),
        lambda y, p, fl: ref_region(y, p, fl, "jaccard", smooth=0.5),
    ),
    "tversky": (
        lambda fl: L.TverskyLoss(alpha=0.2, beta=0.8, gamma=1.3, from_logits=fl),
        lambda y, p, fl: ref_region(y, p, fl, "tversky", alpha=0.2, beta=0.8, gamma=1.3),
    ),
    "lovasz": (lambda fl: L.LovaszSoftmaxLoss(from_logits=fl), ref_lovasz),
}


def make_batch(seed, n=2, h=10, w=12, c=C, ignore_frac=0.15, absent_class=True):
    rng = np.random.default_rng(seed)
    high = c - 1 if absent_class else c  # the last class is absent, so "present" matters
    y = rng.integers(0, high, (n, h, w))
    y[rng.random((n, h, w)) < ignore_frac] = IGNORE
    logits = (rng.normal(size=(n, h, w, c)) * 2.0).astype(np.float32)
    return y, logits


def as_input(y, y_pred_logits, label_shape, from_logits):
    labels = y[..., None] if label_shape == "nhw1" else y
    if from_logits:
        return labels, y_pred_logits
    return labels, np_softmax(y_pred_logits).astype(np.float32)


# --------------------------------------------------------------------------- value tests


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("label_shape", ["nhw", "nhw1"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_loss_matches_numpy_reference(case, label_shape, from_logits):
    factory, ref = CASES[case]
    y, logits = make_batch(seed=sorted(CASES).index(case))
    labels, y_pred = as_input(y, logits, label_shape, from_logits)
    loss = factory(from_logits)
    got = float(loss(labels, y_pred))
    want = ref(y, y_pred, from_logits)
    assert np.isfinite(got)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    # The graph path (what fit uses) must agree with eager.
    np.testing.assert_allclose(float(tf.function(loss)(labels, y_pred)), got, rtol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_under_xla_matches_reference(case):
    # Keras compiles the train step with XLA by default on GPU; dynamic shapes can go wrong there.
    factory, ref = CASES[case]
    y, logits = make_batch(seed=sorted(CASES).index(case))
    got = float(tf.function(factory(True), jit_compile=True)(y[..., None], logits))
    np.testing.assert_allclose(got, ref(y, logits, True), rtol=2e-5, atol=1e-6)


BINARY_CASES = {
    "ce": (lambda fl: L.CrossEntropy(from_logits=fl), ref_bce),
    "focal": (lambda fl: L.FocalLoss(gamma=2.0, alpha=0.25, from_logits=fl), None),
    "dice": (lambda fl: L.DiceLoss(from_logits=fl), lambda y, p, fl: ref_region(y, p, fl, "dice")),
    "jaccard": (
        lambda fl: L.JaccardLoss(from_logits=fl),
        lambda y, p, fl: ref_region(y, p, fl, "jaccard"),
    ),
    "tversky": (
        lambda fl: L.TverskyLoss(from_logits=fl),
        lambda y, p, fl: ref_region(y, p, fl, "tversky"),
    ),
    "lovasz": (lambda fl: L.LovaszSoftmaxLoss(from_logits=fl), ref_lovasz),
}


def ref_binary_focal(y, v, from_logits, gamma=2.0, alpha=0.25):
    y = y.reshape(-1)
    v = v.reshape(-1).astype(np.float64)
    keep = y != IGNORE
    t, v = y[keep], v[keep]
    s = np_sigmoid(v) if from_logits else v
    pt = np.where(t == 1, s, 1 - s)
    log_pt = (
        np.where(t == 1, -np.logaddexp(0, -v), -np.logaddexp(0, v))
        if from_logits
        else np.log(np.clip(pt, 1e-7, 1))
    )
    a = np.where(t == 1, alpha, 1 - alpha)
    return float(np.mean(-a * (1 - pt) ** gamma * log_pt))


BINARY_CASES["focal"] = (BINARY_CASES["focal"][0], ref_binary_focal)


@pytest.mark.parametrize("case", sorted(BINARY_CASES))
@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_mode_one_channel(case, from_logits):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, (2, 9, 11))
    y[rng.random(y.shape) < 0.2] = IGNORE
    z = rng.normal(size=(2, 9, 11, 1)).astype(np.float32) * 2
    y_pred = z if from_logits else np_sigmoid(z).astype(np.float32)
    factory, ref = BINARY_CASES[case]
    got = float(factory(from_logits)(y[..., None], y_pred))
    np.testing.assert_allclose(got, ref(y, y_pred, from_logits), rtol=2e-5, atol=1e-6)


def test_binary_region_loss_penalises_false_positives_without_foreground():
    y = np.zeros((1, 8, 8), np.int32)
    low = np.full((1, 8, 8, 1), 0.05, np.float32)
    high = np.full((1, 8, 8, 1), 0.6, np.float32)
    for loss in (L.DiceLoss(), L.JaccardLoss(), L.LovaszSoftmaxLoss()):
        assert float(loss(y, high)) > float(loss(y, low)) > 0.0


def test_explicit_modes_are_checked():
    y, logits = make_batch(0)
    with pytest.raises(ValueError, match="one-channel"):
        L.DiceLoss(mode="binary")(y, logits)
    with pytest.raises(ValueError, match="mode must be one of"):
        L.DiceLoss(mode="sigmoid")
    with pytest.raises(ValueError, match="one channel per class"):
        L.CrossEntropy(mode="multiclass")(y[..., None] % 2, logits[..., :1])


def test_sample_weight_per_sample_and_per_pixel():
    y, logits = make_batch(3)
    probs = np_softmax(logits).astype(np.float32)
    per_sample = np.array([0.25, 2.0], np.float32)
    per_pixel = np.random.default_rng(3).random(y.shape).astype(np.float32)
    for sw in (per_sample, per_pixel):
        got = float(L.CrossEntropy()(y, probs, sample_weight=sw))
        np.testing.assert_allclose(got, ref_ce(y, probs, False, sample_weight=sw), rtol=2e-5)
        got = float(L.DiceLoss()(y, probs, sample_weight=sw))
        np.testing.assert_allclose(
            got, ref_region(y, probs, False, "dice", sample_weight=sw), rtol=2e-5
        )
    # Uniform weights change nothing: the mean is normalised by the weights.
    uniform = L.CrossEntropy()(y, probs, sample_weight=np.array([3.0, 3.0]))
    np.testing.assert_allclose(float(uniform), float(L.CrossEntropy()(y, probs)), rtol=1e-6)


def test_hard_predictions_give_one_minus_iou_and_dice():
    # On one-hot predictions the Lovasz extension equals the Jaccard loss and soft Dice (smooth=0)
    # equals hard Dice; both are checked from the confusion counts directly.
    y, logits = make_batch(11, absent_class=False)
    pred = logits.argmax(-1)
    onehot = np.eye(C, dtype=np.float32)[pred]
    keep = y != IGNORE
    ious, dices = [], []
    for c in range(C):
        a, b = (y == c) & keep, (pred == c) & keep
        ious.append((a & b).sum() / (a | b).sum())
        dices.append(2 * (a & b).sum() / (a.sum() + b.sum()))
    np.testing.assert_allclose(
        float(L.LovaszSoftmaxLoss()(y, onehot)), 1 - np.mean(ious), rtol=1e-5
    )
    np.testing.assert_allclose(
        float(L.DiceLoss(smooth=0.0)(y, onehot)), 1 - np.mean(dices), rtol=1e-5
    )
    np.testing.assert_allclose(
        float(L.JaccardLoss(smooth=0.0)(y, onehot)), 1 - np.mean(ious), rtol=1e-5
    )


def test_tversky_with_equal_weights_is_dice():
    y, logits = make_batch(5)
    np.testing.assert_allclose(
        float(L.TverskyLoss(alpha=0.5, beta=0.5, smooth=0.0, from_logits=True)(y, logits)),
        float(L.DiceLoss(smooth=0.0, from_logits=True)(y, logits)),
        rtol=1e-6,
    )


def test_ohem_keeps_everything_when_min_kept_exceeds_valid_pixels():
    y, logits = make_batch(6)
    np.testing.assert_allclose(
        float(L.OhemCrossEntropy(threshold=0.01, min_kept=10**6, from_logits=True)(y, logits)),
        float(L.CrossEntropy(from_logits=True)(y, logits)),
        rtol=1e-6,
    )


# --------------------------------------------------------------------------- ignore handling


@pytest.mark.parametrize("case", sorted(CASES))
def test_ignored_pixels_have_no_influence_and_no_gradient(case):
    y, logits = make_batch(21)
    loss = CASES[case][0](True)
    changed = logits.copy()
    changed[y == IGNORE] = np.random.default_rng(0).normal(size=changed[y == IGNORE].shape) * 50
    np.testing.assert_allclose(float(loss(y, changed)), float(loss(y, logits)), rtol=1e-6)
    x = tf.Variable(logits)
    with tf.GradientTape() as tape:
        value = loss(y, x)
    grad = tape.gradient(value, x).numpy()
    assert np.all(np.isfinite(grad))
    assert np.abs(grad[y == IGNORE]).max() == 0.0
    assert np.abs(grad[y != IGNORE]).max() > 0.0


@pytest.mark.parametrize("case", sorted(CASES))
def test_all_ignored_batch_gives_zero_not_nan(case):
    y = np.full((2, 4, 4), IGNORE)
    x = tf.Variable(np.random.default_rng(1).normal(size=(2, 4, 4, C)).astype(np.float32))
    with tf.GradientTape() as tape:
        value = CASES[case][0](True)(y, x)
    assert float(value) == 0.0
    assert np.all(np.isfinite(tape.gradient(value, x).numpy()))


def test_out_of_range_label_is_a_clear_error():
    y, logits = make_batch(2)
    y[0, 0, 0] = 9
    with pytest.raises(ValueError, match=r"\[0, 4\).*ignore_index=255.*9"):
        L.CrossEntropy(from_logits=True)(y, logits)
    with pytest.raises(tf.errors.InvalidArgumentError, match="9"):
        tf.function(L.DiceLoss(from_logits=True))(y, logits)
    # XLA drops the assert; the bad pixel is then left out exactly like an ignored one.
    xla = tf.function(L.CrossEntropy(from_logits=True), jit_compile=True)(y, logits)
    np.testing.assert_allclose(
        float(xla), ref_ce(np.where(y == 9, IGNORE, y), logits, True), rtol=2e-5
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="class_weights has 3 entries"):
        L.CrossEntropy(class_weights=[1, 2, 3])(*make_batch(0))
    with pytest.raises(ValueError, match="one-hot"):
        L.CrossEntropy()(np.zeros((1, 4, 4, 3)), np.ones((1, 4, 4, 3), np.float32) / 3)
    with pytest.raises(ValueError, match="classes must be one of"):
        L.DiceLoss(classes="some")
    with pytest.raises(ValueError, match="Unknown loss 'dise'.*dice"):
        L.get("dise")


def test_mixed_precision_predictions_are_computed_in_float32():
    y, logits = make_batch(8)
    for case in ("ce", "dice", "lovasz", "ohem"):
        loss = CASES[case][0](True)
        half = loss(y, tf.constant(logits, tf.float16))
        assert half.dtype == tf.float32
        ref = CASES[case][1](y, logits.astype(np.float16).astype(np.float32), True)
        np.testing.assert_allclose(float(half), ref, rtol=1e-4)


# --------------------------------------------------------------------------- composition


def test_composition_values_and_structure():
    y, logits = make_batch(9)
    ce, dice, focal = (
        L.CrossEntropy(from_logits=True),
        L.DiceLoss(from_logits=True),
        L.FocalLoss(from_logits=True),
    )
    v_ce, v_dice, v_focal = (float(l(y, logits)) for l in (ce, dice, focal))

    combo = ce + 0.5 * dice
    assert isinstance(combo, L.CombinedLoss) and combo.weights == [1.0, 0.5]
    np.testing.assert_allclose(float(combo(y, logits)), v_ce + 0.5 * v_dice, rtol=1e-6)

    np.testing.assert_allclose(float((dice * 0.5)(y, logits)), 0.5 * v_dice, rtol=1e-6)
    nested = 2 * (combo + focal)  # flattens: 2 ce + 1 dice + 2 focal
    assert [type(l) for l in nested.losses] == [L.CrossEntropy, L.DiceLoss, L.FocalLoss]
    assert nested.weights == [2.0, 1.0, 2.0]
    np.testing.assert_allclose(float(nested(y, logits)), 2 * v_ce + v_dice + 2 * v_focal, rtol=1e-6)
    np.testing.assert_allclose(float(sum([ce, dice])(y, logits)), v_ce + v_dice, rtol=1e-6)
    with pytest.raises(TypeError):
        ce + "dice"
    with pytest.raises(TypeError):
        ce * ce


@pytest.mark.parametrize(
    "loss",
    [
        L.CrossEntropy(class_weights=[1, 2, 3, 4], label_smoothing=0.1, ignore_index=0),
        L.OhemCrossEntropy(threshold=0.6, min_kept=7, from_logits=True),
        L.FocalLoss(gamma=1.0, alpha=[0.1, 0.2, 0.3, 0.4]),
        L.FocalLoss(alpha=0.25, mode="multiclass"),
        L.DiceLoss(smooth=0.0, classes="all"),
        L.JaccardLoss(smooth=2.0),
        L.TverskyLoss(alpha=0.4, beta=0.6, gamma=0.75),
        L.LovaszSoftmaxLoss(classes="all"),
        L.CrossEntropy() + 0.5 * L.DiceLoss(),
        L.JaccardLoss() * 0.25,
    ],
    ids=lambda l: type(l).__name__,
)
def test_serialization_round_trip(loss):
    config = keras.saving.serialize_keras_object(loss)
    assert config["registered_name"].startswith("kerasseg>")
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    y, logits = make_batch(4)
    probs = np_softmax(logits).astype(np.float32)
    if getattr(loss, "ignore_index", IGNORE) == 0:
        y = np.where(y == IGNORE, 0, y)
    np.testing.assert_allclose(float(restored(y, probs)), float(loss(y, probs)), rtol=1e-6)


# --------------------------------------------------------------------------- training


def _tiny_problem(channels):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 16, 16, 3)).astype(np.float32)
    if channels == 1:
        y = (x[..., 0] + 0.5 * x[..., 1] > 0).astype(np.int32)
    else:
        y = np.argmax(x @ rng.normal(size=(3, channels)), axis=-1).astype(np.int32)
    y[:, :2, :] = IGNORE
    return x, y


TRAIN_CASES = [  # name, channels, model outputs logits?, loss
    ("ce", 3, True, lambda: L.CrossEntropy(from_logits=True)),
    ("ce_smooth", 3, False, lambda: L.CrossEntropy(label_smoothing=0.1, class_weights=[1, 2, 1])),
    ("ohem", 3, True, lambda: L.OhemCrossEntropy(min_kept=200, from_logits=True)),
    ("focal", 3, True, lambda: L.FocalLoss(from_logits=True)),
    ("dice", 3, False, lambda: L.DiceLoss()),
    ("jaccard", 3, True, lambda: L.JaccardLoss(from_logits=True)),
    ("tversky", 3, True, lambda: L.TverskyLoss(from_logits=True)),
    ("lovasz", 3, True, lambda: L.LovaszSoftmaxLoss(from_logits=True)),
    (
        "combo",
        3,
        True,
        lambda: L.CrossEntropy(from_logits=True) + 0.5 * L.DiceLoss(from_logits=True),
    ),
    ("binary_dice", 1, True, lambda: L.DiceLoss(from_logits=True)),
    ("binary_bce", 1, False, lambda: L.CrossEntropy()),
    ("binary_lovasz", 1, True, lambda: L.LovaszSoftmaxLoss(from_logits=True)),
]


@pytest.mark.parametrize(
    "name,channels,from_logits,factory", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES]
)
def test_loss_decreases_when_training_a_tiny_model(name, channels, from_logits, factory):
    x, y = _tiny_problem(channels)
    loss_fn = factory()
    activation = None if from_logits else ("sigmoid" if channels == 1 else "softmax")
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(channels, 3, padding="same", activation=activation),
        ]
    )
    opt = keras.optimizers.Adam(0.05)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = loss_fn(y, model(x))
        grads = tape.gradient(value, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        return value, finite

    history = []
    for _ in range(20):
        value, finite = step()
        assert bool(finite), f"non-finite gradient for {name}"
        history.append(float(value))
    assert np.all(np.isfinite(history))
    assert history[-1] < 0.8 * history[0], history
