"""kerasseg.training: the poly schedule, optimizers, the NaN guard, resuming and distribution.

The multi-process tests (resume after a kill, two localhost workers) and the two-device
mirrored run are marked ``slow``; each finishes in well under a minute on two cores.
"""

import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasseg import losses, metrics, training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def poly_reference(step, initial, total, end, power, warmup):
    """The schedule written out with numpy, independently of the implementation."""
    step = np.asarray(step, np.float64)
    decay = (initial - end) * (
        1 - np.clip(step - warmup, 0, total - warmup) / (total - warmup)
    ) ** power + end
    if warmup:
        return np.where(step < warmup, initial * (step + 1) / warmup, decay)
    return decay


# --------------------------------------------------------------------------- schedule


@pytest.mark.parametrize("warmup", [0, 10])
def test_poly_decay_matches_numpy_formula(warmup):
    schedule = training.PolyDecay(0.01, 100, end_learning_rate=1e-4, power=0.9, warmup_steps=warmup)
    steps = np.array([0, 1, 5, 9, 10, 11, 37, 50, 99, 100, 150])
    got = np.array([float(schedule(s)) for s in steps])
    want = poly_reference(steps, 0.01, 100, 1e-4, 0.9, warmup)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
    # Landmarks: the peak after warmup, the floor at and after the end.
    assert float(schedule(warmup)) == pytest.approx(0.01, rel=1e-6)
    assert float(schedule(100)) == pytest.approx(1e-4, rel=1e-5)
    assert float(schedule(10_000)) == pytest.approx(1e-4, rel=1e-5)
    if warmup:
        assert float(schedule(0)) == pytest.approx(0.01 / warmup, rel=1e-5)
        assert np.all(np.diff([float(schedule(s)) for s in range(warmup)]) > 0)


def test_poly_decay_default_end_and_validation():
    assert training.PolyDecay(0.02, 50).end_learning_rate == pytest.approx(2e-4)
    with pytest.raises(ValueError, match="decay_steps"):
        training.PolyDecay(0.01, 0)
    with pytest.raises(ValueError, match="warmup_steps"):
        training.PolyDecay(0.01, 10, warmup_steps=10)


def test_poly_decay_config_round_trip():
    schedule = training.PolyDecay(0.05, 200, end_learning_rate=1e-3, power=2.0, warmup_steps=20)
    config = keras.optimizers.schedules.serialize(schedule)
    clone = keras.optimizers.schedules.deserialize(config)
    assert isinstance(clone, training.PolyDecay)
    assert clone.get_config() == schedule.get_config()
    for step in (0, 19, 20, 100, 250):
        assert float(clone(step)) == pytest.approx(float(schedule(step)), rel=1e-7)


def test_optimizer_with_schedule_survives_model_save(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    opt = training.make_optimizer("sgd", total_steps=40, warmup_steps=5)
    model.compile(opt, loss="mse")
    x, y = np.ones((8, 4), np.float32), np.zeros((8, 2), np.float32)
    model.fit(x, y, batch_size=4, epochs=3, verbose=0)  # 6 steps
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: the schedule is registered
    lr = loaded.optimizer._learning_rate
    assert isinstance(lr, training.PolyDecay)
    assert lr.get_config() == opt._learning_rate.get_config()
    assert int(loaded.optimizer.iterations.numpy()) == 6
    want = poly_reference(6, 0.01, 40, 1e-4, 0.9, 5)
    assert float(loaded.optimizer.learning_rate) == pytest.approx(float(want), rel=1e-5)


def test_make_optimizer_recipe_defaults():
    sgd = training.make_optimizer("sgd", total_steps=100)
    assert isinstance(sgd, keras.optimizers.SGD)
    assert sgd.momentum == pytest.approx(0.9)
    assert sgd.weight_decay == pytest.approx(5e-4)
    assert sgd._learning_rate.initial_learning_rate == pytest.approx(0.01)
    assert sgd._learning_rate.end_learning_rate == pytest.approx(1e-4)
    adamw = training.make_optimizer("adamw", total_steps=100)
    assert isinstance(adamw, keras.optimizers.AdamW)
    assert adamw.weight_decay == pytest.approx(0.01)
    assert adamw._learning_rate.initial_learning_rate == pytest.approx(1e-4)
    adam = training.make_optimizer("adam", learning_rate=0.003, weight_decay=None)
    assert isinstance(adam, keras.optimizers.Adam) and adam.weight_decay is None
    assert float(adam.learning_rate) == pytest.approx(0.003)
    with pytest.raises(ValueError, match="sgd, adamw, adam"):
        training.make_optimizer("rmsprop")


def test_strategy_names_and_precision():
    assert training.get_strategy("none") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="none, mirrored, multiworker, tpu"):
        training.get_strategy("horovod")
    assert training.precision_policy(False) == "float32"
    expected = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    assert training.precision_policy(True) == expected


