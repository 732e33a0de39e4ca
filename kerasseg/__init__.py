"""kerasseg: semantic segmentation for Keras 3 on TensorFlow.

    model = kerasseg.unet(num_classes=21, backbone="resnet50")
    model = kerasseg.build("deeplabv3plus", num_classes=19, backbone="resnet101")
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kerasseg.version import __version__  # noqa: E402
from kerasseg import backbones, layers, losses, metrics  # noqa: E402,F401
from kerasseg import datasets, data  # noqa: E402,F401
from kerasseg.backbones import list_backbones  # noqa: E402,F401
from kerasseg.models import build, list_models, MODELS  # noqa: E402,F401

# Every registered architecture is also a module-level builder: kerasseg.unet(...).
globals().update(MODELS)


def __getattr__(name):
    # inference/export/visualize pull in heavier optional pieces; load them on first use.
    if name in ("inference", "export", "visualize", "train"):
        import importlib

        return importlib.import_module(f"kerasseg.{name}")
    raise AttributeError(f"module 'kerasseg' has no attribute {name!r}")
