"""The studio's brush and box: the tool choice, the drawing surface, and drawings made prompts.

When clicks are not enough, the editor paints. The page offers four tools:
*click* (the image component of the page), *brush: add* and *brush: erase*
(strokes that snap to edges, :mod:`tam.segment.strokes`) and *box* (a rectangle
dragged around the object, given to the segmenter with the clicks). Strokes
and boxes are stored in the project like clicks (:meth:`tam.project.Project.add_stroke`,
:meth:`~tam.project.Project.add_box`), so they are on disk, replayed and undone
like them.

The drawing surface is a small Streamlit component of our own
(``tam/ui_canvas/index.html``, protocol v1, no build step). It reports each
finished drawing in the pixels of the image it was shown (the working frame),
and :func:`drawing_from_event` scales it to source pixels. Nothing here
segments: the page re-segments after :func:`consume_drawing` says a prompt was added.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from tam.project import Project

COMPONENT_DIR = Path(__file__).resolve().parent / "ui_canvas"
DRAW_KEY = "draw"
TOOL_KEY = "tool"
RADIUS_KEY = "brush_radius"
TOOLS = {"click": "click", "add": "brush: add", "erase": "brush: erase", "box": "box"}
DEFAULT_RADIUS = 6  # brush radius in working-frame pixels
MAX_RADIUS = 40
JPEG_QUALITY = 90
ADD_COLOUR, ERASE_COLOUR, BOX_COLOUR = (40, 200, 60), (230, 40, 40), (255, 210, 31)

_draw_canvas = components.declare_component("tam_draw", path=str(COMPONENT_DIR))


@dataclass(frozen=True)
class Drawing:
    """A finished drawing in source pixels: a stroke (points, label, radius) or a box."""

    kind: str  # "stroke" or "box"
    points: list[list[float]]
    label: int
    radius: float
    stamp: str

    @property
    def box(self) -> list[float]:
        """``[x0, y0, x1, y1]`` spanned by a box drawing's two corners."""
        (ax, ay), (bx, by) = self.points[0], self.points[-1]
        return [min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)]


def drawing_from_event(event: dict | None, source_size: tuple[int, int]) -> Drawing | None:
    """The component's value (image pixels, with the image's size) in source pixels; None if malformed."""
    if not event or event.get("kind") not in ("stroke", "box") or not event.get("points"):
        return None
    sw, sh = source_size
    try:
        dw, dh = float(event["width"]), float(event["height"])
        sx, sy = sw / dw, sh / dh
        points = [[min(max(float(x) * sx, 0.0), sw - 1.0), min(max(float(y) * sy, 0.0), sh - 1.0)]
                  for x, y in event["points"]]
        radius = float(event.get("radius", DEFAULT_RADIUS)) * (sx + sy) / 2
        label = 0 if int(event.get("label", 1)) == 0 else 1
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if dw <= 0 or dh <= 0:
        return None
    return Drawing(event["kind"], points, label, radius, str(event.get("id", "")))


def tool_bar(disabled: bool = False) -> tuple[str, int]:
    """The tool choice above the frame, and the brush size; returns (tool, radius in working px)."""
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    tool = left.radio("Tool", list(TOOLS), key=TOOL_KEY, horizontal=True, format_func=TOOLS.get,
                      help="click: positive/negative clicks; brush: paint to add or erase, the stroke "
                           "snaps to the edges of the region it lies in; box: drag around the object")
    radius = DEFAULT_RADIUS
    if tool in ("add", "erase"):
        radius = right.slider("Brush size (px)", 1, MAX_RADIUS, DEFAULT_RADIUS, key=RADIUS_KEY,
                              disabled=disabled, help="radius of the brush on the working frame")
    return tool, int(radius)


def take_event(event, seen_key: str, verb: str, busy: bool, object_id: int | None) -> bool:
    """True when ``event`` (anything with a ``stamp``, or None) is new and may become a prompt now.

    A new event is marked seen under ``seen_key`` in the session, even when it is refused: while a job
    runs (``busy``) or when no object is chosen, the user is told why in a toast ("... before ``verb``")."""
    ss = st.session_state
    if event is None or event.stamp == ss.get(seen_key):
        return False
    ss[seen_key] = event.stamp
    if busy:
        st.toast(f"Wait for the running job to finish before {verb}.")
        return False
    if object_id is None:
        st.toast("Add an object first.")
        return False
    return True


def consume_drawing(project: Project, frame: int, object_id: int | None, busy: bool) -> bool:
    """Store the surface's newest drawing (if not seen yet) as a prompt; True when one was added."""
    drawing = drawing_from_event(st.session_state.get(DRAW_KEY), project.source_size)
    if not take_event(drawing, "last_drawing", "drawing", busy, object_id):
        return False
    if drawing.kind == "box":
        project.add_box(frame, object_id, drawing.box)
    else:
        project.add_stroke(frame, object_id, drawing.points, drawing.label, drawing.radius)
    return True


def draw_surface(rgb: np.ndarray, tool: str, radius: int, disabled: bool = False) -> None:
    """The frame as a drawing surface for ``tool`` ("add", "erase" or "box")."""
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")
    _draw_canvas(image=url, mode=tool, radius=radius, seen=st.session_state.get("last_drawing"),
                 disabled=disabled, key=DRAW_KEY, default=None)


def draw_marks(rgb: np.ndarray, project: Project, frame: int) -> np.ndarray:
    """Draw this frame's strokes (thin lines along their path) and boxes onto ``rgb`` (working size) in place."""
    sx = rgb.shape[1] / project.source_size[0]
    sy = rgb.shape[0] / project.source_size[1]
    thick = max(1, round(max(rgb.shape[:2]) / 400))
    for oid in project.prompted().get(frame, []):
        prompt = project.prompt(frame, oid)
        for s in prompt["strokes"]:
            pts = np.round(np.array(s["points"]) * (sx, sy)).astype(np.int32).reshape(-1, 1, 2)
            colour = ADD_COLOUR if s["label"] else ERASE_COLOUR
            cv2.polylines(rgb, [pts], False, colour, thick, cv2.LINE_AA)
        if prompt["box"] is not None:
            x0, y0, x1, y1 = prompt["box"]
            cv2.rectangle(rgb, (round(x0 * sx), round(y0 * sy)), (round(x1 * sx) - 1, round(y1 * sy) - 1),
                          BOX_COLOUR, thick, cv2.LINE_AA)
    return rgb


def prompt_summary(prompt: dict) -> str:
    """The strokes and box of a prompt in words, e.g. " · 2 stroke(s) (1 erase) · box" ("" when none)."""
    out = ""
    strokes = prompt["strokes"]
    if strokes:
        erase = sum(1 for s in strokes if not s["label"])
        out += f" · {len(strokes)} stroke(s) ({erase} erase)"
    if prompt["box"] is not None:
        out += " · box"
    return out