def test_validation_batches_pad_edges_like_predict():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (40, 70, 3)).astype(np.uint8)
    mask = rng.integers(0, 4, (40, 70)).astype(np.int32)
    mask[0, 0] = 255
    ds = tf.data.Dataset.from_tensors((image, mask))
    ((x, y),) = list(training.validation_batches(ds).as_numpy_iterator())
    assert x.shape == (1, 64, 96, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(
        x[0], np.pad(image, ((0, 24), (0, 26), (0, 0)), mode="edge").astype(np.float32)
    )
    assert y.shape == (1, 64, 96)
    np.testing.assert_array_equal(y[0, :40, :70], mask)
    assert np.all(y[0, 40:] == 255) and np.all(y[0, :, 70:] == 255)
    # Fixed-size batches go through data.prepare (black padding, also ignored).
    ((x, y),) = list(
        training.validation_batches(ds, batch_size=2, crop_size=(64, 96)).as_numpy_iterator()
    )
    assert x.shape == (1, 64, 96, 3) and np.all(y[0, 40:] == 255)


# --------------------------------------------------------------------------- NaN guard


def _tiny_model(num_classes=3):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(num_classes, 1, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def _tiny_data(n=12, size=16, num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, (n, size, size)).astype(np.int32)
    x = (y[..., None] * 80 + rng.integers(0, 40, (n, size, size, 3))).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(4)


class NaNAfter(keras.losses.Loss):
    """Cross-entropy that turns NaN once the optimizer has made ``at`` updates."""

    def __init__(self, iterations, at):
        super().__init__(name="nan_after")
        self.iterations, self.at = iterations, at
        self.base = losses.CrossEntropy()

    def call(self, y_true, y_pred):
        value = self.base(y_true, y_pred)
        return tf.where(self.iterations >= self.at, tf.constant(float("nan")), value)


class KeepWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.by_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = [w.copy() for w in self.model.get_weights()]


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    model = _tiny_model()
    opt = keras.optimizers.Adam(1e-2)
    # 3 batches per epoch: updates 0..5 are epochs 1-2; the 8th update (epoch 3) goes NaN.
    model.compile(opt, loss=NaNAfter(opt.iterations, 7), metrics=[metrics.MeanIoU(3)])
    data = _tiny_data()
    keep = KeepWeights()
    result = training.fit(
        model,
        data,
        data,
        output=str(tmp_path),
        epochs=6,
        callbacks=[keep],
        tensorboard=False,
        verbose=0,
    )
    assert result.diverged
    assert "epoch 3, batch 2" in result.diverged_at
    assert "NaN" in capsys.readouterr().err
    # Stopped in epoch 3: no epochs after it ran.
    assert len(result.history["loss"]) == 3
    assert math.isnan(result.history["loss"][-1])
    # last.keras holds exactly the weights at the end of epoch 2, all finite.
    last = keras.models.load_model(str(tmp_path / "last.keras"), compile=False)
    for saved, kept in zip(last.get_weights(), keep.by_epoch[1]):
        assert np.all(np.isfinite(saved))
        np.testing.assert_array_equal(saved, kept)
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["epoch"] in (1, 2) and math.isfinite(best["value"])
    assert np.all(
        [
            np.isfinite(w).all()
            for w in keras.models.load_model(
                str(tmp_path / "best.keras"), compile=False
            ).get_weights()
        ]
    )
    # The backup stays at the last good epoch, so the run can be resumed from it.
    assert training.backup_epoch(str(tmp_path)) == 2
    assert os.path.exists(tmp_path / "curves.png")


def test_fit_refuses_finished_run_and_needs_compile(tmp_path):
    model = _tiny_model()
    with pytest.raises(ValueError, match="compile"):
        training.fit(model, _tiny_data(), output=str(tmp_path), epochs=1)
    (tmp_path / "last.keras").write_bytes(b"earlier run")
    model.compile("adam", loss=losses.CrossEntropy(), metrics=[metrics.MeanIoU(3)])
    with pytest.raises(FileExistsError, match="overwrite"):
        training.fit(model, _tiny_data(), output=str(tmp_path), epochs=1, verbose=0)
    assert (tmp_path / "last.keras").read_bytes() == b"earlier run"


def test_fit_without_validation_keeps_the_lowest_training_loss(tmp_path):
    keras.utils.set_random_seed(2)
    model = _tiny_model()
    model.compile(
        keras.optimizers.Adam(1e-2), loss=losses.CrossEntropy(), metrics=[metrics.MeanIoU(3)]
    )
    result = training.fit(
        model, _tiny_data(), output=str(tmp_path), epochs=2, tensorboard=False, verbose=0
    )
    record = json.loads((tmp_path / "best.json").read_text())
    assert record["monitor"] == "loss" and result.monitor == "loss"
    losses_seen = result.history["loss"]
    assert record["value"] == pytest.approx(min(losses_seen))
    assert record["epoch"] == 1 + int(np.argmin(losses_seen))
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert not [c for c in rows[0] if c.startswith("val_")]  # no NA columns
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    # The learning rate is logged each epoch.
    assert float(rows[0]["learning_rate"]) == pytest.approx(1e-2)
    assert not (tmp_path / "backup").exists()  # removed once the run finished


def test_train_api_on_shapes(tmp_path):
    result = training.train(
        "unet",
        "shapes",
        output=str(tmp_path / "run"),
        backbone=None,
        weights=None,
        model_options={"filters": 4, "depth": 2},
        dataset_options={"num_images": 8},
        epochs=2,
        batch_size=4,
        crop_size=32,
        steps_per_epoch=2,
        optimizer="adam",
        learning_rate=1e-2,
        val_batch_size=4,
        val_crop_size=128,
        tensorboard=False,
        verbose=0,
    )
    assert not result.diverged
    out = tmp_path / "run"
    for name in ("best.keras", "last.keras", "history.csv", "curves.png", "run.json"):
        assert (out / name).exists(), name
    run = json.loads((out / "run.json").read_text())
    assert run["class_names"] == ["background", "circle", "rectangle", "triangle"]
    assert run["num_classes"] == 4 and run["dataset"] == "shapes"
    model = keras.models.load_model(str(out / "best.keras"))
    assert model.output_shape[-1] == 4
    history = training.read_history(str(out / "history.csv"))
    assert history["epoch"] == [0, 1]
    assert max(history["val_mean_iou"]) == pytest.approx(result.best_value)
    # A second run into the finished folder is refused, the files are left alone.
    with pytest.raises(FileExistsError):
        training.train(
            "unet",
            "shapes",
            output=str(out),
            backbone=None,
            weights=None,
            epochs=1,
            dataset_options={"num_images": 8},
            batch_size=4,
            crop_size=32,
        )


def test_evaluate_names_classes_by_the_model_else_the_dataset():
    from kerasseg.models.segmenter import Segmenter

    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(4, 1, activation="softmax")(inputs)
    dataset_names = ["background", "circle", "rectangle", "triangle"]
    plain = keras.Model(inputs, outputs)
    assert training.class_names_for(plain, dataset_names) == dataset_names
    named = Segmenter(inputs, outputs, class_names=["a", "b", "c", "d"])
    assert training.class_names_for(named, dataset_names) == ["a", "b", "c", "d"]
    # A Segmenter with only default names, or names for other classes, takes the dataset's.
    assert training.class_names_for(Segmenter(inputs, outputs), dataset_names) == dataset_names
    assert training.class_names_for(named, ["x", "y"]) == ["x", "y"]
    scores = training.evaluate(
        named, "shapes", split="val", steps=1, verbose=0, dataset_options={"num_images": 2}
    )
    assert [c["name"] for c in scores["classes"]] == ["a", "b", "c", "d"]


def test_train_mixed_precision_restores_the_global_policy(tmp_path):
    before = keras.config.dtype_policy().name
    result = training.train(
        "unet",
        "shapes",
        output=str(tmp_path / "run"),
        backbone=None,
        weights=None,
        model_options={"filters": 4, "depth": 2},
        dataset_options={"num_images": 4},
        epochs=1,
        batch_size=4,
        crop_size=32,
        steps_per_epoch=1,
        optimizer="adam",
        val_steps=1,
        mixed_precision=True,
        tensorboard=False,
        verbose=0,
    )
    policy = training.precision_policy(True)
    assert result.model.get_layer("enc1_1_conv").dtype_policy.name == policy
    assert result.model.outputs[0].dtype == "float32"  # the head stays in float32
    assert keras.config.dtype_policy().name == before
    assert np.isfinite(result.history["loss"][0])
    loaded = keras.models.load_model(result.last_path)
    assert loaded.get_layer("enc1_1_conv").dtype_policy.name == policy


def test_train_with_xla_and_mixed_precision_on_a_nearest_upsampling_unet(tmp_path):
    """``--jit-compile --mixed-precision`` on a decoder with nearest upsampling (XLA has no
    kernel for the native nearest resize's gradient; the layers switch forms under XLA). The
    paper encoder, small: a MobileNetV2 one cost 48 s of XLA compilation and tests no more."""
    result = training.train(
        "unet",
        "shapes",
        output=str(tmp_path / "run"),
        backbone=None,
        weights=None,
        model_options={"filters": 4, "depth": 2, "upsampling": "nearest"},
        dataset_options={"num_images": 4},
        epochs=1,
        batch_size=2,
        crop_size=32,
        steps_per_epoch=2,
        optimizer="adam",
        val_steps=1,
        mixed_precision=True,
        jit_compile=True,
        tensorboard=False,
        verbose=0,
    )
    assert result.model.jit_compile is True
    assert result.model.builder_args["upsampling"] == "nearest"
    assert np.all(np.isfinite(result.history["loss"]))
    assert os.path.exists(result.last_path)


def test_train_builds_a_four_channel_model_for_rgbd(tmp_path):
    """NYUDv2 with depth (its on-disk layout, written here) trains a 4-channel model."""
    import cv2

    rng = np.random.default_rng(3)
    for split, stems in (("train", ("a", "b")), ("test", ("c",))):
        for stem in stems:
            folder = tmp_path / "NYUDv2" / split
            for kind in ("image", "depth", "label"):
                os.makedirs(folder / kind, exist_ok=True)
            cv2.imwrite(
                str(folder / "image" / f"{stem}.png"),
                rng.integers(0, 256, (40, 48, 3), dtype=np.uint8),
            )
            cv2.imwrite(
                str(folder / "depth" / f"{stem}.png"),
                rng.integers(0, 9000, (40, 48), dtype=np.uint16),
            )
            cv2.imwrite(
                str(folder / "label" / f"{stem}.png"), rng.integers(0, 41, (40, 48), dtype=np.uint8)
            )
    result = training.train(
        "unet",
        "nyudv2",
        output=str(tmp_path / "run"),
        data_dir=str(tmp_path),
        backbone="mobilenetv2",
        weights=None,
        dataset_options={"with_depth": True},
        val_split="test",
        epochs=1,
        batch_size=2,
        crop_size=32,
        steps_per_epoch=1,
        optimizer="adam",
        tensorboard=False,
        verbose=0,
    )
    assert result.model.input_shape == (None, None, None, 4)
    assert result.model.output_shape[-1] == 40
    assert np.isfinite(result.history["loss"][0])


def test_tensorboard_logs_when_installed(tmp_path):
    pytest.importorskip("tensorboard")
    model = _tiny_model()
    model.compile("adam", loss=losses.CrossEntropy(), metrics=[metrics.MeanIoU(3)])
    result = training.fit(model, _tiny_data(), output=str(tmp_path), epochs=1, verbose=0)
    assert result.logs_dir == str(tmp_path / "logs")
    events = [f for _, _, files in os.walk(result.logs_dir) for f in files]
    assert any(f.startswith("events.out.tfevents") for f in events)


def test_train_rejects_bad_names(tmp_path):
    with pytest.raises(ValueError, match="Valid models"):
        training.train("unet_xl", "shapes", output=str(tmp_path))
    with pytest.raises(ValueError, match="registered datasets"):
        training.train("unet", "shapez", output=str(tmp_path))
    with pytest.raises(ValueError, match="valid strategies"):
        training.train("unet", "shapes", output=str(tmp_path), strategy="ring")
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- subprocesses

TINY_TRAIN = [
    "train",
    "--model",
    "unet",
    "--backbone",
    "none",
    "--weights",
    "none",
    "--model-option",
    "filters=4",
    "--model-option",
    "depth=2",
    "--dataset",
    "shapes",
    "--dataset-option",
    "num_images=8",
    "--batch-size",
    "4",
    "--crop-size",
    "32",
    "--steps-per-epoch",
    "3",
    "--val-batch-size",
    "4",
    "--val-crop-size",
    "128",
    "--optimizer",
    "adam",
    "--no-tensorboard",
]


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def _history_epochs(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f) if r.get("epoch", "").isdigit()]


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch(tmp_path):
    out = str(tmp_path / "run")
    command = [sys.executable, "-m", "kerasseg.cli", *TINY_TRAIN, "--epochs", "4", "--output", out]
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=str(tmp_path)
    )
    history = os.path.join(out, "history.csv")
    deadline = time.time() + 150
    try:
        # Poll for the backup of epoch 2 (written after the epoch's other files).
        while (training.backup_epoch(out) or 0) < 2:
            assert first.poll() is None, open(tmp_path / "first.log").read()
            assert time.time() < deadline, "the first run never finished 2 epochs"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(30)
        log.close()
    done = training.backup_epoch(out)
    # The kill lands after epoch 2's files; it may have finished epoch 3 as well.
    assert done in (2, 3), open(tmp_path / "first.log").read()
    assert os.path.exists(os.path.join(out, "last.keras"))

    second = subprocess.run(
        command, capture_output=True, text=True, env=_env(), cwd=str(tmp_path), timeout=150
    )
    text = second.stdout + second.stderr
    assert second.returncode == 0, text
    assert f"after epoch {done} of 4" in text
    assert f"Epoch {done + 1}/4" in text
    for earlier in range(1, done + 1):
        assert f"Epoch {earlier}/4" not in text
    assert f"trained {4 - done} epoch(s)" in text
    assert _history_epochs(history) == [0, 1, 2, 3]
    assert not os.path.exists(os.path.join(out, "backup"))
    # The optimizer's step count came back with the weights: the poly schedule (Adam's 1e-3
    # over 4 x 3 steps) carries on where the killed run left it.
    rates = training.read_history(history)["learning_rate"]
    want = poly_reference(np.arange(1, 5) * 3, 1e-3, 12, 1e-5, 0.9, 0)
    np.testing.assert_allclose(rates, want, rtol=1e-4)


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from kerasseg import training
    # tf.distribute draws the pipeline's per-iteration randomness one iteration later than a
    # plain loop does, so the comparison uses data with no random choice left: 32 px images,
    # 32 px crops, no flips, colour changes or shuffling.
    FIXED = {"scale_range": None, "flip": False, "photometric": False, "shuffle": False}
    out = {}
    for strategy in ("none", "mirrored"):
        result = training.train(
            "unet", "shapes", output=sys.argv[1] + "/" + strategy, backbone=None,
            weights=None, model_options={"filters": 4, "depth": 2, "batch_norm": False},
            dataset_options={"num_images": 8, "min_size": 32, "max_size": 32}, epochs=2,
            batch_size=4, crop_size=32, steps_per_epoch=2, optimizer="sgd", learning_rate=0.05,
            augment=FIXED, val_batch_size=4, val_crop_size=32,
            strategy=strategy, tensorboard=False, verbose=0)
        out[strategy] = {"replicas": result.model.distribute_strategy.num_replicas_in_sync,
                         "history": result.history,
                         "weights": [w.tolist() for w in result.model.get_weights()[:2]]}
    print("RESULT" + json.dumps(out))
