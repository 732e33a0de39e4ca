"""kerasseg: semantic segmentation for Keras 3 on TensorFlow.

    model = kerasseg.unet(num_classes=21, backbone="resnet50")
    model = kerasseg.build("deeplabv3plus", num_classes=19, backbone="resnet101")

``import kerasseg`` registers every custom layer, loss, metric and schedule with Keras, so a saved
model loads with plain ``keras.models.load_model(path)`` afterwards. The public names are written
out below (``__all__``); ``inference``, ``export``, ``visualize`` and ``train`` are imported on
first use.

The ``kerasseg`` console script and ``python -m kerasseg.cli`` import the package without
TensorFlow (``KERASSEG_LAZY_IMPORT=1`` while it imports, see ``kerasseg_cli``) so that ``--help``
and ``kerasseg models`` answer at once; there, everything is imported, and registered, the first
time any name below is used.
"""
import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kerasseg.version import __version__  # noqa: E402

# Every registered architecture, also a module-level builder: kerasseg.unet(...). A test checks
# that this list is the registry's (kerasseg.models.MODELS).
ARCHITECTURES = (
    "attention_unet", "deeplabv3", "deeplabv3plus", "fc_densenet103", "fc_densenet56",
    "fc_densenet67", "fcn16s", "fcn32s", "fcn8s", "fpn", "linknet", "pspnet", "refinenet",
    "segnet", "unet", "unetpp",
)
# Submodules: the first eight register Keras objects (train: the learning-rate schedules a
# compiled model's optimizer saves) and are imported with the package; the others on first use.
_REGISTERING = ("backbones", "layers", "losses", "metrics", "datasets", "data", "models", "train")
_ON_USE = ("inference", "export", "visualize", "dilate", "visualize_metrics")
# Functions and tables, by the submodule that defines them.
_NAMES = {
    "build": "models",
    "list_models": "models",
    "MODELS": "models",
    "list_backbones": "backbones",
}

__all__ = ["__version__", "build", "list_models", "list_backbones", "MODELS",
           *_REGISTERING, "inference", "export", "visualize", "train", *ARCHITECTURES]

_state = {"loaded": False, "loading": False}


def _import_all():
    """Import the registering submodules (TensorFlow, Keras and every custom object with them)
    and bind the builders; idempotent. ``keras.models.load_model`` needs this done first."""
    if _state["loaded"] or _state["loading"]:
        return
    _state["loading"] = True
    try:
        for name in _REGISTERING:
            globals()[name] = importlib.import_module(f"kerasseg.{name}")
        for name, module in _NAMES.items():
            globals()[name] = getattr(globals()[module], name)
        models = globals()["models"]
        globals().update(models.MODELS)
        _state["loaded"] = True
    finally:
        _state["loading"] = False


def __getattr__(name):
    if name in _REGISTERING or name in _ON_USE:
        _import_all()
        return importlib.import_module(f"kerasseg.{name}")
    if name in _NAMES or name in ARCHITECTURES:
        _import_all()
        if name in globals():
            return globals()[name]
        if name in _NAMES:  # asked for while the submodules are being imported
            return getattr(importlib.import_module(f"kerasseg.{_NAMES[name]}"), name)
        return importlib.import_module("kerasseg.models").MODELS[name]
    raise AttributeError(f"module 'kerasseg' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_ON_USE))


def _run_as_cli():
    """Whether this interpreter runs ``python -m kerasseg.cli``: runpy imports this package
    while ``sys.argv[0]`` is "-m", and the command line names the module."""
    import sys

    argv = list(getattr(sys, "orig_argv", ()))  # Python >= 3.10
    if sys.argv[:1] != ["-m"] or not argv:
        return False
    for i, arg in enumerate(argv[1:], 1):
        if arg == "-m":
            return argv[i + 1:i + 2] == ["kerasseg.cli"]
        if arg.startswith("-m"):
            return arg == "-mkerasseg.cli"
    return False


if not (os.environ.get("KERASSEG_LAZY_IMPORT") or _run_as_cli()):
    _import_all()
