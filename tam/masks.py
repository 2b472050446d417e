"""Mask files and mask arithmetic: DAVIS-palette label PNGs, mattes, resizing, dilation, feathering."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tam.errors import MaskError
from tam.fileio import atomic_path


def davis_palette() -> np.ndarray:
    """The standard DAVIS / PASCAL VOC palette: 256 RGB colours, id 0 black."""
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


PALETTE = davis_palette()


def save_labels(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write a uint8 label map as an indexed PNG with the DAVIS palette, atomically."""
    if labels.dtype != np.uint8:
        if labels.max(initial=0) > 255 or labels.min(initial=0) < 0:
            raise MaskError("object ids must lie in 0..255")
        labels = labels.astype(np.uint8)
    im = Image.fromarray(labels, mode="P")
    im.putpalette(PALETTE.tobytes())
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")


def load_labels(path: str | os.PathLike) -> np.ndarray:
    """Read a mask file as a uint8 label map (see :func:`decode_labels`)."""
    path = Path(path)
    if not path.is_file():
        raise MaskError(f"no such mask file: {path}")
    try:
        with Image.open(path) as im:
            return decode_labels(im)
    except OSError as e:
        raise MaskError(f"cannot read mask {path.name}: {e}") from None


def decode_labels(im: Image.Image) -> np.ndarray:
    """A mask image as a uint8 label map, whichever way its ids were stored.

    * palette images keep their indices (DAVIS 2017, YouTube-VOS);
    * greyscale with values above 127 is one object: 0/255 (DAVIS 2016), antialiased
      edges included, becomes id 1;
    * greyscale with every value at most 127 holds the ids themselves (0/1 masks,
      1..N id maps);
    * colour images: each colour of the DAVIS palette is its index; other colours
      are numbered 1, 2, ... in sorted order, black staying background.
    """
    if im.mode == "P":
        return np.array(im, dtype=np.uint8)
    if im.mode in ("RGB", "RGBA"):
        rgb = np.array(im.convert("RGB"), dtype=np.uint8)
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])):
            return _colours_to_ids(rgb)
        grey = rgb[..., 0]
    else:
        grey = np.array(im.convert("L"), dtype=np.uint8)
    if grey.max() <= 127:
        return grey.copy()
    return (grey > 127).astype(np.uint8)


def _colours_to_ids(rgb: np.ndarray) -> np.ndarray:
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    colours, inverse = np.unique(code.ravel(), return_inverse=True)
    pal = (PALETTE[:, 0].astype(np.int32) << 16) | (PALETTE[:, 1].astype(np.int32) << 8) | PALETTE[:, 2]
    index = {int(c): i for i, c in enumerate(pal)}
    if all(int(c) in index for c in colours):
        ids = np.array([index[int(c)] for c in colours], np.uint8)
    else:
        others = [c for c in colours if c != 0]
        if len(others) > 255:
            raise MaskError(f"a colour mask with {len(others)} colours: at most 255 objects")
        number = {int(c): i + 1 for i, c in enumerate(others)}
        ids = np.array([number.get(int(c), 0) for c in colours], np.uint8)
    return ids[inverse].reshape(rgb.shape[:2])


def save_matte(path: str | os.PathLike, mask: np.ndarray) -> None:
    """A black/white 0/255 PNG."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(tmp, format="PNG")


def check_size(labels: np.ndarray, width: int, height: int, what: str = "mask") -> None:
    if labels.shape[:2] != (height, width):
        raise MaskError(
            f"{what} is {labels.shape[1]}x{labels.shape[0]} but the frames are {width}x{height}")


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a label map to ``size`` (w, h) with smooth boundaries.

    Each object's indicator is resized bilinearly and the strongest wins (against
    background at 0.5), which keeps edges smooth when scaling a proxy mask up to
    the source's size, unlike nearest-neighbour blocks.
    """
    w, h = size
    if labels.shape[:2] == (h, w):
        return labels
    ids = [int(v) for v in np.unique(labels) if v]
    if not ids:
        return np.zeros((h, w), np.uint8)
    interp = cv2.INTER_LINEAR if w > labels.shape[1] else cv2.INTER_AREA
    best = np.full((h, w), 0.5, np.float32)
    out = np.zeros((h, w), np.uint8)
    for i in ids:
        p = cv2.resize((labels == i).astype(np.float32), (w, h), interpolation=interp)
        win = p > best
        out[win] = i
        best[win] = p[win]
    return out


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """Grow a bool mask by ``px`` pixels (a disk), to take in edges and halos."""
    if px <= 0 or not mask.any():
        return mask.astype(bool)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k) > 0


def feather(mask: np.ndarray, px: float) -> np.ndarray:
    """A float alpha in [0, 1]: 1 inside ``mask``, falling to 0 over ``px`` pixels outside.

    The fall-off lies outside the mask, so every masked pixel is fully replaced
    and pixels farther than ``px`` from it keep their source values exactly.
    """
    m = mask.astype(bool)
    if px <= 0 or not m.any():
        return m.astype(np.float32)
    dist = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip(1.0 - dist / float(px), 0.0, 1.0).astype(np.float32)


def union(labels: np.ndarray, ids=None) -> np.ndarray:
    """Bool mask of the given object ids (all objects when ``ids`` is None)."""
    if ids is None:
        return labels > 0
    return np.isin(labels, list(ids))


def overlay(rgb: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The frame with each object tinted in its palette colour and outlined."""
    out = rgb.astype(np.float32).copy()
    for i in np.unique(labels):
        if i == 0:
            continue
        m = labels == i
        out[m] = out[m] * (1 - alpha) + PALETTE[i].astype(np.float32) * alpha
        edge = m & ~(cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
        out[edge] = PALETTE[i]
    return out.astype(np.uint8)
