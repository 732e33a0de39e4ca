"""Transformer blocks on feature maps: SegFormer's efficient self-attention (keys and values
over a spatially reduced map), its Mix-FFN, stochastic depth (DropPath) and its all-MLP
decoder's fusion (MLPFusion).

The layers take and return channels-last maps ``(N, H, W, C)`` rather than token sequences,
so the map's height and width are never guessed from the sequence length: any input size,
square or not, works, and the sizes may be known only at run time.
"""

import keras
import tensorflow as tf
from keras import layers

__all__ = ["DropPath", "EfficientAttention", "MixFFN", "MLPFusion"]


@keras.saving.register_keras_serializable(package="kerasseg")
class EfficientAttention(layers.Layer):
    """Multi-head self-attention whose keys and values come from a map reduced ``sr_ratio``
    times per side (Xie et al. 2021, "efficient self-attention").

    Queries: a dense projection of every position. Keys and values: dense projections of the
    map after a ``sr_ratio`` x ``sr_ratio`` stride-``sr_ratio`` convolution and a layer norm
    (none where ``sr_ratio`` is 1), so the attention matrix is ``HW x HW / sr_ratio**2``.
    The heads' outputs are concatenated and projected back to ``filters`` channels.
    """

    def __init__(
        self,
        filters,
        num_heads,
        sr_ratio=1,
        attention_dropout=0.0,
        dropout=0.0,
        epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if filters % num_heads:
            raise ValueError(
                f"EfficientAttention: filters {filters} is not divisible by num_heads {num_heads}."
            )
        self.filters = int(filters)
        self.num_heads = int(num_heads)
        self.sr_ratio = int(sr_ratio)
        self.attention_dropout = float(attention_dropout)
        self.dropout = float(dropout)
        self.epsilon = float(epsilon)
        self.query = layers.Dense(self.filters, name="query")
        self.key = layers.Dense(self.filters, name="key")
        self.value = layers.Dense(self.filters, name="value")
        self.projection = layers.Dense(self.filters, name="projection")
        if self.sr_ratio > 1:
            self.reduction = layers.Conv2D(
                self.filters, self.sr_ratio, strides=self.sr_ratio, name="reduction"
            )
            self.reduction_norm = layers.LayerNormalization(
                epsilon=self.epsilon, name="reduction_norm"
            )
        self.attention_drop = layers.Dropout(self.attention_dropout)
        self.output_drop = layers.Dropout(self.dropout)

    def build(self, input_shape):
        self.query.build(input_shape)
        kv_shape = input_shape
        if self.sr_ratio > 1:
            self.reduction.build(input_shape)
            kv_shape = tuple(input_shape[:-1]) + (self.filters,)
            self.reduction_norm.build(kv_shape)
        self.key.build(kv_shape)
        self.value.build(kv_shape)
        self.projection.build(tuple(input_shape[:-1]) + (self.filters,))

    def _heads(self, x, batch):
        depth = self.filters // self.num_heads
        x = tf.reshape(x, (batch, -1, self.num_heads, depth))
        return tf.transpose(x, (0, 2, 1, 3))  # (N, heads, positions, depth)

    def call(self, x, training=None):
        shape = tf.shape(x)
        batch, height, width = shape[0], shape[1], shape[2]
        queries = self._heads(self.query(x), batch)
        source = x
        if self.sr_ratio > 1:
            source = self.reduction_norm(self.reduction(x))
        keys = self._heads(self.key(source), batch)
        values = self._heads(self.value(source), batch)
        scale = (self.filters // self.num_heads) ** -0.5
        scores = tf.matmul(queries, keys, transpose_b=True) * tf.cast(scale, queries.dtype)
        weights = tf.nn.softmax(scores, axis=-1)
        weights = self.attention_drop(weights, training=training)
        out = tf.matmul(weights, values)  # (N, heads, HW, depth)
        out = tf.reshape(tf.transpose(out, (0, 2, 1, 3)), (batch, height, width, self.filters))
        return self.output_drop(self.projection(out), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "num_heads": self.num_heads,
            "sr_ratio": self.sr_ratio,
            "attention_dropout": self.attention_dropout,
            "dropout": self.dropout,
            "epsilon": self.epsilon,
        }


@keras.saving.register_keras_serializable(package="kerasseg")
class MixFFN(layers.Layer):
    """SegFormer's Mix-FFN: dense to ``hidden`` channels, 3x3 depthwise convolution (which
    gives the positional information in place of position embeddings), GELU, dense back to
    ``filters``.

    approximate_gelu: False for the exact GELU (the paper's, PyTorch's ``nn.GELU``); True for
    the tanh approximation (what keras-hub's SegFormer computes, so converted presets give
    its outputs).
    """

    def __init__(self, filters, hidden, approximate_gelu=False, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.hidden = int(hidden)
        self.approximate_gelu = bool(approximate_gelu)
        self.dropout = float(dropout)
        self.expand = layers.Dense(self.hidden, name="expand")
        self.depthwise = layers.DepthwiseConv2D(3, padding="same", name="depthwise")
        self.contract = layers.Dense(self.filters, name="contract")
        self.drop = layers.Dropout(self.dropout)

    def build(self, input_shape):
        self.expand.build(input_shape)
        hidden_shape = tuple(input_shape[:-1]) + (self.hidden,)
        self.depthwise.build(hidden_shape)
        self.contract.build(hidden_shape)

    def call(self, x, training=None):
        x = self.depthwise(self.expand(x))
        x = keras.ops.gelu(x, approximate=self.approximate_gelu)
        x = self.drop(x, training=training)
        return self.drop(self.contract(x), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "hidden": self.hidden,
            "approximate_gelu": self.approximate_gelu,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="kerasseg")
class DropPath(layers.Layer):
    """Stochastic depth: in training, zero a residual branch for a random ``rate`` of the
    samples of a batch and scale the others by ``1 / (1 - rate)``; the identity otherwise."""

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"DropPath: rate must be in [0, 1); got {rate!r}.")
        self.rate = float(rate)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        shape = (tf.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        keep = keras.random.uniform(shape, seed=self.generator) >= self.rate
        return x * tf.cast(keep, x.dtype) / tf.cast(1.0 - self.rate, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kerasseg")
class MLPFusion(layers.Layer):
    """SegFormer's all-MLP fusion of a pyramid, computed without its widest tensor.

    Takes the maps finest first ``[x_1, ..., x_n]`` (strides 4, 8, 16, 32) and holds exactly
    the reference decoder's weights: a linear layer per map (``linear{i}_kernel``
    ``(C_i, filters)`` and ``linear{i}_bias``) and the 1x1 fusion convolution
    (``fuse_kernel`` ``(1, 1, n * filters, filters)``, no bias) over the linear maps resized
    to ``x_1``'s size and concatenated coarsest first. It returns that convolution's output
    (batch norm and ReLU follow outside).

    The same function, computed cheaply: the 1x1 convolution of a concatenation is the sum of
    its blocks' products, a linear map commutes with bilinear resizing (whose weights sum to
    one), and two linear maps compose. So each map goes through one composed ``(C_i,
    filters)`` product at its own resolution, is resized and the results are summed: the
    ``n * filters``-channel concatenation at stride 4, and its convolution (half of
    SegFormer-B0's FLOPs), are never made. The gradients are those of the reference layout.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)

    def build(self, input_shapes):
        self.linear_kernels, self.linear_biases = [], []
        for i, shape in enumerate(input_shapes):
            self.linear_kernels.append(
                self.add_weight(
                    name=f"linear{i}_kernel",
                    shape=(int(shape[-1]), self.filters),
                    initializer="glorot_uniform",
                )
            )
            self.linear_biases.append(
                self.add_weight(name=f"linear{i}_bias", shape=(self.filters,), initializer="zeros")
            )
        n = len(input_shapes)
        self.fuse_kernel = self.add_weight(
            name="fuse_kernel",
            shape=(1, 1, n * self.filters, self.filters),
            initializer="glorot_uniform",
        )

    def call(self, inputs):
        n = len(inputs)
        size = tf.shape(inputs[0])[1:3]
        # Rows of the fusion kernel by block: block j reads map n - 1 - j (coarsest first).
        fuse = tf.reshape(self.fuse_kernel, (n, self.filters, self.filters))
        total = None
        for i, x in enumerate(inputs):
            block = fuse[n - 1 - i]
            kernel = tf.cast(tf.matmul(self.linear_kernels[i], block), self.compute_dtype)
            bias = tf.cast(
                tf.linalg.matvec(block, self.linear_biases[i], transpose_a=True), kernel.dtype
            )
            x = tf.cast(x, kernel.dtype)
            shape = tf.shape(x)
            y = tf.matmul(tf.reshape(x, (-1, x.shape[-1])), kernel) + bias
            y = tf.reshape(y, tf.concat([shape[:3], [self.filters]], 0))
            if i:
                y = tf.cast(tf.image.resize(y, size, method="bilinear"), kernel.dtype)
            total = y if total is None else total + y
        return total

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0][:3]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}
