"""What a model needs of its inputs: the side multiple, channels, a fixed size, and padding."""

from kerasseg.models.segmenter import describe
from kerasseg.ops.padding import pad_to_multiple, pad_to_size

__all__ = [
    "DEFAULT_MULTIPLE",
    "model_multiple",
    "model_channels",
    "model_static_size",
    "pad_to_multiple",
    "pad_to_size",
]

# Every kerasseg architecture with a backbone downsamples 32x; smaller multiples (the paper U-Net
# at depth 3 needs 8) divide 32, so padding to 32 is accepted by a model that says nothing.
DEFAULT_MULTIPLE = 32


def model_multiple(model, multiple=None):
    """The side multiple inputs are padded to: the argument, else the model's own
    (``describe(model)["input_multiple"]``: a Segmenter's, 32 for a plain model)."""
    if multiple is None:
        multiple = describe(model)["input_multiple"] or DEFAULT_MULTIPLE
    if isinstance(multiple, bool) or int(multiple) != multiple or multiple < 1:
        raise ValueError(f"multiple must be a positive integer; got {multiple!r}.")
    return int(multiple)


def model_channels(model):
    shape = model.inputs[0].shape
    return int(shape[-1]) if shape[-1] is not None else 3


def model_static_size(model):
    """(H, W) when the model was built for one input size, else None."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) == 4 and shape[1] is not None and shape[2] is not None:
        return int(shape[1]), int(shape[2])
    return None
