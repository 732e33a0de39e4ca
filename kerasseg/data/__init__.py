"""`prepare`: the training / evaluation tf.data pipeline (augmentation, batching, prefetch).

    train = kerasseg.data.prepare(ds, batch_size=8, crop_size=(512, 512), training=True, seed=0)
    val = kerasseg.data.prepare(val_ds, batch_size=1, training=False)

Modules: ``pipeline`` (``prepare``; its docstring describes the recipe), ``transforms`` (random
resize and crop, padding, fit-within), ``photometric`` (the colour distortion by channel count),
``instances`` (instance targets: masks through the same geometry, boxes recomputed, padding to
``max_instances``; ``check_instances`` checks a dataset on the numpy side before training).
"""

from kerasseg.data.instances import check_instance_example, check_instances
from kerasseg.data.photometric import photometric, photometric_channels
from kerasseg.data.pipeline import AUTOTUNE, prepare

__all__ = [
    "prepare",
    "AUTOTUNE",
    "photometric",
    "photometric_channels",
    "check_instances",
    "check_instance_example",
]
