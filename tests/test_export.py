"""kerasseg.export: SavedModel served without kerasseg, TFLite float16/int8, ONNX, file safety.

Agreement is measured against ``kerasseg.inference.predict`` on a tiny U-Net trained for a few
steps (tests/shared_models.py), whose predictions are varied: agreement on a constant map
would prove nothing.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf

from kerasseg import export, inference, visualize
from tests.shared_models import K, random_blocks, trained_unet

CLASS_NAMES = ["red", "green", "blue", "dark"]
ODD_SIZES = [(37, 53), (21, 90), (64, 64)]


@pytest.fixture(scope="module")
def model():
    return trained_unet()


@pytest.fixture(scope="module")
def batches():
    """Two images at each of several sizes, most of them not multiples of 8."""
    rng = np.random.default_rng(7)
    return {f"{h}x{w}": random_blocks(rng, 2, h, w)[0] for h, w in ODD_SIZES}


def assert_varied(labels):
    counts = np.bincount(np.ravel(labels), minlength=K)
    assert (counts > 0.05 * np.size(labels)).sum() >= 2, f"prediction nearly constant: {counts}"


@pytest.fixture(scope="module")
def savedmodel_dir(model, tmp_path_factory):
    """Exported with overwrite=True into a folder that already holds a file of the user's."""
    path = tmp_path_factory.mktemp("served") / "unet"
    path.mkdir()
    (path / "notes.txt").write_text("keep me")
    export.saved_model(model, path, overwrite=True, class_names=CLASS_NAMES)
    return path


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
        result = serve(images=tf.constant(inputs[key]))
        out[key + "/labels"] = result["labels"].numpy()
        out[key + "/probabilities"] = result["probabilities"].numpy()
    out["class_names"] = np.array([n.decode() for n in served.class_names.numpy()])
    out["palette"] = served.palette.numpy()
    out["input_spec"] = np.array(str(serve.structured_input_signature))
    np.savez(sys.argv[3], **out)
