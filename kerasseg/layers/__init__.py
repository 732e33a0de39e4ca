"""Shared building blocks: one module per kind, everything re-exported here.

core: conv-bn-act, ResizeLike. Further modules (pooling, unpooling, dense blocks, refinement)
are added by the architectures that need them and re-exported below.
"""
import importlib
import pkgutil

from kerasseg.layers.core import ResizeLike, conv_bn_act, upsample_like  # noqa: F401


def _export_all():
    # Each block module lists its public names in __all__; importing registers its layers.
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for public in getattr(module, "__all__", ()):
            globals()[public] = getattr(module, public)


_export_all()