""")


@pytest.mark.slow
def test_mirrored_on_two_devices_matches_one_device(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=240,
    )
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")]
    assert proc.returncode == 0 and line, proc.stdout + proc.stderr
    result = json.loads(line[0][len("RESULT") :])
    one, two = result["none"], result["mirrored"]
    assert one["replicas"] == 1 and two["replicas"] == 2
    for key in (
        "loss",
        "mean_iou",
        "pixel_accuracy",
        "val_loss",
        "val_mean_iou",
        "val_pixel_accuracy",
    ):
        np.testing.assert_allclose(
            two["history"][key], one["history"][key], rtol=1e-4, atol=1e-4, err_msg=key
        )
    for a, b in zip(one["weights"], two["weights"]):
        np.testing.assert_allclose(np.array(b), np.array(a), rtol=1e-4, atol=1e-5)
    assert (tmp_path / "mirrored" / "best.keras").exists()


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_two_workers_train_together_and_only_the_chief_writes(tmp_path):
    ports = _free_ports(2)
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "kerasseg.cli",
        *TINY_TRAIN,
        "--epochs",
        "1",
        "--strategy",
        "multiworker",
        "--output",
        str(out),
    ]
    workers, scratch = [], []
    for index in range(2):
        config = {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
        temp = tmp_path / f"tmp{index}"
        temp.mkdir()
        scratch.append(temp)
        log = open(tmp_path / f"worker{index}.log", "w")
        workers.append(
            (
                subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=str(tmp_path),
                    env=_env(TF_CONFIG=json.dumps(config), TMPDIR=str(temp)),
                ),
                log,
            )
        )
    try:
        codes = [proc.wait(timeout=150) for proc, _ in workers]
    finally:
        for proc, log in workers:
            if proc.poll() is None:
                proc.kill()
            log.close()
    logs = [open(tmp_path / f"worker{i}.log").read() for i in range(2)]
    assert codes == [0, 0], "\n\n".join(logs)
    assert "best validation mIoU" in logs[0]  # the chief reports the run
    assert "best validation mIoU" not in logs[1]
    for name in ("best.keras", "last.keras", "history.csv", "run.json"):
        assert (out / name).exists(), name
    assert _history_epochs(str(out / "history.csv")) == [0]
    # The follower wrote its copies into a temporary folder and removed it.
    assert not [p for p in scratch[1].iterdir() if p.name.startswith("kerasseg-worker-")]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["best.json", "best.keras", "curves.png", "history.csv", "last.keras", "run.json"]
    )
