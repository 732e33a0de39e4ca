"""Feature pyramid network (Lin et al. 2017), the neck of semantic FPN, Mask R-CNN and Panoptic
FPN, and the semantic branch (Kirillov et al. 2019) semantic FPN and Panoptic FPN share.

1x1 lateral convolutions bring the backbone's maps at strides 4, 8, 16 and 32 to ``filters``
channels; a top-down pathway adds each coarser level, upsampled 2x (nearest), to the next
lateral; a 3x3 convolution smooths every merged map.
"""

from keras import layers

from kerasseg.layers import conv_bn_act, upsample_like

LEVELS = (4, 8, 16, 32)
NORMS = ("group", "batch")


def feature_pyramid(feats, filters, name="fpn", levels=LEVELS):
    """{stride: map} -> {stride: pyramid map} for ``levels`` (finest first)."""
    laterals = {s: layers.Conv2D(filters, 1, name=f"{name}_lateral{s}")(feats[s]) for s in levels}
    merged = {levels[-1]: laterals[levels[-1]]}
    for coarse, fine in zip(levels[:0:-1], levels[-2::-1]):
        top_down = upsample_like(
            merged[coarse], laterals[fine], "nearest", name=f"{name}_topdown{fine}"
        )
        merged[fine] = layers.Add(name=f"{name}_merge{fine}")([laterals[fine], top_down])
    return {
        s: layers.Conv2D(filters, 3, padding="same", name=f"{name}_smooth{s}")(merged[s])
        for s in levels
    }


def coarser_level(pyramid_map, name="fpn_p6"):
    """The stride-2 subsampling of the coarsest map (kernel 1 max pooling): P6 of Mask R-CNN's
    pyramid, read by the RPN only (torchvision's ``LastLevelMaxPool``)."""
    return layers.MaxPooling2D(pool_size=1, strides=2, name=name)(pyramid_map)


def _conv_norm_relu(x, filters, norm, groups, name):
    if norm == "batch":
        return conv_bn_act(x, filters, 3, name=name)
    x = layers.Conv2D(
        filters,
        3,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = layers.GroupNormalization(groups, name=f"{name}_gn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def semantic_head(pyramid, filters, norm, groups, name="seg"):
    """Each level upsampled stage by stage to stride 4, then summed (stride-4 map)."""
    branches = []
    for stride in LEVELS:
        x = pyramid[stride]
        level = stride
        stages = max(LEVELS.index(stride), 1)
        for k in range(stages):
            x = _conv_norm_relu(x, filters, norm, groups, f"{name}{stride}_stage{k + 1}")
            if level > LEVELS[0]:
                level //= 2
                # The pyramid map of the finer level has exactly the 2x size.
                x = upsample_like(x, pyramid[level], "bilinear", name=f"{name}{stride}_up{k + 1}")
        branches.append(x)
    return layers.Add(name=f"{name}_sum")(branches)
