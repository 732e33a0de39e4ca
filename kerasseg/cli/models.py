"""``kerasseg models``: the architectures, their default backbones and the backbone names,
from the static tables below, without importing TensorFlow (a test checks the tables against
the registries)."""

from kerasseg.cli.common import say

HELP = "list the architectures and their default backbones"

# Each architecture's default backbone (None: its own encoder).
DEFAULT_BACKBONES = {
    "attention_unet": "resnet50",
    "deeplabv3": "resnet50",
    "deeplabv3plus": "resnet50",
    "fc_densenet103": None,
    "fc_densenet56": None,
    "fc_densenet67": None,
    "fcn16s": "vgg16",
    "fcn32s": "vgg16",
    "fcn8s": "vgg16",
    "fpn": "resnet50",
    "linknet": "resnet50",
    "mask_rcnn": "resnet50",
    "panoptic_deeplab": "resnet50",
    "panoptic_fpn": "resnet50",
    "pspnet": "resnet50",
    "refinenet": "resnet50",
    "segformer": None,
    "segnet": "vgg16",
    "unet": None,
    "unetpp": "resnet50",
    "upernet": "convnext_tiny",
}
BACKBONE_NAMES = (
    "alexnet",
    "convnext_base",
    "convnext_small",
    "convnext_tiny",
    "densenet121",
    "densenet169",
    "densenet201",
    "efficientnetb0",
    "efficientnetb1",
    "efficientnetb2",
    "efficientnetb3",
    "efficientnetb4",
    "efficientnetb5",
    "efficientnetb6",
    "efficientnetb7",
    "efficientnetv2b0",
    "efficientnetv2b1",
    "efficientnetv2b2",
    "efficientnetv2b3",
    "efficientnetv2l",
    "efficientnetv2m",
    "efficientnetv2s",
    "googlenet",
    "inceptionv3",
    "mobilenetv2",
    "mobilenetv3large",
    "mit_b0",
    "mit_b1",
    "mit_b2",
    "mit_b3",
    "mit_b4",
    "mit_b5",
    "mobilenetv3small",
    "resnet101",
    "resnet101v2",
    "resnet152",
    "resnet152v2",
    "resnet50",
    "resnet50_v1_5",
    "resnet50v2",
    "vgg16",
    "vgg19",
    "xception",
)


def add_arguments(parser):
    """No options of its own."""


def run(args):
    say(f"{'model':<16} default backbone")
    for name in sorted(DEFAULT_BACKBONES):
        backbone = DEFAULT_BACKBONES[name]
        say(f"{name:<16} {backbone if backbone is not None else '(none: own encoder)'}")
    say()
    say("backbones: " + ", ".join(sorted(BACKBONE_NAMES)))
    return 0
