"""kerasseg: image segmentation for Keras 3 on TensorFlow.

    model = kerasseg.unet(num_classes=21, backbone="resnet50")
    model = kerasseg.build("deeplabv3plus", num_classes=19, backbone="resnet101")

``import kerasseg`` registers every custom layer, loss, metric and schedule with Keras, so a saved
model loads with plain ``keras.models.load_model(path)`` afterwards. ``inference``, ``export`` and
``visualize`` (OpenCV, matplotlib) are imported on first use.

The ``kerasseg`` console script and ``python -m kerasseg.cli`` import the package without
TensorFlow (``KERASSEG_LAZY_IMPORT=1`` while it imports, see ``kerasseg_cli``) so that ``--help``
and ``kerasseg models`` answer at once; there, the imports below run the first time any public
name is asked for.
"""

import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kerasseg.version import __version__  # noqa: E402

__all__ = [
    "__version__",
    # the package's parts
    "backbones",
    "data",
    "datasets",
    "export",
    "inference",
    "layers",
    "losses",
    "metrics",
    "models",
    "necks",
    "ops",
    "training",
    "weak",
    "visualize",
    # models
    "MODELS",
    "Segmenter",
    "build",
    "list_backbones",
    "list_models",
    "attention_unet",
    "deeplabv3",
    "deeplabv3plus",
    "fc_densenet56",
    "fc_densenet67",
    "fc_densenet103",
    "fcn8s",
    "fcn16s",
    "fcn32s",
    "fpn",
    "linknet",
    "mask_rcnn",
    "panoptic_deeplab",
    "panoptic_fpn",
    "pspnet",
    "refinenet",
    "segformer",
    "segnet",
    "unet",
    "unetpp",
    "upernet",
    # pretrained weights from keras-hub (needs the keras-hub extra)
    "from_keras_hub",
]
_ON_USE = ("inference", "export", "visualize", "train")


def _run_as_cli():
    """Whether this interpreter runs ``python -m kerasseg.cli``: runpy imports this package
    while ``sys.argv[0]`` is "-m", and the command line names the module."""
    argv = list(getattr(sys, "orig_argv", ()))  # Python >= 3.10
    if sys.argv[:1] != ["-m"] or not argv:
        return False
    for i, arg in enumerate(argv[1:], 1):
        if arg == "-m":
            return argv[i + 1 : i + 2] == ["kerasseg.cli"]
        if arg.startswith("-m"):
            return arg == "-mkerasseg.cli"
    return False


_LAZY = bool(os.environ.get("KERASSEG_LAZY_IMPORT")) or _run_as_cli()

if not _LAZY:
    # These register kerasseg's Keras objects (layers, losses, metrics, schedules, the
    # Segmenter) and so must run before any keras.models.load_model.
    from kerasseg import (  # noqa: E402  # noqa: E402
        backbones,
        data,
        datasets,
        layers,
        losses,
        metrics,
        models,
        necks,
        ops,
        training,
        weak,
    )
    from kerasseg.backbones import list_backbones  # noqa: E402
    from kerasseg.models import MODELS, Segmenter, build, list_models  # noqa: E402
    from kerasseg.models.instance import mask_rcnn  # noqa: E402
    from kerasseg.models.panoptic import panoptic_deeplab, panoptic_fpn  # noqa: E402
    from kerasseg.models.semantic.attention_unet import attention_unet  # noqa: E402
    from kerasseg.models.semantic.deeplab import deeplabv3, deeplabv3plus  # noqa: E402
    from kerasseg.models.semantic.fc_densenet import (  # noqa: E402
        fc_densenet56,
        fc_densenet67,
        fc_densenet103,
    )
    from kerasseg.models.semantic.fcn import fcn8s, fcn16s, fcn32s  # noqa: E402
    from kerasseg.models.semantic.fpn import fpn  # noqa: E402
    from kerasseg.models.semantic.linknet import linknet  # noqa: E402
    from kerasseg.models.semantic.pspnet import pspnet  # noqa: E402
    from kerasseg.models.semantic.refinenet import refinenet  # noqa: E402
    from kerasseg.models.semantic.segformer import segformer  # noqa: E402
    from kerasseg.models.semantic.segnet import segnet  # noqa: E402
    from kerasseg.models.semantic.unet import unet  # noqa: E402
    from kerasseg.models.semantic.unetpp import unetpp  # noqa: E402
    from kerasseg.models.semantic.upernet import upernet  # noqa: E402
    from kerasseg.training.pretrained import from_keras_hub  # noqa: E402


_PARTS = frozenset(__all__[__all__.index("backbones") : __all__.index("visualize") + 1])


def __getattr__(name):
    if name in _ON_USE or name in _PARTS:
        # A part is a submodule: import just it. Reloading here would rerun this file while a
        # submodule is half imported (``from kerasseg import backbones`` inside models/base.py
        # asks for the attribute before the import system loads it).
        return importlib.import_module(f"kerasseg.{name}")
    if _LAZY and name in __all__:
        # The console script imported the package without TensorFlow; now a name is needed,
        # so run this file again with the imports above.
        os.environ.pop("KERASSEG_LAZY_IMPORT", None)
        importlib.reload(sys.modules[__name__])
        return globals()[name]
    raise AttributeError(f"module 'kerasseg' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
