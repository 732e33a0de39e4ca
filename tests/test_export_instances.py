"""kerasseg.export for instance models (Mask R-CNN): a SavedModel served without kerasseg at any
image size, TFLite (builtin ops only) and ONNX, each agreeing with ``kerasseg.inference.predict``.

One tiny Mask R-CNN for the module. Freshly initialised, its features are so small (std ~1e-3)
that every score is ~1 / (K + 1) and every mask ~0.5, where agreement would prove nothing (ties,
thresholds on noise); so the first layer of each head is scaled up and the classifiers
re-drawn (seeded), which gives spread scores, two classes and masks neither empty nor full
(``assert_agrees`` checks it).
"""

import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasseg
from kerasseg import export, inference
from kerasseg.models.segmenter import Segmenter
from kerasseg.ops.masks import paste_masks_tf

CLASS_NAMES = ["circle", "square", "triangle"]
SIZES = [(64, 64), (37, 53), (70, 33)]  # padded inside to 64x64, 64x64, 96x64


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    model = kerasseg.mask_rcnn(
        3,
        backbone="mobilenetv2",
        weights=None,
        fpn_filters=32,
        box_head_units=64,
        mask_head_filters=32,
        rpn_pre_nms_test=200,
        rpn_post_nms_test=50,
        max_detections=20,
        class_names=CLASS_NAMES,
    )
    rng = np.random.default_rng(0)
    for head, layer, factor, std in [
        ("rpn_head", "rpn_head_conv", 1500, None),
        ("rpn_head", "rpn_head_objectness", None, 0.3),
        ("box_head", "box_head_fc6", 1500, None),
        ("box_head", "box_head_class_logits", None, 0.3),
        ("box_head", "box_head_box_deltas", None, 0.02),
        ("mask_head", "mask_head_conv1", 1500, None),
    ]:
        dense = model.get_layer(head).get_layer(layer)
        kernel, bias = dense.get_weights()
        kernel = kernel * factor if factor else rng.normal(0, std, kernel.shape)
        if layer == "box_head_class_logits":
            bias = np.array([-5.0] + [0.0] * (len(bias) - 1))  # background less likely
        dense.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return model


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    return {f"{h}x{w}": rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8) for h, w in SIZES}


def assert_agrees(served, model, image, mask_tolerance=5e-4):
    """``served`` (arrays with a batch axis of 1) against in-process ``predict``."""
    expected = inference.predict(model, image[0], score_threshold=0.0)
    count = len(expected["scores"])
    assert count >= 5 and np.ptp(expected["scores"]) > 0.05, expected["scores"]
    assert len(np.unique(expected["classes"])) >= 2, expected["classes"]
    on = expected["masks"].mean(axis=(1, 2))
    assert on.min() < on.max() and 0.02 < on.mean() < 0.9, on
    assert served["num_detections"].shape == (1,) and served["num_detections"][0] == count
    assert served["boxes"].shape == (1, count, 4) and served["boxes"].dtype == np.float32
    assert served["classes"].dtype == np.int32 and served["scores"].dtype == np.float32
    assert served["masks"].shape == (1, count) + image.shape[1:3]
    assert served["masks"].dtype == np.uint8 and served["masks"].max() <= 1
    np.testing.assert_allclose(served["boxes"][0], expected["boxes"], atol=1e-3)
    np.testing.assert_allclose(served["scores"][0], expected["scores"], atol=1e-4)
    np.testing.assert_array_equal(served["classes"][0], expected["classes"])
    differ = served["masks"][0].astype(bool) != expected["masks"]
    assert differ.mean() <= mask_tolerance, f"{differ.sum()} mask pixels differ"


SERVE_SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["kerasseg"] = None  # the served model must not need kerasseg
    try:
        import kerasseg  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("kerasseg was importable")
    import numpy as np
    import tensorflow as tf

    served = tf.saved_model.load(sys.argv[1])
    serve = served.signatures["serving_default"]
    inputs = np.load(sys.argv[2])
    out = {}
    for key in inputs.files:
        for name, value in serve(images=tf.constant(inputs[key])).items():
            out[f"{key}/{name}"] = value.numpy()
    out["class_names"] = np.array([n.decode() for n in served.class_names.numpy()])
    out["task"] = np.array(served.task.numpy().decode())
    out["input_spec"] = np.array(str(serve.structured_input_signature))
    np.savez(sys.argv[3], **out)
