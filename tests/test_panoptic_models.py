"""Panoptic FPN and Panoptic-DeepLab: both overfit four `shapes_panoptic` images to PQ >= 0.8,
and on those trained models: predict at any size (map and segments), the `.keras` round trip,
the SavedModel served without kerasseg, and the console script (demo, evaluate, predict).

Each model trains once per module (Adam on a cosine schedule, all four images in every batch:
the batch norms, from scratch, then hold the statistics of exactly the images scored)."""

import json
import os
import subprocess
import sys
import textwrap

import cv2
import keras
import numpy as np
import pytest

import kerasseg
from kerasseg import cli, export
from kerasseg.inference import predict
from kerasseg.training import panoptic_quality

THINGS, STUFF = (2, 3, 4), (0, 1)
COMMON = dict(backbone="mobilenetv2", weights=None, stuff_area=32)
MODELS = {
    "panoptic_deeplab": dict(
        aspp_filters=32,
        semantic_filters=32,
        instance_filters=32,
        instance_head_filters=16,
        semantic_projections=(16, 8),
        instance_projections=(16, 8),
        center_sigma=3.0,
        top_k=16,
    ),
    "panoptic_fpn": dict(
        fpn_filters=32,
        box_head_units=64,
        mask_head_filters=32,
        semantic_filters=32,
        groups=8,
        anchor_sizes=(16, 32, 64, 128, 256),
        rpn_pre_nms_test=200,
        rpn_post_nms_test=50,
        max_detections=20,
        training_config=dict(rpn_pre_nms_train=300, rpn_post_nms_train=100, roi_samples=64),
        seed=0,
    ),
}
STEPS = {"panoptic_deeplab": 180, "panoptic_fpn": 150}  # PQ 0.86-0.89 with oneDNN on and off


@pytest.fixture(scope="module")
def raw():
    return kerasseg.datasets.load("shapes_panoptic", split="train", num_images=4)


