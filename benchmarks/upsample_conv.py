"""Time kerasseg's U-Net upsample-convolution against the direct form, per decoder stage.

Each stage of ``unet(backbone="resnet50")`` at 256x256 starts with a 3x3 convolution over the
coarser map upsampled (nearest) and concatenated with the skip. kerasseg's ``UpsampleConv2D``
computes it by output phase at the coarse resolution; the direct form is the stock Keras
``UpSampling2D`` + ``Concatenate`` + ``Conv2D``. Both are followed by the same batch norm and
ReLU, and timed in one process, alternating, as ``predict_on_batch`` (inference) and
``train_on_batch`` (SGD, mean squared error). Prints milliseconds per call, medians.

    python benchmarks/upsample_conv.py                 # all five stages, batch 4
    python benchmarks/upsample_conv.py --stages 1 5 --repeats 20
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasseg.layers import FusedBatchNormalization, UpsampleConv2D  # noqa: E402

# (coarse map, skip map or None, filters) of the five decoder stages at 256x256.
STAGES = {
    1: ((8, 8, 2048), (16, 16, 1024), 256),
    2: ((16, 16, 256), (32, 32, 512), 128),
    3: ((32, 32, 128), (64, 64, 256), 64),
    4: ((64, 64, 64), (128, 128, 64), 32),
    5: ((128, 128, 32), None, 16),
}


def build(form, coarse, skip, filters):
    x = keras.Input(coarse)
    reference = keras.Input(skip if skip else (2 * coarse[0], 2 * coarse[1], 3))
    if form == "phases":
        y = UpsampleConv2D(filters, merge=skip is not None, use_bias=False)(x, reference)
    else:
        y = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
        if skip:
            y = keras.layers.Concatenate()([y, reference])
        y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = keras.layers.ReLU()(FusedBatchNormalization()(y))
    model = keras.Model([x, reference], y)
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, nargs="+", default=list(STAGES), choices=list(STAGES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("stage  mode        phases ms  direct ms  direct/phases")
    for stage in args.stages:
        coarse, skip, filters = STAGES[stage]
        models = {form: build(form, coarse, skip, filters) for form in ("phases", "direct")}
        inputs = [
            rng.normal(size=(args.batch,) + tuple(m.shape[1:])).astype("float32")
            for m in models["phases"].inputs
        ]
        target = rng.normal(size=(args.batch,) + tuple(models["phases"].output.shape[1:]))
        calls = {
            "inference": lambda m, x=inputs: m.predict_on_batch(x),
            "training": lambda m, x=inputs, y=target: m.train_on_batch(x, y.astype("float32")),
        }
        for mode, call in calls.items():
            for model in models.values():
                for _ in range(2):  # trace, then warm up
                    call(model)
            times = {form: [] for form in models}
            for _ in range(args.repeats):
                for form, model in models.items():
                    start = time.perf_counter()
                    call(model)
                    times[form].append(1e3 * (time.perf_counter() - start))
            ms = {form: float(np.median(t)) for form, t in times.items()}
            print(
                f"{stage:>5}  {mode:<10}  {ms['phases']:9.1f}  {ms['direct']:9.1f}  "
                f"{ms['direct'] / ms['phases']:12.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
