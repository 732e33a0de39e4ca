"""The encoder registry: keras.applications networks as multi-scale feature extractors.

Every architecture takes its encoder from here. A backbone is a functional ``keras.Model`` that
takes raw RGB pixels in [0, 255], normalizes them the way the pretrained weights expect (inside
the graph) and returns five feature maps, at strides 2, 4, 8, 16 and 32 (``None`` where a network
has no map at that stride, e.g. ConvNeXt's stride-4 patchify stem has no stride-2 map).

    backbone = build_backbone("resnet50", weights=None)
    f2, f4, f8, f16, f32 = backbone(images)
"""
import difflib
import os
import re
import warnings
from dataclasses import dataclass, field

import keras
from keras import ops

A = keras.applications
STRIDES = (2, 4, 8, 16, 32)

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


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one keras.applications network and where its features are.

    taps: one entry per stride in STRIDES. An entry is a layer name (that layer's output),
    "name:input" (that layer's input), "@output" (the network's output), "Class#k" (the
    output of the k-th layer of that class, for networks whose layers are auto-named) or None.
    """

    constructor: object
    preprocess: str
    taps: tuple
    family: str
    kwargs: dict = field(default_factory=dict)
    # Rebuild with 'same' padding where the original pads 'valid' (Xception, InceptionV3):
    # their maps then sit at exact strides and small inputs (64 px) no longer shrink to nothing.
    same_padding: bool = False


def _resnet_taps(c3, c4):
    return ("conv1_relu", "conv2_block3_out", f"conv3_block{c3}_out", f"conv4_block{c4}_out",
            "conv5_block3_out")


def _resnetv2_taps(c3, c4):
    return ("conv1_conv", "conv2_block3_preact_relu", f"conv3_block{c3}_preact_relu",
            f"conv4_block{c4}_preact_relu", "post_relu")


def _vgg_taps(last):
    return ("block2_conv2", f"block3_conv{last}", f"block4_conv{last}", f"block5_conv{last}",
            "block5_pool")


_EFFNET_TAPS = ("block2a_expand_activation", "block3a_expand_activation",
                "block4a_expand_activation", "block6a_expand_activation", "top_activation")
_EFFNETV2_TAPS = ("block2a_expand_conv:input", "block3a_expand_conv:input",
                  "block4a_expand_activation", "block6a_expand_activation", "top_activation")
_DENSENET_TAPS = ("conv1_relu", "pool2_relu", "pool3_relu", "pool4_relu", "relu")
_INTERNAL = {"include_preprocessing": True}


def _convnext_taps(size, stage3_depth):
    p = f"convnext_{size}_stage"
    return (None, f"{p}_0_block_2_identity", f"{p}_1_block_2_identity",
            f"{p}_2_block_{stage3_depth - 1}_identity", "@output")


BACKBONES = {
    "vgg16": BackboneSpec(A.VGG16, "caffe", _vgg_taps(3), "vgg"),
    "vgg19": BackboneSpec(A.VGG19, "caffe", _vgg_taps(4), "vgg"),
    "resnet50": BackboneSpec(A.ResNet50, "caffe", _resnet_taps(4, 6), "resnet"),
    "resnet101": BackboneSpec(A.ResNet101, "caffe", _resnet_taps(4, 23), "resnet"),
    "resnet152": BackboneSpec(A.ResNet152, "caffe", _resnet_taps(8, 36), "resnet"),
    "resnet50v2": BackboneSpec(A.ResNet50V2, "tf", _resnetv2_taps(4, 6), "resnet_v2"),
    "resnet101v2": BackboneSpec(A.ResNet101V2, "tf", _resnetv2_taps(4, 23), "resnet_v2"),
    "resnet152v2": BackboneSpec(A.ResNet152V2, "tf", _resnetv2_taps(8, 36), "resnet_v2"),
    "mobilenetv2": BackboneSpec(
        A.MobileNetV2, "tf",
        ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
         "block_13_expand_relu", "out_relu"), "mobilenet_v2"),
    "mobilenetv3small": BackboneSpec(
        A.MobileNetV3Small, "none",
        ("expanded_conv_depthwise_pad:input", "expanded_conv_1_depthwise_pad:input",
         "expanded_conv_3_depthwise_pad:input", "expanded_conv_8_depthwise_pad:input",
         "@output"), "mobilenet_v3", _INTERNAL),
    "mobilenetv3large": BackboneSpec(
        A.MobileNetV3Large, "none",
        ("expanded_conv_1_depthwise_pad:input", "expanded_conv_3_depthwise_pad:input",
         "expanded_conv_6_depthwise_pad:input", "expanded_conv_12_depthwise_pad:input",
         "@output"), "mobilenet_v3", _INTERNAL),
    **{f"efficientnetb{i}": BackboneSpec(getattr(A, f"EfficientNetB{i}"), "none", _EFFNET_TAPS,
                                         "efficientnet") for i in range(8)},
    **{f"efficientnetv2{v.lower()}": BackboneSpec(getattr(A, f"EfficientNetV2{v}"), "none",
                                                  _EFFNETV2_TAPS, "efficientnet_v2", _INTERNAL)
       for v in ("B0", "B1", "B2", "B3", "S", "M", "L")},
    "densenet121": BackboneSpec(A.DenseNet121, "torch", _DENSENET_TAPS, "densenet"),
    "densenet169": BackboneSpec(A.DenseNet169, "torch", _DENSENET_TAPS, "densenet"),
    "densenet201": BackboneSpec(A.DenseNet201, "torch", _DENSENET_TAPS, "densenet"),
    "xception": BackboneSpec(
        A.Xception, "tf",
        ("block1_conv2_act", "block3_sepconv1_act", "block4_sepconv1_act",
         "block13_sepconv1_act", "block14_sepconv2_act"), "xception", same_padding=True),
    "inceptionv3": BackboneSpec(
        A.InceptionV3, "tf", ("Activation#2", "Activation#4", "mixed2", "mixed7", "mixed10"),
        "inception_v3", same_padding=True),
    "convnext_tiny": BackboneSpec(A.ConvNeXtTiny, "none", _convnext_taps("tiny", 9), "convnext",
                                  _INTERNAL),
    "convnext_small": BackboneSpec(A.ConvNeXtSmall, "none", _convnext_taps("small", 27),
                                   "convnext", _INTERNAL),
    "convnext_base": BackboneSpec(A.ConvNeXtBase, "none", _convnext_taps("base", 27), "convnext",
                                  _INTERNAL),
}


def list_backbones():
    return sorted(BACKBONES)


def check_backbone(name, allowed=None, arch=None):
    """Return the spec of ``name``; a ValueError names the valid choices otherwise."""
    valid = list(allowed) if allowed is not None else list_backbones()
    if name not in valid:
        who = f" for {arch}" if arch else ""
        hint = difflib.get_close_matches(str(name), valid, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"Unknown or unsupported backbone {name!r}{who}.{extra} "
                         f"Valid backbones: {', '.join(valid)}.")
    return BACKBONES[name]


def _resolve_tap(model, tap):
    if tap is None:
        return None
    if tap == "@output":
        return model.outputs[0]
    if "#" in tap:
        cls, k = tap.split("#")
        layers = [l for l in model.layers if type(l).__name__ == cls]
        return layers[int(k)].output
    if tap.endswith(":input"):
        return model.get_layer(tap[: -len(":input")]).input
    return model.get_layer(tap).output


def _weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def adapt_channels(value, target_shape):
    """Fit a weight made for 3 input channels to another channel count.

    Kernels are averaged over the input-channel axis and repeated, scaled by 3/C so a grey
    image replicated over C channels gives the same response as it did in RGB; per-channel
    statistics (a Normalization layer's mean and variance) are averaged and repeated.
    """
    import numpy as np

    value = np.asarray(value)
    if value.ndim == 4:  # conv kernel [kh, kw, cin, cout]
        channels = target_shape[2]
        mean = value.mean(axis=2, keepdims=True) * (value.shape[2] / channels)
        return np.repeat(mean, channels, axis=2)
    return np.full(target_shape, value.mean(), dtype=value.dtype)


def transfer_weights(source, target):
    """Copy weights layer by layer (in order) between two builds of the same network.

    Shapes may differ only where the input channel count differs; those weights are adapted.
    Layer order, not names, pairs them up: keras auto-names some layers with session counters.
    """
    src, dst = _weighted_layers(source), _weighted_layers(target)
    if len(src) != len(dst):
        raise ValueError(
            f"Cannot transfer weights: {source.name!r} has {len(src)} weighted layers, "
            f"{target.name!r} has {len(dst)}.")
    for s, d in zip(src, dst):
        values = []
        for sw, dw in zip(s.get_weights(), d.get_weights()):
            values.append(sw if sw.shape == dw.shape else adapt_channels(sw, dw.shape))
        d.set_weights(values)


def check_weights_arg(weights):
    if weights is None or weights == "imagenet":
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights must be 'imagenet', None or a file path; got {weights!r}.")
    if not os.path.exists(weights):
        raise FileNotFoundError(f"Weights file not found: {os.fspath(weights)!r}.")


def config_parents(node_config):
    """Names of the layers whose outputs feed a serialized call (any nesting of args)."""
    found = []

    def walk(item):
        if isinstance(item, dict):
            history = item.get("config", {}).get("keras_history") if item.get(
                "class_name") == "__keras_tensor__" else None
            if history:
                found.append(history[0])
                return
            for value in item.values():
                walk(value)
        elif isinstance(item, (list, tuple)):
            for value in item:
                walk(value)

    walk(node_config)
    return found


def config_output_names(config):
    """Names of the layers that give a functional config's outputs."""
    outputs = config["output_layers"]
    if outputs and isinstance(outputs[0], str):  # a single output: [name, node, index]
        outputs = [outputs]
    return [entry[0] for entry in outputs]


def _with_same_padding(net):
    """The same network, its 'valid' convolutions and poolings padded 'same', same weights."""
    config = net.get_config()
    for layer in config["layers"]:
        if layer["config"].get("padding") == "valid":
            layer["config"]["padding"] = "same"
    rebuilt = keras.Model.from_config(config)
    rebuilt.set_weights(net.get_weights())
    return rebuilt


def _biases_before_batch_norm(config):
    """{conv: batch norm} for each biased Conv2D whose one output only feeds a batch norm."""
    layers = {layer["name"]: layer for layer in config["layers"]}
    consumers = {name: [] for name in layers}
    for layer in config["layers"]:
        for node in layer["inbound_nodes"]:
            for parent in config_parents(node):
                consumers[parent].append(layer["name"])
    outputs = set(config_output_names(config))
    pairs = {}
    for name, layer in layers.items():
        users = consumers[name]
        if (layer["class_name"] == "Conv2D" and layer["config"].get("use_bias")
                and layer["config"].get("data_format") == "channels_last"
                and len(layer["inbound_nodes"]) == 1 and name not in outputs
                and len(users) == 1 and _channels_last_norm(layers[users[0]])):
            pairs[name] = users[0]
    return pairs


def _channels_last_norm(layer):
    axis = layer["config"].get("axis")
    return (layer["class_name"] == "BatchNormalization" and len(layer["inbound_nodes"]) == 1
            and axis in (-1, 3, [-1], [3]))


def _fold_conv_biases(net):
    """The same network with every convolution that feeds only a batch norm built without
    bias, the bias moved into that norm's moving mean.

    Exact in both modes: in training the norm subtracts the batch mean, which absorbs any
    constant, and at inference ``(conv + b - mean)`` is ``(conv - (mean - b))``; the moving
    mean then tracks the bias-free convolution, so the two stay consistent while training.
    Why: TensorFlow fuses a bias-free convolution with the batch norm and ReLU after it into
    one oneDNN op at inference, and the training step loses a bias and its gradient per
    convolution (ResNet50 U-Net: about 3% less time either way).
    """
    config = net.get_config()
    pairs = _biases_before_batch_norm(config)
    if not pairs:
        return net
    for layer in config["layers"]:
        if layer["name"] in pairs:
            layer["config"]["use_bias"] = False
    rebuilt = keras.Model.from_config(config)
    for layer in net.layers:
        target = rebuilt.get_layer(layer.name)
        if layer.name in pairs:
            target.kernel.assign(layer.kernel)
        elif layer.weights:
            target.set_weights(layer.get_weights())
    for conv, norm in pairs.items():
        moving_mean = rebuilt.get_layer(norm).moving_mean
        moving_mean.assign(moving_mean - net.get_layer(conv).bias)
    return rebuilt


class WeightsUnavailableError(ConnectionError):
    """The ImageNet weights of a backbone are neither in Keras's cache nor downloadable (no
    network, a proxy refusing the address, ...). The message names the backbone, the address,
    the cache file Keras reads and the way out (``weights=None``)."""

    def __init__(self, message, backbone=None, url=None, cache_file=None):
        super().__init__(message)
        self.backbone, self.url, self.cache_file = backbone, url, cache_file

    def __str__(self):
        return self.args[0] if self.args else ""


_FETCH_FAILURE = re.compile(r"URL fetch failure on (\S+?):? (.*)", re.S)


def _keras_cache_folder():
    """Where ``keras.utils.get_file`` keeps downloaded weights (``cache_subdir="models"``)."""
    try:
        from keras.src.backend import config

        base = os.path.expanduser(config.keras_home())
    except Exception:  # noqa: BLE001 - a Keras without that accessor: its documented default
        base = os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))
    if not os.access(base, os.W_OK):  # get_file's own fallback, as it decides it
        import tempfile

        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return os.path.join(base, "models")


