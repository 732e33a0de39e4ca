"""Metrics and losses under tf.distribute.MirroredStrategy over two logical CPU devices.

Logical devices can only be configured before TensorFlow initialises its runtime, which the
other tests in the session have already done, so the comparison runs in a fresh interpreter.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

    import keras
    from kerasseg import losses as L, metrics as M

    C, IGNORE = 4, 255
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 12, 12, 3)).astype("float32")
    y_clean = np.argmax(x @ rng.normal(size=(3, C)), -1)
    y = y_clean.copy()
    # Uneven ignore pixels: the first images (first replica) lose many more than the others.
    y[:4][rng.random((4, 12, 12)) < 0.4] = IGNORE
    y[4:][rng.random((4, 12, 12)) < 0.05] = IGNORE

    def build():
        return keras.Sequential([keras.Input((12, 12, 3)),
                                 keras.layers.Conv2D(C, 3, padding="same", activation="softmax")])

    def metrics():
        return [M.PixelAccuracy(C), M.MeanPixelAccuracy(C), M.MeanIoU(C),
                M.FrequencyWeightedIoU(C), M.DiceScore(C), M.PerClassIoU(C), M.ConfusionMatrix(C)]

    keras.utils.set_random_seed(0)
    weights = build().get_weights()

    def run(strategy):
        out = {}
        with strategy.scope():
            model = build()
            model.set_weights(weights)
            # Learning rate 0: fit must report metrics of exactly these weights.
            model.compile(optimizer=keras.optimizers.SGD(0.0), loss=L.CrossEntropy(),
                          metrics=metrics())
        out["replicas"] = strategy.num_replicas_in_sync
        hist = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history
        out["fit"] = {k: np.asarray(v[-1]).tolist() for k, v in hist.items() if k != "loss"}
        out["evaluate"] = {k: np.asarray(v).tolist() for k, v in model.evaluate(
            x, y, batch_size=4, verbose=0, return_dict=True).items()}
        # Without ignore pixels every replica averages the same number of pixels, so the loss
        # must agree too (it would double if the per-replica loss were not scaled).
        out["clean_loss"] = model.evaluate(x, y_clean, batch_size=4, verbose=0,
                                           return_dict=True)["loss"]
        out["pred_labels"] = model.predict(x, batch_size=4, verbose=0).argmax(-1).tolist()
        # A real training run with cross-entropy on clean labels: the gradient of the global mean
        # equals the mean of the per-replica gradients, so the weights must end up the same.
        # (Region losses such as Dice are not means over pixels, so they would differ.)
        with strategy.scope():
            trained = build()
            trained.set_weights(weights)
            trained.compile(optimizer=keras.optimizers.SGD(0.5),
                            loss=L.CrossEntropy())
        trained.fit(x, y_clean, batch_size=8, epochs=3, shuffle=False, verbose=0)
        out["trained_weights"] = [w.tolist() for w in trained.get_weights()]
        return out

    single = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
    mirrored = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    print("RESULT" + json.dumps({"single": single, "mirrored": mirrored, "y": y.tolist(),
                                 "initial_weights": [w.tolist() for w in weights]}))
    """
)


def _nan_equal_close(a, b, **kw):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), equal_nan=True, **kw)


def test_mirrored_strategy_matches_one_device():
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="",
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    data = json.loads(line[len("RESULT") :])
    single, mirrored, y = data["single"], data["mirrored"], np.asarray(data["y"])

    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    np.testing.assert_array_equal(single["pred_labels"], mirrored["pred_labels"])

    valid = int((y != 255).sum())
    for phase in ("fit", "evaluate"):
        s, m = single[phase], mirrored[phase]
        assert set(s) == set(m) and {"mean_iou", "fw_iou", "dice", "confusion_matrix"} <= set(s)
        # Both replicas' pixels are in the matrix, not one replica's, not twice.
        assert np.sum(m["confusion_matrix"]) == valid
        for key in s:
            if key != "loss":
                _nan_equal_close(m[key], s[key], rtol=1e-6, err_msg=f"{phase}/{key}")

    # Independent check of the one-device figures from the predictions themselves.
    pred = np.asarray(single["pred_labels"])
    keep = y != 255
    cm = np.zeros((4, 4))
    np.add.at(cm, (y[keep], pred[keep]), 1)
    np.testing.assert_array_equal(single["evaluate"]["confusion_matrix"], cm)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    np.testing.assert_allclose(
        single["evaluate"]["mean_iou"],
        np.mean(np.diag(cm)[union > 0] / union[union > 0]),
        rtol=1e-6,
    )

    np.testing.assert_allclose(mirrored["clean_loss"], single["clean_loss"], rtol=1e-5)
    for ws, wm in zip(single["trained_weights"], mirrored["trained_weights"]):
        np.testing.assert_allclose(wm, ws, rtol=1e-4, atol=1e-6)
    moved = np.abs(np.asarray(single["trained_weights"][0]) - data["initial_weights"][0]).max()
    assert moved > 1e-2  # the comparison above is between weights that really trained
