"""Optimizers with the recipe's defaults and the poly schedule."""

import keras

from kerasseg.training.schedules import PolyDecay

__all__ = ["OPTIMIZER_DEFAULTS", "make_optimizer", "default_learning_rate"]

# name -> (learning rate, weight decay). SGD follows the mmsegmentation recipe; AdamW the usual
# transformer-era fine-tuning values; Adam is the plain default for training from scratch.
OPTIMIZER_DEFAULTS = {"sgd": (0.01, 5e-4), "adamw": (1e-4, 0.01), "adam": (1e-3, None)}


def _key(name):
    key = str(name).lower()
    if key not in OPTIMIZER_DEFAULTS:
        raise ValueError(
            f"Unknown optimizer {name!r}; valid optimizers: {', '.join(OPTIMIZER_DEFAULTS)}."
        )
    return key


def default_learning_rate(name):
    """The learning rate ``make_optimizer(name)`` uses when none is given."""
    return OPTIMIZER_DEFAULTS[_key(name)][0]


def make_optimizer(
    name="sgd",
    learning_rate=None,
    total_steps=None,
    warmup_steps=0,
    weight_decay="default",
    end_learning_rate=None,
    momentum=0.9,
    power=0.9,
    clipnorm=None,
):
    """An optimizer with the poly schedule over ``total_steps`` (a constant rate without it).

    name: "sgd" (momentum 0.9, lr 0.01, weight decay 5e-4: the reference recipe), "adamw"
        (lr 1e-4, weight decay 0.01) or "adam" (lr 1e-3, no weight decay).
    learning_rate, weight_decay: None or "default" take the optimizer's defaults above;
        ``weight_decay=None`` explicitly passed switches it off. Keras applies weight decay
        decoupled from the gradient (``w -= lr * wd * w``).
    end_learning_rate: where the poly decay ends (default 1% of ``learning_rate``).
    """
    key = _key(name)
    default_lr, default_wd = OPTIMIZER_DEFAULTS[key]
    lr = default_lr if learning_rate is None else float(learning_rate)
    if not lr > 0:
        raise ValueError(f"learning_rate must be > 0; got {learning_rate!r}.")
    wd = default_wd if isinstance(weight_decay, str) and weight_decay == "default" else weight_decay
    schedule = lr
    if total_steps:
        schedule = PolyDecay(
            lr, total_steps, end_learning_rate, power=power, warmup_steps=warmup_steps
        )
    common = {"learning_rate": schedule, "clipnorm": clipnorm}
    if wd:
        common["weight_decay"] = float(wd)
    if key == "sgd":
        return keras.optimizers.SGD(momentum=momentum, **common)
    if key == "adamw":
        common.setdefault("weight_decay", 0.0)
        return keras.optimizers.AdamW(**common)
    return keras.optimizers.Adam(**common)
