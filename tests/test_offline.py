"""Offline, weights="imagenet" fails with a message naming the backbone, the URL, the cache file
Keras would read and weights=None, from the python API and, as one line with exit status 2, from
the CLI. The network is never used: keras's get_file is replaced by one that fails as it does
without a network."""

import os
import re
import subprocess
import sys
import textwrap

import keras
import pytest
from keras.src.utils import file_utils

import kerasseg
from kerasseg.backbones import WeightsUnavailableError
from kerasseg.backbones import keras_cache_folder as _keras_cache_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
URL = re.compile(r"https://storage\.googleapis\.com/\S+/(mobilenet_v2_\S+\.h5)")


def offline_get_file(fname=None, origin=None, *args, **kwargs):
    # What keras.utils.get_file raises when the name cannot be resolved.
    raise Exception(
        f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution"
    )


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setattr(file_utils, "get_file", offline_get_file)  # what applications call
    monkeypatch.setattr(keras.utils, "get_file", offline_get_file)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # no cached weights there


def test_python_api_names_backbone_url_cache_file_and_weights_none(offline):
    with pytest.raises(WeightsUnavailableError) as caught:
        kerasseg.unet(2, backbone="mobilenetv2")
    error = caught.value
    message = str(error)
    assert isinstance(error, ConnectionError)
    assert "'mobilenetv2'" in message and "weights=None" in message
    assert "Temporary failure in name resolution" in message
    url = URL.search(message)
    assert url and error.url == url.group(0)
    # Keras reads <keras home>/models/<file name of the URL>, or /tmp/.keras when the home is
    # not writable; config.keras_home() was fixed when keras was imported.
    assert error.cache_file == os.path.join(_keras_cache_folder(), url.group(1))
    assert repr(error.cache_file) in message
    assert os.path.isabs(error.cache_file)
    assert error.backbone == "mobilenetv2"


def test_other_backbones_and_errors_are_untouched(offline, monkeypatch):
    with pytest.raises(WeightsUnavailableError, match="'resnet50'.*resnet50_weights"):
        kerasseg.fpn(2, backbone="resnet50")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(file_utils, "get_file", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        kerasseg.unet(2, backbone="mobilenetv2")


OFFLINE_CLI = textwrap.dedent("""
    import os, sys
    os.environ["KERASSEG_LAZY_IMPORT"] = "1"  # as the console script imports kerasseg
    from kerasseg import cli
    del os.environ["KERASSEG_LAZY_IMPORT"]
    cli.import_tensorflow()
    import keras
    from keras.src.utils import file_utils

    def offline(fname=None, origin=None, *args, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary "
                        f"failure in name resolution")

    file_utils.get_file = keras.utils.get_file = offline
    sys.exit(cli.console(sys.argv[1:]))
""")


def test_cli_says_it_in_one_line_and_suggests_weights_none(tmp_path):
    script = tmp_path / "offline_cli.py"
    script.write_text(OFFLINE_CLI)
    env = dict(
        os.environ,
        PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
        KERAS_HOME=str(tmp_path / "keras_home"),
    )
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("KERASSEG_DEBUG", None)
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            "train",
            "--backbone",
            "mobilenetv2",
            "--dataset",
            "shapes",
            "--dataset-option",
            "num_images=4",
            "--crop-size",
            "32",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "1",
            "--batch-size",
            "2",
            "--no-tensorboard",
            "--output",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=150,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith(
        "kerasseg train: error: the ImageNet weights of backbone "
        "'mobilenetv2' could not be downloaded from https://"
    )
    assert URL.search(line) and "/models/mobilenet_v2_" in line
    assert line.endswith("On the command line: --weights none.")
    assert not (tmp_path / "run").exists()