def _weights_unavailable(name, error):
    """The WeightsUnavailableError for a failed ImageNet download (None: another error)."""
    match = _FETCH_FAILURE.search(str(error))
    if match is None:
        return None
    url, reason = match.group(1), " ".join(match.group(2).split())
    code, _, text = reason.partition(" -- ")  # get_file's "<errno or HTTP code> -- <reason>"
    reason = text if code in ("None", "") else f"{code} {text}".strip()
    cache = os.path.join(_keras_cache_folder(), os.path.basename(url.split("?")[0]))
    return WeightsUnavailableError(
        f"the ImageNet weights of backbone {name!r} could not be downloaded from {url} "
        f"({reason or 'no network?'}) and are not in the Keras cache {cache!r}. Copy that file "
        f"there from a machine with network access, or build with weights=None (random "
        f"initialisation).", backbone=name, url=url, cache_file=cache)


def _construct(spec, name, input_shape, weights):
    """Build the feature-extractor model (preprocessing included) for given input shape."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = ImagePreprocessing(spec.preprocess, name="preprocess")(inputs)
    try:
        with warnings.catch_warnings():
            # MobileNets warn that a dynamic input shape gets the 224 px weights: that is what
            # a segmentation backbone wants (the kernels do not depend on the image size).
            warnings.filterwarnings("ignore", message="`input_shape` is undefined or non-square")
            net = spec.constructor(include_top=False, weights=weights, input_tensor=x,
                                   **spec.kwargs)
    except Exception as error:  # noqa: BLE001 - keras.utils.get_file raises a bare Exception
        unavailable = _weights_unavailable(name, error) if weights == "imagenet" else None
        if unavailable is None:
            raise
    else:
        unavailable = None
    if unavailable is not None:
        raise unavailable
    if spec.same_padding:
        net = _with_same_padding(net)
    net = _fold_conv_biases(net)
    taps = [_resolve_tap(net, tap) for tap in spec.taps]
    outputs = [t for t in taps if t is not None]
    # net.inputs is `inputs`, or its copy when the network was rebuilt from its config.
    model = keras.Model(net.inputs[0], outputs, name=name)
    model.tap_strides = tuple(s for s, t in zip(STRIDES, taps) if t is not None)
    return model


def build_backbone(name, *, input_shape=(None, None, 3), weights="imagenet", freeze=False,
                   output_stride=32):
    """Build a registered backbone.

    Returns a functional model mapping [0, 255] images of ``input_shape`` to a list of
    feature maps; ``model.tap_strides`` says the stride of each (a subset of STRIDES).
    ``weights``: "imagenet", None, or the path of a weights file saved from this backbone
    (``backbone.save_weights``) — a file saved from a 3-channel build also loads into a build
    with other channel counts, its first kernel adapted.
    ``output_stride`` 8 or 16 dilates the last stages instead of striding (see dilate.py).
    """
    spec = check_backbone(name)
    check_weights_arg(weights)
    input_shape = tuple(input_shape)
    channels = input_shape[-1]
    if channels is None or channels < 1:
        raise ValueError(f"input_shape must give the channel count; got {input_shape}.")

    if weights == "imagenet" and channels != 3:
        # keras.applications only ships RGB weights: load them into an RGB build, then adapt.
        rgb = _construct(spec, name, input_shape[:-1] + (3,), "imagenet")
        model = _construct(spec, name, input_shape, None)
        transfer_weights(rgb, model)
    elif weights == "imagenet":
        model = _construct(spec, name, input_shape, "imagenet")
    else:
        model = _construct(spec, name, input_shape, None)
        if weights is not None:
            load_backbone_file(model, weights)

    if output_stride != 32:
        from kerasseg.dilate import dilate_backbone

        model = dilate_backbone(model, name, output_stride)
    if freeze:
        model.trainable = False
    return model


def load_backbone_file(model, path):
    """Load a backbone weights file into ``model`` (a registry backbone, named as registered).

    A file saved from a 3-channel build also loads into a build with another channel count:
    it is read into an RGB twin and transferred with the first kernel adapted.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Weights file not found: {path!r}.")
    try:
        model.load_weights(path)
        return
    except Exception as first_error:  # noqa: BLE001 - retried below with channel adaptation
        if model.inputs[0].shape[-1] == 3:
            raise ValueError(
                f"Could not load backbone weights from {path!r} into {model.name!r}: "
                f"{first_error}") from first_error
    rgb = _construct(check_backbone(model.name), model.name,
                     tuple(model.inputs[0].shape[1:-1]) + (3,), None)
    try:
        rgb.load_weights(path)
    except Exception as error:  # noqa: BLE001
        raise ValueError(f"Could not load backbone weights from {path!r} into "
                         f"{model.name!r}: {error}") from error
    transfer_weights(rgb, model)