""")


def test_savedmodel_serves_odd_sizes_without_kerasseg(model, batches, savedmodel_dir, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    np.savez(tmp_path / "inputs.npz", **batches)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            str(savedmodel_dir),
            str(tmp_path / "inputs.npz"),
            str(tmp_path / "out.npz"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = np.load(tmp_path / "out.npz")

    assert "uint8" in str(served["input_spec"]) and "images" in str(served["input_spec"])
    for key, images in batches.items():
        labels, probs = inference.predict(model, images, return_probabilities=True)
        assert_varied(labels)
        assert served[f"{key}/labels"].dtype == np.int32
        assert served[f"{key}/labels"].shape == images.shape[:3]
        np.testing.assert_array_equal(served[f"{key}/labels"], labels)
        np.testing.assert_allclose(served[f"{key}/probabilities"], probs, atol=1e-5)
    assert list(served["class_names"]) == CLASS_NAMES
    np.testing.assert_array_equal(served["palette"], visualize.palette(K))


def test_savedmodel_assets_and_user_files(savedmodel_dir):
    assert (savedmodel_dir / "notes.txt").read_text() == "keep me"
    assert (savedmodel_dir / "saved_model.pb").is_file()
    names = (savedmodel_dir / "assets" / "class_names.txt").read_text().split("\n")
    assert names[:K] == CLASS_NAMES
    meta = json.loads((savedmodel_dir / "assets" / "palette.json").read_text())
    assert meta["class_names"] == CLASS_NAMES
    assert meta["palette"] == visualize.palette(K).tolist()
    # No staging folders are left beside the export.
    assert sorted(os.listdir(savedmodel_dir.parent)) == ["unet"]


def test_export_refuses_existing_paths(model, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "data.csv").write_text("1,2,3")
    with pytest.raises(FileExistsError, match="mine"):
        export.saved_model(model, folder)
    with pytest.raises(FileExistsError, match="mine"):
        export.export(model, folder, format="savedmodel")
    assert os.listdir(folder) == ["data.csv"] and (folder / "data.csv").read_text() == "1,2,3"

    a_file = tmp_path / "model.tflite"
    a_file.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="model.tflite"):
        export.tflite(model, a_file, input_size=(32, 32))
    with pytest.raises(FileExistsError, match="model.tflite"):
        export.saved_model(model, a_file, overwrite=True)  # a file never becomes a folder
    assert a_file.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["mine", "model.tflite"]


def test_bad_arguments(model, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="format"):
        export.export(model, tmp_path / "x", format="caffe")
    with pytest.raises(ValueError, match="quantization"):
        export.tflite(model, tmp_path / "x.tflite", quantization="int4")
    with pytest.raises(ValueError, match="representative_images"):
        export.tflite(model, tmp_path / "x.tflite", quantization="int8")
    with pytest.raises(ValueError, match="class_names"):
        export.saved_model(model, tmp_path / "sm", class_names=["only", "two"])
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.raises(ImportError, match=r"pip install kerasseg\[onnx\]"):
        export.onnx(model, tmp_path / "x.onnx")
    assert sorted(os.listdir(tmp_path)) == []


def run_tflite(path, images):
    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": still the one TF ships
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    return runner(images=images)


@pytest.mark.parametrize("quantization,min_agreement", [("float16", 0.99), ("int8", 0.95)])
def test_tflite_agrees_with_keras(model, batches, tmp_path, quantization, min_agreement):
    images = batches["37x53"]
    calibration = random_blocks(np.random.default_rng(3), 16, 48, 48)[0]  # resized to 37x53
    path = export.export(
        model,
        tmp_path / "unet.tflite",
        format="tflite",
        quantization=quantization,
        representative_images=calibration,
        input_size=(37, 53),
    )
    out = run_tflite(path, images)
    expected = inference.predict(model, images)
    assert_varied(expected)
    assert out["labels"].shape == (2, 37, 53) and out["labels"].dtype == np.int32
    assert out["probabilities"].shape == (2, 37, 53, K)
    agreement = (out["labels"] == expected).mean()
    assert agreement >= min_agreement, f"{quantization}: {agreement:.4f} of pixels agree"


def test_onnx_agrees_with_keras(model, batches, tmp_path):
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    path = export.export(model, tmp_path / "unet.onnx", format="onnx", opset=17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    for images in batches.values():  # one file, every size: height and width are dynamic
        labels, probs = session.run(["labels", "probabilities"], {"images": images})
        expected, expected_probs = inference.predict(model, images, return_probabilities=True)
        assert labels.shape == images.shape[:3]
        assert (labels == expected).mean() >= 0.999
        np.testing.assert_allclose(probs, expected_probs, atol=1e-4)


def test_class_names_and_palette_default_to_the_models_own():
    import keras

    from kerasseg.models.segmenter import Segmenter

    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(3, 1, activation="softmax")(inputs)
    colours = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    named = Segmenter(inputs, outputs, class_names=["sky", "road", "car"], palette=colours)
    names, palette = export.metadata(named)
    assert names == ["sky", "road", "car"]
    np.testing.assert_array_equal(palette, colours)
    names, _ = export.metadata(named, class_names=["a", "b", "c"])  # arguments still win
    assert names == ["a", "b", "c"]
    # A plain one-channel (binary) model labels 2 classes: default names and colours.
    binary = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    names, palette = export.metadata(binary)
    assert names == ["class_0", "class_1"]
    np.testing.assert_array_equal(palette, visualize.palette(2))


def test_export_needs_neither_opencv_nor_visualize():
    import ast
    import pathlib

    import kerasseg.export

    folder = pathlib.Path(kerasseg.export.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            assert not any(
                m.split(".")[0] == "cv2" or m.startswith("kerasseg.visualize") for m in modules
            ), (path.name, modules)
