"""Distribution strategies, the precision policy, and the Keras-private multi-worker patches."""

import os

import keras
import tensorflow as tf

__all__ = [
    "STRATEGIES",
    "get_strategy",
    "is_chief",
    "is_multi_worker",
    "precision_policy",
    "shard_by_element",
    "multi_worker_fixes",
]

STRATEGIES = ("none", "mirrored", "multiworker", "tpu")


def get_strategy(name="none"):
    """A ``tf.distribute.Strategy`` by name.

    "none": the default (one device). "mirrored": all local GPUs, or all logical CPU devices
    when there is no GPU. "multiworker": ``MultiWorkerMirroredStrategy`` configured by the
    ``TF_CONFIG`` environment variable (create it before any other TensorFlow work). "tpu":
    ``TPUStrategy`` on the TPU named by ``TPU_NAME`` (empty: the local or Colab TPU).
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    key = "none" if name is None else str(name).lower()
    if key == "none":
        return tf.distribute.get_strategy()
    if key == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if key == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "strategy 'multiworker' needs the TF_CONFIG environment variable "
                "(cluster addresses and this process's task)."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if key == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=os.environ.get("TPU_NAME", "")
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}.")


def is_chief(strategy):
    """Whether this process writes the run's files (always, outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type or isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and int(resolver.task_id or 0) == 0 and not has_chief


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def precision_policy(mixed_precision=False):
    """The Keras dtype policy: float32, or mixed float16 on GPU and mixed bfloat16 elsewhere
    (CPUs and TPUs compute bfloat16 natively; float16 on them is slow or unsupported)."""
    if not mixed_precision:
        return "float32"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def shard_by_element(ds):
    """``ds`` sharded over workers by element: generated and file-list datasets cannot be
    sharded by file. None stays None."""
    if ds is None:
        return None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def multi_worker_fixes(model):
    """Work around two places where Keras 3 (3.15) breaks under MultiWorkerMirroredStrategy
    once there are two workers:

    - it builds the model from its first batch with ``strategy.reduce`` over the whole
      ``(x, y)`` structure, which this strategy rejects (it reduces one value at a time),
      and which could not work anyway when workers hold images of different sizes;
    - it merges each step's logs with ``strategy.reduce("MEAN", value, axis=0)``, which fails
      on the scalars every loss and metric returns.

    The build only needs the batch's shapes and dtypes, so it takes this worker's own values
    (no cross-worker communication); the train/test steps return their logs with a leading
    axis of one, which that mean then removes again (the values are already synchronised
    across workers, so the mean changes nothing). These patch Keras-private methods
    (``_maybe_symbolic_build``, ``_symbolic_build``); ``tests/test_train.py`` runs two workers.
    """
    if getattr(model, "_kerasseg_multi_worker", False):
        return
    strategy = model.distribute_strategy

    def local_value(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = keras.tree.map_structure(local_value, next(it))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    def with_leading_axis(step):
        def wrapped(data):
            return keras.tree.map_structure(lambda v: tf.expand_dims(v, 0), step(data))

        return wrapped

    model._maybe_symbolic_build = maybe_symbolic_build
    model.train_step = with_leading_axis(model.train_step)
    model.test_step = with_leading_axis(model.test_step)
    model._kerasseg_multi_worker = True
