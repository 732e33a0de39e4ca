"""FLOPs of one inference, shared by the benchmark scripts (no kerasseg import: peers use it)."""


def gflops_per_image(model, size):
    """GFLOPs of one size x size inference, counted by TensorFlow's profiler on the frozen
    graph (a multiply-add counts as 2, as the profiler and most papers do)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([1, size, size, model.inputs[0].shape[-1]], tf.float32)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return profile.total_float_ops / 1e9
