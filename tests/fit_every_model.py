"""Fit every registered architecture two steps at 32 px and print one line per model.

Run by tests/test_onednn.py in a subprocess with TF_ENABLE_ONEDNN_OPTS=0, where TensorFlow's
generic CPU kernels (no oneDNN) run: a layer whose gradient exists only under oneDNN fails
here. Light configurations, each exercising the architecture's own layers (dilated
encoders and ASPP included). Each training step computes and applies every gradient, which is
all a missing kernel needs to fail; the losses must be finite and the weights must move.
"""

import sys

import keras
import numpy as np

import kerasseg
from kerasseg import losses

# A light backbone wherever the architecture takes one; the default elsewhere.
OPTIONS = {
    "fcn32s": dict(fc_filters=16),
    "fcn16s": dict(fc_filters=16),
    "fcn8s": dict(fc_filters=16),
    "segnet": dict(),
    "unet": dict(backbone=None, filters=4, depth=2),
    "unetpp": dict(backbone=None, filters=4, depth=2),
    "attention_unet": dict(backbone=None, filters=4, depth=2),
    "deeplabv3": dict(backbone="resnet50", output_stride=8),  # dilated ResNet, ASPP
    "deeplabv3plus": dict(backbone="mobilenetv2", output_stride=16),  # dilated MobileNetV2
    "pspnet": dict(backbone="mobilenetv2", filters=64),  # the pyramid pooling, narrower
    "fc_densenet56": dict(),
    "fc_densenet67": dict(),
    "fc_densenet103": dict(),
    "segformer": dict(variant="b0", decoder_filters=32),  # MiT-B0: attention, Mix-FFN
    "upernet": dict(backbone="alexnet", filters=32, aux_head=True, aux_filters=16),
}
# AlexNet's eight layers: the decoders' own layers are the point here (FPN, RefineNet, LinkNet
# fitted 3-5x faster than on MobileNetV2, which the two above still train).
LIGHT = dict(backbone="alexnet")


SIZE = 32
STEPS = 2


def main(names):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (2 * STEPS, SIZE, SIZE, 3)).astype("float32")
    y = rng.integers(0, 3, (2 * STEPS, SIZE, SIZE)).astype("int32")
    for name in names:
        model = kerasseg.build(name, 3, weights=None, **OPTIONS.get(name, LIGHT))
        outputs = len(model.outputs)
        model.compile(
            optimizer=keras.optimizers.SGD(1e-3),
            loss=[losses.CrossEntropy()] * outputs,
            jit_compile=False,
        )
        # Slots made before fit: made inside the first step, Keras traces the step twice.
        model.optimizer.build(model.trainable_variables)
        before = [w.numpy() for w in model.trainable_weights]
        history = model.fit(
            x, [y] * outputs if outputs > 1 else y, batch_size=2, epochs=1, verbose=0
        )
        loss = history.history["loss"]
        assert np.all(np.isfinite(loss)), (name, loss)
        moved = any(
            not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights)
        )
        assert moved, f"{name}: {STEPS} training steps changed no weight"
        print(f"fitted {name} {loss[-1]:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or kerasseg.list_models(task="semantic"))
