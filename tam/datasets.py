"""Evaluation sequences laid out as ``<root>/<set>/<sequence>/{frames,masks}``.

Masks come in two encodings: DAVIS 2016 stores one object as 0/255 greyscale,
DAVIS 2017 stores palette ids. Both are read as label maps (0 background,
1..N objects). Frames and masks are read lazily, one file per access.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from tam.frames import IndexedFrames

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def read_label_png(path: str | Path) -> np.ndarray:
    """A mask file as a uint8 label map (palette ids, 0/255 greyscale, id maps, colours)."""
    from tam.masks import load_labels

    return load_labels(path)


@dataclass(frozen=True)
class Sequence:
    root: Path  # the sequence folder

    @property
    def name(self) -> str:
        return f"{self.root.parent.name}/{self.root.name}"

    @cached_property  # listed once: every frame read would list the folder again
    def frame_paths(self) -> list[Path]:
        return sorted(p for p in (self.root / "frames").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    @cached_property
    def mask_paths(self) -> list[Path]:
        return sorted((self.root / "masks").glob("*.png"))

    def __len__(self) -> int:
        return len(self.frame_paths)

    def frame(self, i: int) -> np.ndarray:
        with Image.open(self.frame_paths[i]) as im:
            return np.array(im.convert("RGB"))

    def mask(self, i: int) -> np.ndarray:
        return read_label_png(self.mask_paths[i])

    def object_ids(self) -> list[int]:
        return [int(v) for v in np.unique(self.mask(0)) if v != 0]

    @property
    def frames(self) -> IndexedFrames:
        return IndexedFrames(len(self), self.frame)

    @property
    def masks(self) -> IndexedFrames:
        return IndexedFrames(len(self), self.mask)


def _not_ground_truth(root: Path) -> set[str]:
    """Sequences a ``manifest.json`` at ``root`` marks as having masks that are not
    object ground truth (dilated inpainting holes, say), as ``set/seq`` names."""
    import json

    path = root / "manifest.json"
    if not path.is_file():
        return set()
    try:
        entries = json.loads(path.read_text()).get("sequences", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {e["id"] for e in entries if isinstance(e, dict) and "id" in e and e.get("jf_usable") is False}


def find_sequences(root: str | Path, with_masks: bool = True) -> list[Sequence]:
    """Every ``<set>/<seq>`` (or a single ``<seq>``) under ``root`` with frames (and masks).

    With ``with_masks``, sequences that the root's manifest marks as not ground truth
    are left out, since their masks cannot score a segmentation.
    """
    root = Path(root)
    skip = _not_ground_truth(root) if with_masks else set()
    candidates = [root] if (root / "frames").is_dir() else sorted(
        p.parent for p in root.glob("**/frames") if p.is_dir()
    )
    out = []
    for c in candidates:
        if with_masks and not (c / "masks").is_dir():
            continue
        seq = Sequence(c)
        if seq.name in skip:
            continue
        if len(seq) and (not with_masks or len(seq.mask_paths) == len(seq)):
            out.append(seq)
    return out
