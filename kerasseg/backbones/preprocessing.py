"""In-graph input normalization: what ``keras.applications.<family>.preprocess_input`` does,
as a layer, so a backbone takes raw [0, 255] pixels."""

import keras
from keras import ops

# Mean/std in the [0, 255] pixel scale, per preprocessing mode of keras.applications.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_TORCH_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


@keras.saving.register_keras_serializable(package="kerasseg")
class ImagePreprocessing(keras.layers.Layer):
    """In-graph equivalent of ``keras.applications.<family>.preprocess_input``.

    mode: "caffe" (RGB->BGR, subtract the ImageNet mean), "tf" (scale to [-1, 1]),
    "torch" (scale to [0, 1], ImageNet mean/std), "unit" (scale to [0, 1]) or "none" (the
    network normalizes inside itself, as EfficientNet, MobileNetV3 and ConvNeXt do).
    With other than 3 channels the RGB statistics are averaged over the channels.
    """

    MODES = ("caffe", "tf", "torch", "unit", "none")

    def __init__(self, mode="none", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"Unknown preprocessing mode {mode!r}; valid: {self.MODES}")
        self.mode = mode

    def _stats(self, channels):
        if self.mode == "caffe":
            mean, std = _CAFFE_MEAN_BGR, (1.0, 1.0, 1.0)
        elif self.mode == "torch":
            mean, std = _TORCH_MEAN, _TORCH_STD
        elif self.mode == "tf":
            mean, std = (127.5,) * 3, (127.5,) * 3
        else:  # unit
            mean, std = (0.0,) * 3, (255.0,) * 3
        if channels != 3:
            mean = (sum(mean) / 3.0,) * channels
            std = (sum(std) / 3.0,) * channels
        return mean, std

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        if self.mode == "none":
            return x
        channels = x.shape[-1]
        if self.mode == "caffe" and channels == 3:
            x = ops.flip(x, axis=-1)
        mean, std = self._stats(channels)
        return (x - ops.convert_to_tensor(mean, x.dtype)) / ops.convert_to_tensor(std, x.dtype)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
