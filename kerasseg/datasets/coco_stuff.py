"""COCO-Stuff 164k (`coco_stuff`), 171 classes (80 things + 91 stuff).

Layout under data_dir (the cocostuff README's: COCO 2017 images in images/, the
stuffthingmaps_trainval2017.zip label maps in their own folder; `annotations/` is accepted too):

    images/{train2017,val2017}/<id>.jpg
    stuffthingmaps_trainval2017/{train2017,val2017}/<id>.png

The label PNGs hold COCO category id - 1 (0..181) and 255 for unlabeled. Eleven of those 182 ids
have no category (COCO thing ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 and 91), so the remaining
171 are renumbered contiguously in id order, exactly as mmsegmentation's coco_stuff164k converter
does: PNG value v -> index of v among the used values; 255 stays ignored; an unused id in a label
file is an error. Splits: "train"/"train2017", "val"/"val2017".
"""

import os

from kerasseg.datasets import _io
from kerasseg.datasets._download import move_up
from kerasseg.datasets._registry import DatasetInfo, Resource, register_dataset

THING_NAMES = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)
STUFF_NAMES = (
    "banner",
    "blanket",
    "branch",
    "bridge",
    "building-other",
    "bush",
    "cabinet",
    "cage",
    "cardboard",
    "carpet",
    "ceiling-other",
    "ceiling-tile",
    "cloth",
    "clothes",
    "clouds",
    "counter",
    "cupboard",
    "curtain",
    "desk-stuff",
    "dirt",
    "door-stuff",
    "fence",
    "floor-marble",
    "floor-other",
    "floor-stone",
    "floor-tile",
    "floor-wood",
    "flower",
    "fog",
    "food-other",
    "fruit",
    "furniture-other",
    "grass",
    "gravel",
    "ground-other",
    "hill",
    "house",
    "leaves",
    "light",
    "mat",
    "metal",
    "mirror-stuff",
    "moss",
    "mountain",
    "mud",
    "napkin",
    "net",
    "paper",
    "pavement",
    "pillow",
    "plant-other",
    "plastic",
    "platform",
    "playingfield",
    "railing",
    "railroad",
    "river",
    "road",
    "rock",
    "roof",
    "rug",
    "salad",
    "sand",
    "sea",
    "shelf",
    "sky-other",
    "skyscraper",
    "snow",
    "solid-other",
    "stairs",
    "stone",
    "straw",
    "structural-other",
    "table",
    "tent",
    "textile-other",
    "towel",
    "tree",
    "vegetable",
    "wall-brick",
    "wall-concrete",
    "wall-other",
    "wall-panel",
    "wall-stone",
    "wall-tile",
    "wall-wood",
    "water-other",
    "waterdrops",
    "window-blind",
    "window-other",
    "wood",
)
assert len(THING_NAMES) == 80 and len(STUFF_NAMES) == 91
CLASS_NAMES = THING_NAMES + STUFF_NAMES

# PNG values (category id - 1) that no category uses.
UNUSED_VALUES = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)
USED_VALUES = tuple(v for v in range(182) if v not in UNUSED_VALUES)

LAYOUT = (
    "  <data_dir>/images/{train2017,val2017}/*.jpg\n"
    "  <data_dir>/stuffthingmaps_trainval2017/{train2017,val2017}/*.png\n"
    "    (or <data_dir>/annotations/...)"
)

INFO = DatasetInfo(
    name="coco_stuff",
    num_classes=171,
    class_names=CLASS_NAMES,
    palette=_io.voc_colormap(172)[1:],
    ignore_index=255,
    splits={"train": 118287, "val": 5000},
    layout=LAYOUT,
    homepage="https://github.com/nightrome/cocostuff",
    description="COCO-Stuff 164k: COCO 2017 images with 80 thing + 91 stuff classes.",
)

RESOURCES = [
    Resource(
        url="http://images.cocodataset.org/zips/train2017.zip",
        filename="train2017.zip",
        subdir="images",
    ),
    Resource(
        url="http://images.cocodataset.org/zips/val2017.zip",
        filename="val2017.zip",
        subdir="images",
    ),
    Resource(
        url="http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset/stuffthingmaps_trainval2017.zip",  # noqa: E501
        filename="stuffthingmaps_trainval2017.zip",
        subdir="stuffthingmaps_trainval2017",
        # Some copies of the zip wrap the split folders in a top folder of the same name.
        post_extract=move_up(
            os.path.join("stuffthingmaps_trainval2017", "stuffthingmaps_trainval2017"),
            "stuffthingmaps_trainval2017",
        ),
    ),
]

_SPLIT_DIRS = {
    "train": "train2017",
    "train2017": "train2017",
    "val": "val2017",
    "val2017": "val2017",
}
_LUT = _io.make_lut({**{v: i for i, v in enumerate(USED_VALUES)}, 255: 255})


@register_dataset("coco_stuff", info=INFO, resources=RESOURCES)
def load_coco_stuff(data_dir, split="train", shuffle_files=False, seed=None):
    """Splits train (train2017) / val (val2017)."""
    _io.check_split("coco_stuff", split, _SPLIT_DIRS)
    sub = _SPLIT_DIRS[split]
    image_dir = _io.require_dir(os.path.join(data_dir, "images", sub), "coco_stuff", LAYOUT)
    label_dir = None
    for name in ("stuffthingmaps_trainval2017", "annotations"):
        if os.path.isdir(os.path.join(data_dir, name, sub)):
            label_dir = os.path.join(data_dir, name, sub)
            break
    if label_dir is None:
        _io.require_dir(
            os.path.join(data_dir, "stuffthingmaps_trainval2017", sub), "coco_stuff", LAYOUT
        )
    items = _io.pair_by_stem(
        _io.list_images(image_dir), _io.list_images(label_dir, (".png",)), "coco_stuff", label_dir
    )
    decode = _io.decode_pair_fn(_LUT, "COCO-Stuff values 0..181 (used ids) and 255")
    return _io.paths_dataset(items, decode, shuffle_files=shuffle_files, seed=seed)
