"""Every builder: registered under its name with the design signature, and the argument
errors all of them share (unknown backbone, backbone None where there is no own encoder,
missing weights file). What each architecture builds is in its family's test file, checked
by the harness (tests/harness/)."""

import inspect
import os

import pytest

import kerasseg

DEFAULT_BACKBONE = {
    "fcn32s": "vgg16",
    "fcn16s": "vgg16",
    "fcn8s": "vgg16",
    "segnet": "vgg16",
    "unet": None,
    "unetpp": "resnet50",
    "attention_unet": "resnet50",
    "linknet": "resnet50",
    "fpn": "resnet50",
    "pspnet": "resnet50",
    "deeplabv3": "resnet50",
    "deeplabv3plus": "resnet50",
    "refinenet": "resnet50",
    "fc_densenet56": None,
    "fc_densenet67": None,
    "fc_densenet103": None,
}
ARCHS = tuple(DEFAULT_BACKBONE)
BACKBONE_ARCHS = ("unetpp", "attention_unet", "linknet", "fpn", "refinenet")


def test_all_architectures_are_registered():
    assert set(ARCHS) <= set(kerasseg.list_models())


@pytest.mark.parametrize("arch", ARCHS)
def test_registered_with_the_design_signature(arch):
    builder = getattr(kerasseg, arch)
    assert kerasseg.models.MODELS[arch] is builder
    params = inspect.signature(builder).parameters
    assert list(params)[0] == "num_classes"
    for option, default in (
        ("weights", "imagenet"),
        ("input_shape", (None, None, 3)),
        ("activation", "softmax"),
        ("freeze_backbone", False),
        ("class_names", None),
    ):
        assert params[option].default == default, (arch, option)
        assert params[option].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["backbone"].default == DEFAULT_BACKBONE[arch], arch


@pytest.mark.parametrize("arch", BACKBONE_ARCHS)
def test_unknown_backbone_names_the_choices(arch):
    with pytest.raises(ValueError, match=r"resnet18.*Valid backbones:.*resnet50"):
        kerasseg.build(arch, 2, backbone="resnet18", weights=None)


def test_unknown_backbone_is_a_value_error():
    with pytest.raises(ValueError, match="Valid backbones"):
        kerasseg.fcn8s(5, weights=None, backbone="resnet5")


@pytest.mark.parametrize("arch", ["linknet", "fpn", "refinenet"])
def test_backbone_none_is_refused_where_there_is_no_own_encoder(arch):
    with pytest.raises(ValueError, match="Valid backbones"):
        kerasseg.build(arch, 2, backbone=None, weights=None)


@pytest.mark.parametrize("arch", ["segnet", "fcn32s", "fc_densenet56"])
def test_missing_weights_file_is_a_file_not_found_error(tmp_path, arch):
    missing = str(tmp_path / "nope.weights.h5")
    with pytest.raises(FileNotFoundError, match="nope.weights.h5"):
        kerasseg.build(arch, 5, weights=missing)


def test_every_architecture_is_run_through_the_harness():
    """Each registered builder is named in a test file that runs the harness on it (shapes,
    freeze, .keras round trip, config, static sizes: tests/harness/segmenter.py)."""
    here = os.path.dirname(os.path.abspath(__file__))
    sources = []
    for name in sorted(os.listdir(here)):
        if name.startswith("test_") and name.endswith(".py"):
            with open(os.path.join(here, name), encoding="utf-8") as f:
                text = f.read()
            if ".run(" in text or "run_segmenter_test(" in text:
                sources.append(text)
    missing = [
        arch
        for arch in kerasseg.list_models(task="semantic")
        if not any(f'"{arch}"' in text for text in sources)
    ]
    assert not missing, missing
