"""The architecture registry: every builder registers itself here by name."""
import difflib
import functools
import inspect

MODELS = {}

# mmsegmentation's 0.1 in PyTorch terms. Keras defaults to 0.99 and keras.applications'
# MobileNets to 0.999: after a few hundred steps from scratch (or on a new domain) their moving
# statistics are still mostly their initial values and the model predicts nonsense in
# inference mode while it does well in training mode.
BN_MOMENTUM = 0.9


def set_bn_momentum(model, momentum):
    """Set the momentum of every batch norm in ``model`` (nested models included); returns it.

    Keras functional models call their layers anew on every run, so the new momentum is what
    training uses, and each layer's saved config carries it.
    """
    import keras

    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"bn_momentum must be in [0, 1); got {momentum!r}.")
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(momentum)
        elif isinstance(layer, keras.Model):
            set_bn_momentum(layer, momentum)
    return model


def register_model(name):
    """Register a builder under ``name``; the registered builder also takes ``bn_momentum``."""
    def wrap(fn):
        @functools.wraps(fn)
        def builder(*args, bn_momentum=BN_MOMENTUM, **kwargs):
            return set_bn_momentum(fn(*args, **kwargs), bn_momentum)

        signature = inspect.signature(fn)
        option = inspect.Parameter("bn_momentum", inspect.Parameter.KEYWORD_ONLY,
                                   default=BN_MOMENTUM)
        params = list(signature.parameters.values())
        if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD:
            params.insert(len(params) - 1, option)
        else:
            params.append(option)
        builder.__signature__ = signature.replace(parameters=params)
        if builder.__doc__:
            builder.__doc__ += (f"\n\n    bn_momentum: momentum of every batch norm, the "
                                f"backbone's included (default {BN_MOMENTUM}).\n")
        MODELS[name] = builder
        return builder

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
