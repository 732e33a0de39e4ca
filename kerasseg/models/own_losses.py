"""``OwnLossSegmenter``: the base of the models that carry their losses (instance, panoptic).

Mask R-CNN, Panoptic FPN and Panoptic-DeepLab derive their training targets from the batch
(anchor matching, instance masks, centre heatmaps) and compute several losses inside the step,
as keras-hub's detectors do: ``compile(optimizer=...)`` then ``fit``. A subclass names its
losses in ``LOSS_NAMES`` and implements ``task_losses(images, targets, training) -> {name:
scalar}``; this class sums them, applies the gradients and reports each loss and the total.
"""

import keras
import tensorflow as tf

from kerasseg.models.segmenter import Segmenter


@keras.saving.register_keras_serializable(package="kerasseg")
class OwnLossSegmenter(Segmenter):
    LOSS_NAMES = ()

    def __init__(self, inputs, outputs, name=None, *, seed=None, **kw):
        super().__init__(inputs, outputs, name=name, **kw)
        self.seed = seed
        self._seeds = keras.random.SeedGenerator(seed, name="sampling_seed")
        self._trackers = {k: keras.metrics.Mean(name=k) for k in ("loss",) + self.LOSS_NAMES}

    def compile(self, optimizer="rmsprop", **kwargs):
        """``compile(optimizer=...)``: the losses are the model's own (no ``loss``)."""
        super().compile(optimizer=optimizer, **kwargs)
        # Its slot variables now, not inside the first traced step: creating them there makes
        # Keras trace the (large) training step twice.
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        # Keras skips this for a model whose compile() is overridden; this one's takes the same
        # arguments, so a loaded .keras file comes back compiled, its optimizer state restored.
        self.compile(**keras.saving.deserialize_keras_object(config))

    @property
    def metrics(self):
        return list(self._trackers.values())

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}

    def task_losses(self, images, targets, training=True):
        raise NotImplementedError(f"{type(self).__name__} must implement task_losses().")

    def _record(self, losses):
        total = tf.add_n(list(losses.values()))
        self._trackers["loss"].update_state(total)
        for key, value in losses.items():
            self._trackers[key].update_state(value)
        return total

    def train_step(self, data):
        images, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            losses = self.task_losses(images, targets, training=True)
            total = tf.add_n(list(losses.values()))
            if self.losses:
                total += tf.add_n(self.losses)
            # Gradients are summed over replicas: average them, as Keras' own losses do.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(total / replicas)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        self._record(losses)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        images, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._record(self.task_losses(images, targets, training=False))
        return {m.name: m.result() for m in self.metrics}
