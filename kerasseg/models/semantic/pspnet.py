"""PSPNet (Zhao et al. 2017): a dilated backbone and the pyramid pooling module.

The last feature map (output stride 8 by default) is average-pooled to 1x1, 2x2, 3x3 and 6x6
grids, each reduced by a 1x1 convolution to a quarter of its channels, upsampled back
bilinearly and concatenated with the map; a 3x3 convolution (512), dropout 0.1 and a 1x1
classifier follow, and the scores are resized to the input. The pooling is adaptive (windows
computed at run time), so any input size works.

``aux_head=True`` adds the paper's auxiliary classifier on the backbone's stage-4 features
(nominal stride 16; at output stride 8 that map is at stride 8): 3x3 convolution (256),
dropout, 1x1 classifier, resized to the input. The model then has two outputs, the main one
first, named ``output`` and ``aux_output``; train with e.g.
``model.compile(loss=[loss, loss], loss_weights=[1.0, 0.4])`` and predict/export with the
first. Backbones: those ``kerasseg.backbones.dilation`` can dilate. Input sides: multiples of
``output_stride``.
"""

from keras import layers

from kerasseg.backbones import check_output_stride
from kerasseg.layers import conv_bn_act, pyramid_pooling_module
from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model
from kerasseg.models.semantic.deeplab import dilated_features

BINS = (1, 2, 3, 6)


def _aux_head(x, inputs, num_classes, activation, filters, dropout):
    x = conv_bn_act(x, filters, 3, name="aux")
    x = layers.Dropout(dropout, name="aux_dropout")(x)
    return base.head(x, inputs, num_classes, activation, name="aux", output_name="aux_output")


@register_model("pspnet")
def pspnet(
    num_classes,
    *,
    backbone="resnet50",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    output_stride=8,
    bins=BINS,
    filters=512,
    dropout=0.1,
    aux_head=False,
    aux_filters=256,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """PSPNet; see the module docstring.

    output_stride: 8 (the paper's) or 16. bins: the pooling grids (1, 2, 3, 6).
    filters: the 3x3 convolution after the pyramid (512). aux_head, aux_filters: the
    auxiliary classifier on stage-4 features and its width (256).
    """
    check_output_stride("pspnet", output_stride)
    input_shape = base.check_args("pspnet", num_classes, activation, input_shape, output_stride)
    if not bins or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in bins):
        raise ValueError(f"pspnet: bins must be positive integers; got {bins!r}.")
    inputs = base.model_input(input_shape)
    encoder, feats = dilated_features(
        "pspnet", backbone, input_shape, weights, freeze_backbone, output_stride, inputs
    )
    x = pyramid_pooling_module(feats[32], tuple(bins), name="ppm")
    x = conv_bn_act(x, filters, 3, name="ppm_fuse")
    x = layers.Dropout(dropout, name="ppm_dropout")(x)
    outputs = base.head(x, inputs, num_classes, activation)
    if aux_head:
        outputs = [
            outputs,
            _aux_head(feats[16], inputs, num_classes, activation, aux_filters, dropout),
        ]
    model = base.segmenter(
        inputs, outputs, name=name or f"pspnet_{backbone}", multiple=output_stride
    )
    return base.load_weights(model, encoder, weights, "pspnet")
