"""FC-DenseNet's blocks (kerasseg.layers.dense): dense block, transition down and up; and the
harness's block checks."""

import keras
import pytest

from kerasseg import layers as kl
from tests.harness import run_block_test


def test_dense_block_and_transitions():
    inp = keras.Input((16, 16, 10))
    stack, new = kl.dense_block(inp, 3, 4, dropout=0.2, name="db")
    assert stack.shape[-1] == 10 + 3 * 4 and new.shape[-1] == 3 * 4
    down = kl.transition_down(stack, name="td")
    assert tuple(down.shape[1:]) == (8, 8, 22)
    up = kl.transition_up(kl.dense_block(down, 2, 4, name="db2")[1], stack, 8, name="tu")
    assert tuple(up.shape[1:]) == (16, 16, 8 + 22)
    with pytest.raises(ValueError, match="num_layers"):
        kl.dense_block(inp, 0, 4, name="empty")


def test_dense_blocks_contract():
    def down_and_up(x):
        stack, _ = kl.dense_block(x, 2, 4, dropout=0.2, name="db")
        new = kl.dense_block(kl.transition_down(stack, name="td"), 2, 4, name="db2")[1]
        return kl.transition_up(new, stack, 8, name="tu")

    run_block_test(
        down_and_up, (2, 16, 16, 5), expected_output_shape=(2, 16, 16, 8 + 13), name="fcd_blocks"
    )
