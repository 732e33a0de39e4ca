"""The task class every builder returns: a functional model that knows what it is.

A ``Segmenter`` is a plain functional ``keras.Model`` (same layers, same graph, same weights)
whose config also says what it segments: the task, the classes and their colours, the side
multiple its inputs need, the backbone, and the builder call that made it. Inference, export,
evaluation and the CLI read these instead of guessing from the graph or from side files.
"""

import keras
import numpy as np

from kerasseg.ops.palette import default_palette

TASKS = ("semantic", "instance", "panoptic")
DEFAULT_MULTIPLE = 32


def default_class_names(num_classes):
    return [f"class_{index}" for index in range(num_classes)]


def _plain(value):
    """JSON-friendly copies of builder arguments (tuples become lists, paths strings)."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # os.PathLike weights paths, ranges


@keras.saving.register_keras_serializable(package="kerasseg")
class Segmenter(keras.Model):
    """A functional segmentation model with its description.

    ``Segmenter(inputs, outputs, name=None, *, task="semantic", num_classes=None,
    class_names=None, palette=None, input_multiple=32, backbone=None, builder=None,
    builder_args=None)``. ``num_classes`` defaults to the output's last dimension,
    ``class_names`` to ``class_0, class_1, ...``, ``palette`` to kerasseg's default colours.
    """

    def __init__(
        self,
        inputs,
        outputs,
        name=None,
        *,
        task="semantic",
        num_classes=None,
        class_names=None,
        palette=None,
        input_multiple=DEFAULT_MULTIPLE,
        backbone=None,
        builder=None,
        builder_args=None,
        **kwargs,
    ):
        super().__init__(inputs, outputs, name=name, **kwargs)
        self.set_description(
            task=task,
            num_classes=num_classes,
            class_names=class_names,
            palette=palette,
            input_multiple=input_multiple,
            backbone=backbone,
            builder=builder,
            builder_args=builder_args,
        )

    def set_description(
        self,
        *,
        task="semantic",
        num_classes=None,
        class_names=None,
        palette=None,
        input_multiple=DEFAULT_MULTIPLE,
        backbone=None,
        builder=None,
        builder_args=None,
    ):
        """Set what the model is (checked); the registry calls this once a builder is done."""
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}.")
        if num_classes is None:
            num_classes = int(self.outputs[0].shape[-1])
        self.task = task
        self.num_classes = int(num_classes)
        self.class_names = self._check_names(class_names)
        self.palette = self._check_palette(palette)
        if (
            isinstance(input_multiple, bool)
            or int(input_multiple) != input_multiple
            or input_multiple < 1
        ):
            raise ValueError(f"input_multiple must be a positive integer; got {input_multiple!r}.")
        self.input_multiple = int(input_multiple)
        self.backbone = backbone
        self.builder = builder
        self.builder_args = _plain(dict(builder_args or {}))

    def _check_names(self, class_names):
        if class_names is None:
            return default_class_names(self.num_classes)
        names = [str(name) for name in class_names]
        if len(names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(names)} names; the model predicts "
                f"{self.num_classes} classes."
            )
        return names

    def _check_palette(self, palette):
        if palette is None:
            return default_palette(self.num_classes).tolist()
        colours = np.asarray(palette)
        if colours.shape != (self.num_classes, 3) or colours.min() < 0 or colours.max() > 255:
            raise ValueError(
                f"palette must be {self.num_classes} RGB colours in [0, 255] "
                f"(shape ({self.num_classes}, 3)); got shape {colours.shape}."
            )
        return colours.astype(int).tolist()

    def describe(self):
        """What the model is, as a dict (the fields its config adds to the graph)."""
        return {
            "task": self.task,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "palette": [list(colour) for colour in self.palette],
            "input_multiple": self.input_multiple,
            "backbone": self.backbone,
            "builder": self.builder,
            "builder_args": dict(self.builder_args),
        }

    def get_config(self):
        config = super().get_config()
        config.update(self.describe())
        return config


def describe(model):
    """A model's description: a ``Segmenter``'s own, or one read off the graph of any other
    Keras model (a file saved before kerasseg had the task class): the output's last
    dimension as classes, default names and colours, multiple 32, task "semantic"."""
    if isinstance(model, Segmenter):
        return model.describe()
    num_classes = int(model.outputs[0].shape[-1])
    return {
        "task": "semantic",
        "num_classes": num_classes,
        "class_names": default_class_names(num_classes),
        "palette": default_palette(num_classes).tolist(),
        "input_multiple": int(getattr(model, "input_multiple", None) or DEFAULT_MULTIPLE),
        "backbone": None,
        "builder": None,
        "builder_args": {},
    }
