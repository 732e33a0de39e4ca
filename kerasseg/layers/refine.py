"""RefineNet blocks (Lin et al. 2017, "RefineNet: Multi-Path Refinement Networks").

A RefineNet block takes one or more feature paths (finest first), runs two residual conv units
on each, fuses them at the finest resolution (multi-resolution fusion), gathers context with
chained residual pooling and ends with one more residual conv unit. The units carry no batch
norm, as in the paper: they refine features of a batch-normalized encoder.
"""

from keras import layers

from kerasseg.layers.upsampling import upsample_like

__all__ = [
    "residual_conv_unit",
    "multi_resolution_fusion",
    "chained_residual_pooling",
    "refinenet_block",
]


def residual_conv_unit(x, name):
    """ReLU-3x3 conv-ReLU-3x3 conv, added to the input; keeps the channel count."""
    filters = x.shape[-1]
    y = layers.Activation("relu", name=f"{name}_relu1")(x)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(y)
    y = layers.Activation("relu", name=f"{name}_relu2")(y)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def multi_resolution_fusion(paths, filters, name):
    """3x3 conv of every path to ``filters`` maps, bilinear upsampling to ``paths[0]``'s size, sum.

    ``paths[0]`` must be the finest. A single path passes through unchanged (the paper's
    RefineNet-4 has nothing to fuse).
    """
    if len(paths) == 1:
        return paths[0]
    adapted = [
        layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i + 1}")(p)
        for i, p in enumerate(paths)
    ]
    resized = [adapted[0]] + [
        upsample_like(a, adapted[0], "bilinear", name=f"{name}_up{i + 2}")
        for i, a in enumerate(adapted[1:])
    ]
    return layers.Add(name=f"{name}_sum")(resized)


def chained_residual_pooling(x, stages=4, name="crp"):
    """ReLU, then a chain of (5x5 max pool stride 1, 3x3 conv) stages, each output added in.

    Every stage pools the previous stage's output, so later ones see ever larger regions;
    the running sum keeps the input (the residual path).
    """
    filters = x.shape[-1]
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    total, path = x, x
    for i in range(stages):
        path = layers.MaxPooling2D(5, strides=1, padding="same", name=f"{name}_pool{i + 1}")(path)
        path = layers.Conv2D(
            filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i + 1}"
        )(path)
        total = layers.Add(name=f"{name}_add{i + 1}")([total, path])
    return total


def refinenet_block(paths, filters, name, crp_stages=4, rcus_per_path=2):
    """One RefineNet block over ``paths`` (finest first); returns ``filters`` maps at the finest
    path's resolution (a single path keeps its own width)."""
    refined = []
    for p, path in enumerate(paths):
        for r in range(rcus_per_path):
            path = residual_conv_unit(path, name=f"{name}_path{p + 1}_rcu{r + 1}")
        refined.append(path)
    x = multi_resolution_fusion(refined, filters, name=f"{name}_mrf")
    x = chained_residual_pooling(x, crp_stages, name=f"{name}_crp")
    return residual_conv_unit(x, name=f"{name}_out_rcu")
