"""The architecture registry: every builder registers itself here by name.

A builder is a plain function ``builder(num_classes, *, backbone=..., ..., class_names=None,
palette=None, bn_momentum=BN_MOMENTUM, name=None) -> Segmenter``. ``register_model`` files it
under its name and, after the builder made the graph, gives the model what every builder
shares: its classes and colours, the batch-norm momentum, and the call that built it (so a
saved model says how to build it again).
"""

import difflib
import functools
import inspect

MODELS = {}
TASK_OF = {}  # name -> "semantic" | "instance" | "panoptic"

# mmsegmentation's 0.1 in PyTorch terms. Keras defaults to 0.99 and keras.applications'
# MobileNets to 0.999: after a few hundred steps from scratch (or on a new domain) their moving
# statistics are still mostly their initial values and the model predicts nonsense in
# inference mode while it does well in training mode.
BN_MOMENTUM = 0.9

# Arguments every builder declares and ``register_model`` applies to the built model.
SHARED_OPTIONS = ("class_names", "palette", "bn_momentum")


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


SHARED_DOC = f"""

    class_names: the names of the classes (default ``class_0``, ``class_1``, ...), and
    palette: their RGB colours (default kerasseg's); both are saved with the model and used by
    inference, export and the CLI.
    bn_momentum: momentum of every batch norm, the backbone's included (default {BN_MOMENTUM}).
"""


def _check_signature(name, fn):
    params = inspect.signature(fn).parameters
    missing = [
        option for option in ("num_classes", "backbone", *SHARED_OPTIONS) if option not in params
    ]
    if missing:
        raise TypeError(f"builder {name!r} must declare {', '.join(missing)}.")


def register_model(name, task="semantic"):
    """Register ``fn`` under ``name``; the returned builder finishes what ``fn`` builds."""

    def wrap(fn):
        _check_signature(name, fn)
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def builder(*args, **kwargs):
            call = signature.bind(*args, **kwargs)
            call.apply_defaults()
            options = call.arguments
            model = fn(*args, **kwargs)
            set_bn_momentum(model, options["bn_momentum"])
            model.set_description(
                task=task,
                num_classes=options["num_classes"],
                class_names=options["class_names"],
                palette=options["palette"],
                input_multiple=model.input_multiple,
                # A builder whose backbone argument defaults to None and resolves it (SegFormer:
                # the MiT of its variant) says which one it built.
                backbone=getattr(model, "resolved_backbone", None) or options["backbone"],
                builder=name,
                builder_args={k: v for k, v in options.items() if k != "num_classes"},
            )
            return model

        builder.__doc__ = (builder.__doc__ or "").rstrip() + SHARED_DOC
        MODELS[name] = builder
        TASK_OF[name] = task
        return builder

    return wrap


def list_models(task=None):
    """Registered architecture names, sorted; ``task`` keeps those of one task."""
    return sorted(name for name in MODELS if task is None or TASK_OF[name] == task)


def build(name, /, num_classes, **kwargs):
    """Build an architecture by its registered name, e.g. build("unet", 21, backbone="resnet50").

    ``name`` is positional only, so ``kwargs`` may hold the model's own
    ``name`` (as a Segmenter's ``builder_args`` do).
    """
    if name not in MODELS:
        hint = difflib.get_close_matches(str(name), MODELS, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(
            f"Unknown model {name!r}.{extra} Valid models: {', '.join(list_models())}."
        )
    return MODELS[name](num_classes, **kwargs)