def _train(name, raw):
    keras.utils.set_random_seed(0)
    batches = kerasseg.data.prepare(raw, batch_size=4, crop_size=(64, 64), training=False)
    model = kerasseg.build(name, 5, thing_classes=THINGS, **COMMON, **MODELS[name])
    steps = STEPS[name]
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps))
    )
    model.fit(batches.cache().repeat(), steps_per_epoch=steps, epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def deeplab(raw):
    return _train("panoptic_deeplab", raw)


@pytest.fixture(scope="module")
def fpn(raw):
    return _train("panoptic_fpn", raw)


def test_registered_as_panoptic_builders():
    assert kerasseg.list_models(task="panoptic") == ["panoptic_deeplab", "panoptic_fpn"]
    for name in ("panoptic_deeplab", "panoptic_fpn"):
        assert getattr(kerasseg, name) is kerasseg.MODELS[name]


@pytest.mark.parametrize("name", ["panoptic_deeplab", "panoptic_fpn"])
def test_thing_classes_are_checked(name):
    build = kerasseg.MODELS[name]
    with pytest.raises(ValueError, match=r"thing_classes \[7\] are outside 0..4"):
        build(5, thing_classes=(2, 7), weights=None)
    with pytest.raises(ValueError, match="at least one class"):
        build(5, thing_classes=(), weights=None)


@pytest.mark.slow
def test_panoptic_deeplab_overfits_four_images_to_pq_0_8(deeplab, raw):
    report = panoptic_quality(deeplab, raw)
    assert report["all"]["pq"] >= 0.8, report
    assert report["all"]["classes"] == 5


@pytest.mark.slow
def test_panoptic_fpn_overfits_four_images_to_pq_0_8(fpn, raw):
    report = panoptic_quality(fpn, raw)
    assert report["all"]["pq"] >= 0.8, report
    assert report["all"]["classes"] == 5


def _check_result(result, shape, names):
    panoptic = result["panoptic"]
    assert panoptic.shape == shape and panoptic.dtype == np.int32
    segments = result["segments"]
    ids = sorted(s["id"] for s in segments)
    assert ids == sorted(int(v) for v in np.unique(panoptic) if v >= 0)
    assert sum(s["area"] for s in segments) == int((panoptic >= 0).sum())
    for s in segments:
        assert s["area"] == int((panoptic == s["id"]).sum())
        assert (s["class"], s["instance"]) == divmod(s["id"], 1000)
        assert s["is_thing"] == (s["class"] in THINGS)
        assert s["class_name"] == names[s["class"]]
        assert 0.0 <= s["score"] <= 1.0
        if not s["is_thing"]:
            assert s["instance"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("which", ["deeplab", "fpn"])
def test_predict_at_any_size(which, request, raw):
    model = request.getfixturevalue(which)
    names = kerasseg.models.describe(model)["class_names"]
    image = next(iter(raw))[0].numpy()[:50, :61]
    result = predict(model, image)
    _check_result(result, (50, 61), names)
    batch = predict(model, [image, image[:40]])
    np.testing.assert_array_equal(batch[0]["panoptic"], result["panoptic"])
    assert batch[1]["panoptic"].shape == (40, 61)
    with pytest.raises(ValueError, match="tile do not apply to a panoptic model"):
        predict(model, image, tile=32)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["deeplab", "fpn"])
def test_keras_round_trip(which, request, raw, tmp_path):
    model = request.getfixturevalue(which)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert kerasseg.models.describe(loaded) == kerasseg.models.describe(model)
    images = np.stack([image.numpy() for image, _ in raw][:1]).astype(np.float32)
    np.testing.assert_array_equal(
        loaded(images)["panoptic"].numpy(), model(images)["panoptic"].numpy()
    )


SERVE_SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["kerasseg"] = None  # the served model must not need kerasseg
    import numpy as np
    import tensorflow as tf

    served = tf.saved_model.load(sys.argv[1])
    result = served.signatures["serving_default"](images=tf.constant(np.load(sys.argv[2])))
    out = {name: value.numpy() for name, value in result.items()}
    out["things"] = served.thing_classes.numpy()
    out["divisor"] = served.label_divisor.numpy()
    np.savez(sys.argv[3], **out)
""")


def _images(raw, count=2):
    return np.stack([image.numpy()[:50, :61] for image, _ in raw][:count])


@pytest.mark.slow
def test_saved_model_serves_the_panoptic_map_without_kerasseg(deeplab, raw, tmp_path):
    images = _images(raw)
    path = str(tmp_path / "deeplab")
    export.saved_model(deeplab, path)
    np.save(tmp_path / "images.npy", images)
    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            path,
            str(tmp_path / "images.npy"),
            str(tmp_path / "out.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    served = np.load(tmp_path / "out.npz")
    expected = np.stack([r["panoptic"] for r in predict(deeplab, list(images))])
    np.testing.assert_array_equal(served["panoptic"], expected)
    labels = np.where(expected < 0, -1, expected // 1000)
    np.testing.assert_array_equal(served["labels"], labels)
    np.testing.assert_array_equal(served["things"], THINGS)
    assert int(served["divisor"]) == 1000


@pytest.mark.slow
def test_panoptic_fpn_serving_function_matches_predict(fpn, raw):
    # The same serving function the SavedModel above stores, here on Panoptic FPN's graph
    # (its merge loops over the detections inside tf.map_fn).
    images = _images(raw)
    served = export.serving_function(fpn)(images)
    expected = np.stack([r["panoptic"] for r in predict(fpn, list(images))])
    np.testing.assert_array_equal(served["panoptic"].numpy(), expected)


def test_panoptic_models_export_to_savedmodel_only():
    model = kerasseg.panoptic_deeplab(
        5, thing_classes=THINGS, **COMMON, **MODELS["panoptic_deeplab"]
    )
    with pytest.raises(ValueError, match="SavedModel only"):
        export.serving_function(model, input_size=(64, 64), portable=True)


# --------------------------------------------------------------------------- the console script


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_demo_then_evaluate_and_predict(tmp_path, capsys, monkeypatch):
    from kerasseg.cli import demo_panoptic

    # The demo's own path (train, score, draw, summary) on the small Panoptic-DeepLab above:
    # its Panoptic FPN would only cost more tracing here (its figures are in the README).
    tiny = dict(
        demo_panoptic.PANOPTIC_DEMO,
        model="panoptic_deeplab",
        model_options=dict(MODELS["panoptic_deeplab"], stuff_area=32),
    )
    monkeypatch.setattr(demo_panoptic, "PANOPTIC_DEMO", tiny)
    folder = tmp_path / "demo"
    code, out, err = run_cli(
        capsys,
        "demo",
        "--task",
        "panoptic",
        "--output",
        folder,
        "--epochs",
        "1",
        "--steps-per-epoch",
        "1",
        "--train-images",
        "8",
        "--val-images",
        "2",
        "--samples",
        "1",
    )
    assert code == 0, err
    assert "validation PQ:" in out and "things:" in out and "stuff:" in out
    record = json.loads((folder / "validation.json").read_text())
    assert set(record) >= {"all", "things", "stuff", "per_class"}
    picture = cv2.imread(str(folder / "overlays" / "val_00.png"))
    assert picture is not None and picture.shape[1] > 3 * 64 * 4

    checkpoint = folder / "run" / "last.keras"
    code, out, err = run_cli(
        capsys,
        "evaluate",
        "--checkpoint",
        checkpoint,
        "--dataset",
        "shapes_panoptic",
        "--dataset-option",
        "num_images=2",
    )
    assert code == 0, err
    for word in ("PQ", "SQ", "RQ", "things", "stuff", "triangle"):
        assert word in out
    written = folder / "run" / "last_pq_shapes_panoptic_val.json"
    assert json.loads(written.read_text())["checkpoint"] == str(checkpoint)
    code, _, err = run_cli(
        capsys, "evaluate", "--checkpoint", checkpoint, "--dataset", "shapes_panoptic"
    )
    assert code != 0 and "exists" in err

    image = next(iter(kerasseg.datasets.load("shapes_panoptic", split="val", num_images=1)))[0]
    cv2.imwrite(str(tmp_path / "scene.png"), image.numpy()[:, :, ::-1])
    code, out, err = run_cli(
        capsys,
        "predict",
        "--checkpoint",
        checkpoint,
        tmp_path / "scene.png",
        "--output",
        tmp_path / "pred",
    )
    assert code == 0, err
    saved = json.loads((tmp_path / "pred" / "scene_panoptic.json").read_text())
    ids = kerasseg.ops.panoptic_ids.read_id_png(str(tmp_path / "pred" / "scene_panoptic_ids.png"))
    panoptic = ids.astype(np.int64) - 1
    assert sorted(s["id"] for s in saved["segments"]) == sorted(
        int(v) for v in np.unique(panoptic) if v >= 0
    )
    assert os.path.exists(tmp_path / "pred" / "scene_panoptic.png")
