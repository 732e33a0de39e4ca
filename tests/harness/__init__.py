"""One test harness for every model and layer test (``from tests.harness import ...``).

``run_segmenter_test`` checks what every kerasseg builder promises (DESIGN.md, "Models" and
"The Segmenter task class"); ``run_layer_test`` what every registered layer promises (config,
saving, gradients) and ``run_block_test`` the same for a block function. They return what
they built, so a test goes on to check what is particular to its architecture or layer. One
tolerance, ``TOLERANCE``, for every comparison of a saved-and-reloaded or rebuilt computation
with the original.

The checks run with whatever ``TF_ENABLE_ONEDNN_OPTS`` the environment sets (the suite runs
the layer tests under both settings).
"""

from tests.harness.common import (
    TOLERANCE,
    assert_close,
    assert_same_outputs,
    gradients,
    images,
    normal,
    outputs_of,
)
from tests.harness.layer import (
    check_gradient,
    check_layer_config,
    check_model_file,
    run_block_test,
    run_layer_test,
)
from tests.harness.segmenter import (
    SIZES,
    ModelCache,
    assert_activation,
    assert_frozen_backbone,
    assert_logits_of,
    assert_trainable_backbone,
    check_config,
    check_description,
    check_freeze,
    check_keras_file,
    check_outputs,
    check_rebuild,
    check_static_sizes,
    find_encoder,
    run_segmenter_test,
)

__all__ = [
    "SIZES",
    "TOLERANCE",
    "ModelCache",
    "assert_activation",
    "assert_close",
    "assert_frozen_backbone",
    "assert_logits_of",
    "assert_same_outputs",
    "assert_trainable_backbone",
    "check_config",
    "check_description",
    "check_freeze",
    "check_gradient",
    "check_keras_file",
    "check_layer_config",
    "check_model_file",
    "check_outputs",
    "check_rebuild",
    "check_static_sizes",
    "find_encoder",
    "gradients",
    "images",
    "normal",
    "outputs_of",
    "run_block_test",
    "run_layer_test",
    "run_segmenter_test",
]
