"""The architecture registry: every builder registers itself here by name."""
import difflib

MODELS = {}


def register_model(name):
    def wrap(fn):
        MODELS[name] = fn
        return fn

    return wrap


def list_models():
    return sorted(MODELS)


def build(name, num_classes, **kwargs):
    """Build an architecture by its registered name, e.g. build("unet", 21, backbone="resnet50")."""
    if name not in MODELS:
        hint = difflib.get_close_matches(str(name), MODELS, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(
            f"Unknown model {name!r}.{extra} Valid models: {', '.join(list_models())}."
        )
    return MODELS[name](num_classes, **kwargs)


def _import_families():
    # Each family module (fcn.py, unet.py, ...) registers its builders when imported.
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


_import_families()
