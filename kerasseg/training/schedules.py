"""Learning-rate schedules (registered with Keras: a compiled model's optimizer saves them).

Cheap to import (Keras only): ``import kerasseg`` imports this module so that a ``.keras`` file
compiled with ``PolyDecay`` loads with plain ``keras.models.load_model``.
"""

import keras
from keras import ops

__all__ = ["PolyDecay", "END_LR_FRACTION"]

# The poly schedule ends at this fraction of the initial rate (0.01 -> 1e-4 in the recipe).
END_LR_FRACTION = 0.01


@keras.saving.register_keras_serializable(package="kerasseg")
class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then polynomial decay to ``end_learning_rate`` (mmsegmentation's PolyLR).

    For step ``s`` (the optimizer's iteration count, from 0), warmup ``W`` and ``T = decay_steps``::

        s <  W:  lr = initial * (s + 1) / W
        s >= W:  lr = (initial - end) * (1 - min(s - W, T - W) / (T - W)) ** power + end

    so the rate reaches ``initial`` at the end of warmup, decays over the remaining ``T - W``
    steps and stays at ``end`` afterwards. ``decay_steps`` counts the warmup steps too: pass the
    run's total number of steps.
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        end_learning_rate=None,
        power=0.9,
        warmup_steps=0,
        name="PolyDecay",
    ):
        super().__init__()
        decay_steps, warmup_steps = int(decay_steps), int(warmup_steps)
        if decay_steps < 1:
            raise ValueError(f"PolyDecay: decay_steps must be >= 1; got {decay_steps}.")
        if not 0 <= warmup_steps < decay_steps:
            raise ValueError(
                f"PolyDecay: warmup_steps must be in [0, decay_steps={decay_steps}); "
                f"got {warmup_steps}."
            )
        if end_learning_rate is None:
            end_learning_rate = END_LR_FRACTION * float(initial_learning_rate)
        self.initial_learning_rate = float(initial_learning_rate)
        self.end_learning_rate = float(end_learning_rate)
        self.decay_steps = decay_steps
        self.warmup_steps = warmup_steps
        self.power = float(power)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = float(self.warmup_steps)
        span = float(self.decay_steps - self.warmup_steps)
        progress = ops.minimum(ops.maximum(step - warm, 0.0), span) / span
        lr = (self.initial_learning_rate - self.end_learning_rate) * ops.power(
            1.0 - progress, self.power
        ) + self.end_learning_rate
        if self.warmup_steps:
            lr = ops.where(step < warm, self.initial_learning_rate * (step + 1.0) / warm, lr)
        return lr

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "warmup_steps": self.warmup_steps,
            "name": self.name,
        }
