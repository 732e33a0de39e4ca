"""With oneDNN off and on: TensorFlow turns oneDNN on only on some CPUs (it is off on AMD EPYC
machines without AVX-512), and its generic kernels lack some gradients (dilated convolution)
that oneDNN has. Each setting runs in its own process, since TensorFlow reads it at import.
"""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(args, onednn, timeout):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=os.path.dirname(HERE),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
@pytest.mark.parametrize("onednn", ["0", "1"])
def test_fast_layers_equal_keras_forward_and_gradient(onednn):
    """DilatedConv2D, UpsampleConv2D and FusedBatchNormalization against the stock Keras
    computation (tests/test_layers_conv.py, tests/test_layers_upsampling.py), in a process
    with each setting; not again for the setting this process has, which runs them itself."""
    from tensorflow.python.util import _pywrap_util_port

    if _pywrap_util_port.IsMklEnabled() == (onednn == "1"):
        pytest.skip(f"this suite runs those files itself with TF_ENABLE_ONEDNN_OPTS={onednn}")
    result = _run(
        [
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            os.path.join(HERE, "test_layers_conv.py"),
            os.path.join(HERE, "test_layers_upsampling.py"),
        ],
        onednn,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_the_setting_reaches_tensorflow():
    code = "from tensorflow.python.util import _pywrap_util_port as p; print(p.IsMklEnabled())"
    result = _run(["-c", code], "0", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.slow
def test_every_architecture_fits_two_steps_at_32px_without_onednn():
    result = _run([os.path.join(HERE, "fit_every_model.py")], "0", timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    import kerasseg

    fitted = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("fitted ")]
    assert sorted(fitted) == kerasseg.list_models(task="semantic")


@pytest.mark.parametrize(
    "setting,expected",
    [(None, "True None"), ("0", "False true"), ("false", "False true"), ("1", "True None")],
)
def test_the_cli_turns_onednn_on_unless_the_user_chose(setting, expected):
    """... and with oneDNN off it pools CPU memory (BFC allocator) unless the user chose."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the CLI asks for oneDNN on x86 CPUs only")
    chosen = ("TF_ENABLE_ONEDNN_OPTS", "TF_CPU_ALLOCATOR_USE_BFC")
    env = {k: v for k, v in os.environ.items() if k not in chosen}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    env["KERASSEG_LAZY_IMPORT"] = "1"  # as the console script: TensorFlow not yet imported
    code = (
        "import os, sys; from kerasseg import cli; assert 'tensorflow' not in sys.modules; "
        "cli.import_tensorflow(); "
        "from tensorflow.python.util import _pywrap_util_port as p; "
        "print(p.IsMklEnabled(), os.environ.get('TF_CPU_ALLOCATOR_USE_BFC'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=os.path.dirname(HERE),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == expected


SAVE = """
import sys, numpy as np, kerasseg
model = kerasseg.deeplabv3(3, backbone="mobilenetv2", weights=None)
model(np.zeros((1, 64, 64, 3), "float32"))
model.save(sys.argv[1])
"""
LOAD_AND_FIT = """
import sys, keras, numpy as np, kerasseg
from kerasseg.layers import DilatedConv2D
model = keras.models.load_model(sys.argv[1])
assert any(isinstance(l, DilatedConv2D) for l in model.layers)
model.compile(optimizer="sgd", loss=kerasseg.losses.CrossEntropy())
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
y = rng.integers(0, 3, (2, 64, 64)).astype("int32")
loss = model.fit(x, y, epochs=2, verbose=0).history["loss"]
assert np.all(np.isfinite(loss)), loss
print("trained", loss[-1])
"""


@pytest.mark.slow
@pytest.mark.parametrize("saved_with,loaded_with", [("1", "0"), ("0", "1")])
def test_a_model_saved_under_one_setting_trains_under_the_other(tmp_path, saved_with, loaded_with):
    path = str(tmp_path / "deeplab.keras")
    saved = _run(["-c", SAVE, path], saved_with, timeout=300)
    assert saved.returncode == 0, saved.stderr[-3000:]
    loaded = _run(["-c", LOAD_AND_FIT, path], loaded_with, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "trained" in loaded.stdout
