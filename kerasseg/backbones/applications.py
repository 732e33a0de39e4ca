"""Building a registered network as a feature extractor: preprocessing in the graph, the
network itself (a keras.applications model, or any constructor with its signature), rewritten
where that helps ('same' padding, conv biases folded into batch norms), and its taps.
"""

import warnings

import keras

from kerasseg.backbones.graph import config_output_names, config_parents_and_consumers
from kerasseg.backbones.preprocessing import ImagePreprocessing
from kerasseg.backbones.registry import STRIDES
from kerasseg.backbones.weights import weights_unavailable


def resolve_tap(model, tap):
    """The tensor a tap entry of ``BackboneSpec.taps`` names in ``model`` (None for None)."""
    if tap is None:
        return None
    if tap == "@output":
        return model.outputs[0]
    if "#" in tap:
        cls, k = tap.split("#")
        layers = [layer for layer in model.layers if type(layer).__name__ == cls]
        return layers[int(k)].output
    if tap.endswith(":input"):
        return model.get_layer(tap[: -len(":input")]).input
    return model.get_layer(tap).output


def with_same_padding(net):
    """The same network, its 'valid' convolutions and poolings padded 'same', same weights."""
    config = net.get_config()
    for layer in config["layers"]:
        if layer["config"].get("padding") == "valid":
            layer["config"]["padding"] = "same"
    rebuilt = keras.Model.from_config(config)
    rebuilt.set_weights(net.get_weights())
    return rebuilt


def _channels_last_norm(layer):
    axis = layer["config"].get("axis")
    return (
        layer["class_name"] == "BatchNormalization"
        and len(layer["inbound_nodes"]) == 1
        and axis in (-1, 3, [-1], [3])
    )


def _biases_before_batch_norm(config):
    """{conv: batch norm} for each biased Conv2D whose one output only feeds a batch norm."""
    layers = {layer["name"]: layer for layer in config["layers"]}
    _, consumers = config_parents_and_consumers(config)
    outputs = set(config_output_names(config))
    pairs = {}
    for name, layer in layers.items():
        users = consumers[name]
        if (
            layer["class_name"] == "Conv2D"
            and layer["config"].get("use_bias")
            and layer["config"].get("data_format") == "channels_last"
            and len(layer["inbound_nodes"]) == 1
            and name not in outputs
            and len(users) == 1
            and _channels_last_norm(layers[users[0]])
        ):
            pairs[name] = users[0]
    return pairs


def fold_conv_biases(net):
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


def _network(spec, name, x, weights):
    """``spec.constructor`` over ``x``; a failed ImageNet download becomes a
    WeightsUnavailableError."""
    try:
        with warnings.catch_warnings():
            # MobileNets warn that a dynamic input shape gets the 224 px weights: that is what
            # a segmentation backbone wants (the kernels do not depend on the image size).
            warnings.filterwarnings("ignore", message="`input_shape` is undefined or non-square")
            return spec.constructor(
                include_top=False, weights=weights, input_tensor=x, **spec.kwargs
            )
    except Exception as error:  # noqa: BLE001 - keras.utils.get_file raises a bare Exception
        unavailable = weights_unavailable(name, error) if weights == "imagenet" else None
        if unavailable is None:
            raise
    raise unavailable  # outside the handler: the download's traceback says nothing more


def construct(spec, name, input_shape, weights):
    """The feature-extractor model of ``spec`` (a checked registry entry named ``name``) over
    [0, 255] images of ``input_shape``; ``weights`` is "imagenet" or None.

    Its outputs are the taps that exist; ``model.tap_strides`` gives their strides.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = ImagePreprocessing(spec.preprocess, name="preprocess")(inputs)
    net = _network(spec, name, x, weights)
    if spec.same_padding:
        net = with_same_padding(net)
    net = fold_conv_biases(net)
    taps = [resolve_tap(net, tap) for tap in spec.taps]
    outputs = [t for t in taps if t is not None]
    # net.inputs is `inputs`, or its copy when the network was rebuilt from its config.
    model = keras.Model(net.inputs[0], outputs, name=name)
    model.tap_strides = tuple(s for s, t in zip(STRIDES, taps) if t is not None)
    return model