""")


def test_savedmodel_serves_any_size_without_kerasseg(model, images, tmp_path):
    path = tmp_path / "maskrcnn"
    path.mkdir()
    (path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="maskrcnn"):
        export.saved_model(model, path)
    export.saved_model(model, path, overwrite=True)
    assert (path / "notes.txt").read_text() == "keep me"
    assert (path / "assets" / "class_names.txt").read_text().split() == CLASS_NAMES

    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    np.savez(tmp_path / "inputs.npz", **images)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(script), str(path), str(tmp_path / "inputs.npz"), "out.npz"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    spec = str(out["input_spec"])
    assert "uint8" in spec and "images" in spec and "shape=(1, None, None, 3)" in spec, spec
    assert list(out["class_names"]) == CLASS_NAMES and str(out["task"]) == "instance"
    for key, image in images.items():
        served = {name: out[f"{key}/{name}"] for name in export.instances.OUTPUT_KEYS}
        assert_agrees(served, model, image)


def run_tflite(path, image):
    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": still the one TF ships
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    return interpreter.get_signature_runner("serving_default")(images=image), ops


def test_tflite_uses_builtin_ops_only_and_agrees(model, images, tmp_path):
    image = images["37x53"]
    path = export.export(model, tmp_path / "maskrcnn.tflite", format="tflite", input_size=(37, 53))
    # TF's own interpreter has no Flex delegate: that it runs at all shows no SELECT_TF_OPS.
    served, ops = run_tflite(path, image)
    assert not any(op.startswith("Flex") for op in ops), sorted(ops)
    assert "NON_MAX_SUPPRESSION_V4" in ops and "WHILE" in ops
    assert_agrees(served, model, image)


def test_onnx_agrees_at_every_size(model, images, tmp_path):
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    path = export.onnx(model, tmp_path / "maskrcnn.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    names = [o.name for o in session.get_outputs()]
    assert sorted(names) == sorted(export.instances.OUTPUT_KEYS)
    for key in ("37x53", "70x33"):  # one file, two sizes: height and width are dynamic
        served = dict(zip(names, session.run(names, {"images": images[key]})))
        assert_agrees(served, model, images[key])


def test_portable_graph_equals_the_model(model, images):
    """The TFLite/ONNX graph (one NMS over class-shifted boxes instead of the model's
    CombinedNonMaxSuppression) gives the model's own outputs."""
    forward = export.instances.portable_forward(model)
    x = tf.constant(np.pad(images["70x33"], [[0, 0], [0, 26], [0, 31], [0, 0]]), tf.float32)
    expected, got = model(x, training=False), forward(x)
    for key in export.instances.OUTPUT_KEYS:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6, err_msg=key)


def test_portable_paste_equals_paste_masks_tf():
    rng = np.random.default_rng(2)
    masks = rng.random((30, 28, 28)).astype("float32")
    y1, x1 = rng.uniform(-10, 40, 30), rng.uniform(-10, 50, 30)
    boxes = np.stack([y1, x1, y1 + rng.uniform(0.5, 40, 30), x1 + rng.uniform(0.5, 40, 30)], 1)
    boxes = tf.constant(boxes, tf.float32)
    for threshold in (0.5, 0.1):
        np.testing.assert_array_equal(
            export.instances.paste_masks_portable(masks, boxes, 48, 64, threshold),
            paste_masks_tf(masks, boxes, 48, 64, threshold),
        )


def test_refusals(model, tmp_path):
    with pytest.raises(ValueError, match="int8.*instance"):
        export.tflite(model, tmp_path / "x.tflite", quantization="int8")
    inputs = keras.Input((None, None, 3))
    other = Segmenter(inputs, keras.layers.Conv2D(4, 1)(inputs), task="instance", num_classes=3)
    with pytest.raises(ValueError, match="mask_rcnn.*SavedModel"):
        export.tflite(other, tmp_path / "x.tflite", input_size=(32, 32))
    fixed = kerasseg.mask_rcnn(2, backbone="mobilenetv2", weights=None, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="64x64 inputs only"):
        export.saved_model(fixed, tmp_path / "fixed")
    assert os.listdir(tmp_path) == []
    names, palette = export.metadata(model)
    assert names == CLASS_NAMES and palette.shape == (3, 3)
