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
    return subprocess.run([sys.executable, *args], cwd=os.path.dirname(HERE), env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("onednn", ["0", "1"])
def test_fast_layers_equal_keras_forward_and_gradient(onednn):
    """DilatedConv2D, UpsampleConv2D and FusedBatchNormalization against the stock Keras
    computation (tests/test_layers_core.py), in a process with each setting."""
    result = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider",
                   os.path.join(HERE, "test_layers_core.py")], onednn, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_the_setting_reaches_tensorflow():
    code = ("from tensorflow.python.util import _pywrap_util_port as p; "
            "print(p.IsMklEnabled())")
    result = _run(["-c", code], "0", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.slow
def test_every_architecture_fits_two_steps_without_onednn():
    result = _run([os.path.join(HERE, "fit_every_model.py")], "0", timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    import kerasseg

    fitted = [line.split()[1] for line in result.stdout.splitlines()
              if line.startswith("fitted ")]
    assert sorted(fitted) == kerasseg.list_models()


@pytest.mark.parametrize("setting,expected", [(None, "True"), ("0", "False")])
def test_the_cli_turns_onednn_on_unless_the_user_chose(setting, expected):
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the CLI asks for oneDNN on x86 CPUs only")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = ("from kerasseg import cli; cli._import_tensorflow(); "
            "from tensorflow.python.util import _pywrap_util_port as p; print(p.IsMklEnabled())")
    result = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(HERE), env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == expected
