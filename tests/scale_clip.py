"""A tiny clip for the parallel-run tests: a textured pan with a moving box to remove, as a project.

The box covers part of the background for longer than the inpainter's radius, so
some pixels are never seen and keyframe fills are made (the state a chunked run must carry)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import cv2
import numpy as np

from inpaint.render import HoleConfig
from tam.jobs import removal

WIDTH, HEIGHT = 64, 48
HOLES = HoleConfig(dilate=1, feather=1)


def box(i: int) -> tuple[slice, slice]:
    """The object on frame ``i``: it follows the pan at 0.9 of its speed, so most of what it hides
    stays hidden longer than the inpainter looks ahead and behind."""
    x = 44 - (9 * i) // 10
    return slice(14, 34), slice(x, x + 18)


def write_clip(folder: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """Frames and 0/255 masks (folders of PNGs) of an ``n``-frame clip; returns (frames, masks)."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (HEIGHT, WIDTH + n, 3), dtype=np.uint8), (5, 5), 0)
    frames, masks = folder / "frames", folder / "masks"
    frames.mkdir(parents=True, exist_ok=True)
    masks.mkdir(exist_ok=True)
    for i in range(n):
        rgb = tex[:, i: i + WIDTH].copy()  # the camera pans one pixel a frame
        m = np.zeros((HEIGHT, WIDTH), np.uint8)
        m[box(i)] = 255
        rgb[box(i)] = (200, 40, 30)
        cv2.imwrite(str(frames / f"{i:05d}.png"), rgb[..., ::-1])
        cv2.imwrite(str(masks / f"{i:05d}.png"), m)
    return frames, masks


def make_project(folder: Path, n: int = 40, seed: int = 0):
    """A project over a new clip with every frame's mask saved (object 1)."""
    from tam.project import Project

    frames, masks = write_clip(folder, n, seed)
    p = Project.create(frames, path=folder / "project", proxy_longest=0)
    for i in range(n):
        p.save_mask(i, (cv2.imread(str(masks / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE) > 0).astype(np.uint8))
    return p


def read_fills(folder: str, n: int) -> np.ndarray:
    return np.stack([removal.read_fill(removal.fill_path(folder, i)) for i in range(n)])


def fill_chunk_killed_once(task: removal.RemovalTask) -> dict:
    """``removal.fill_chunk``, but the first chunk starting after frame 0 kills its own worker process
    (SIGKILL) after writing two frames, once per job folder: a worker lost in the middle of a task."""
    marker = Path(task.folder) / "killed-once"
    if task.start > 0 and not marker.exists():
        marker.touch()
        written = []
        original = removal.write_fill

        def write_then_die(path, rgb):
            original(path, rgb)
            written.append(path)
            if len(written) == 2:
                os.kill(os.getpid(), signal.SIGKILL)

        removal.write_fill = write_then_die  # this process dies with the change
    return removal.fill_chunk(task)
