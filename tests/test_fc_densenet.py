"""FC-DenseNet56/67/103 (the Tiramisu): the builder contract (harness) on the paper
configurations (CamVid's 11 classes), the papers' sizes counted independently of Keras, the
transposed convolutions, backbones refused, static sizes, weights files.

Each paper build is made once per module (``zoo``).
"""

import keras
import numpy as np
import pytest

import kerasseg
from tests.harness import ModelCache, images, outputs_of

H, W = 64, 96
CLASSES = 11
FCD = ("fc_densenet56", "fc_densenet67", "fc_densenet103")


@pytest.fixture(scope="module")
def zoo():
    return ModelCache()


def _fcd_count(growth, blocks, classes, first=48):
    """Parameters of FC-DenseNet by the paper's rules, counted independently of Keras."""

    def conv(k, cin, cout):
        return k * k * cin * cout + cout

    def bn(c):
        return 4 * c  # gamma, beta, moving mean, moving variance

    total, c, skips = conv(3, 3, first), first, []
    for size in blocks[:5]:
        for _ in range(size):
            total += bn(c) + conv(3, c, growth)
            c += growth
        skips.append(c)
        total += bn(c) + conv(1, c, c)
    for _ in range(blocks[5]):
        total += bn(c) + conv(3, c, growth)
        c += growth
    new = growth * blocks[5]
    for size, skip in zip(blocks[6:], reversed(skips)):
        total += conv(3, new, new)  # the transposed convolution of the new maps only
        c = new + skip
        for _ in range(size):
            total += bn(c) + conv(3, c, growth)
            c += growth
        new = growth * size
    return total + conv(1, c, classes)


@pytest.mark.parametrize(
    "arch, paper, growth, blocks",
    [
        ("fc_densenet56", 1.5e6, 12, (4,) * 11),
        ("fc_densenet67", 3.5e6, 16, (5,) * 11),
        ("fc_densenet103", 9.4e6, 16, (4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4)),
    ],
)
def test_fc_densenet_paper_contract_and_size(zoo, arch, paper, growth, blocks):
    # No backbone (freezing refused), saved and reloaded, rebuilt from its config.
    model = zoo.run(
        arch,
        num_classes=CLASSES,
        sizes=((H, W),),
        expected_multiple=32,
        expected_params=_fcd_count(growth, blocks, CLASSES),
    )
    count = model.count_params()
    if arch == "fc_densenet56":
        # The paper's rules give 1.40 M; its Table 2 prints 1.5 M (6.8 % more). The same
        # rules reproduce the other two sizes to 0.3 %, so the table is off for this one.
        assert abs(count - 1.40e6) / 1.40e6 < 0.01
    else:
        assert abs(count - paper) / paper < 0.04
    deconvs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert [d.filters for d in deconvs] == [growth * b for b in blocks[5:10]]
    assert all(d.kernel_size == (3, 3) and d.strides == (2, 2) for d in deconvs)
    assert model.get_layer("first_conv").filters == 48


@pytest.mark.parametrize("arch", FCD)
@pytest.mark.parametrize("backbone", ["resnet50", "mobilenetv2"])
def test_fc_densenet_refuses_a_backbone(arch, backbone):
    with pytest.raises(ValueError, match=f"own encoder.*{backbone}"):
        kerasseg.build(arch, CLASSES, backbone=backbone, weights=None)


def test_static_size_at_the_multiple_builds():
    model = kerasseg.fc_densenet56(4, input_shape=(32, 64, 1), weights=None)
    assert model.output.shape == (None, 32, 64, 4)
    assert outputs_of(model, images(1, 32, 64)[..., :1])[0].shape == (1, 32, 64, 4)


def test_whole_model_weights_file(zoo, tmp_path):
    source = zoo.get("fc_densenet56", CLASSES)
    x = images(2, H, W)
    path = tmp_path / "fcd56.weights.h5"
    source.save_weights(path)
    copy = kerasseg.fc_densenet56(CLASSES, weights=str(path))
    np.testing.assert_allclose(outputs_of(copy, x)[0], outputs_of(source, x)[0], atol=1e-5)
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        kerasseg.fc_densenet56(CLASSES, weights=str(tmp_path / "missing.weights.h5"))
