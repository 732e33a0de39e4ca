"""panopticapi's segment-id PNGs: a segment id per pixel stored as RGB (id = R + 256 G +
256^2 B, 0 = void), read by the COCO panoptic loader and the PQ of panopticapi-format folders."""

import numpy as np

__all__ = ["rgb_to_id", "id_to_rgb", "read_id_png"]


def rgb_to_id(rgb):
    """[..., 3] RGB -> segment ids (uint32)."""
    rgb = np.asarray(rgb, np.uint32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id_to_rgb(ids):
    """Segment ids -> [..., 3] uint8 RGB (what panopticapi writes)."""
    ids = np.asarray(ids, np.uint32)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


def read_id_png(path):
    """The segment ids of a panopticapi PNG; a ValueError naming a missing or unreadable file."""
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"panoptic PNG '{path}' is missing or not an image.")
    return rgb_to_id(image[..., ::-1])
