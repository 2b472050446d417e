"""The one core that the command line and the UI both drive.

A :class:`Studio` joins a :class:`~tam.project.Project` (the per-video truth on
disk) with backends (shared, stateless models) and the per-video state those
need. Every long operation is a generator of ``(done, total)`` so any front end
can draw progress and cancel between steps.

Who owns what:

* the project on disk: sources, objects, prompts, keyframes, masks, renders
  (:mod:`tam.project`); a Studio reads and edits it, never keeps a copy;
* :class:`Backends`: the models (segmenter, tracker, inpainter), created once per
  settings and shared by every studio; they hold no per-image or per-video data;
* the studio (one per open project in a session: the page's own, and the one its
  jobs run on, kept between jobs): the segmenter's image states of the last few
  clicked frames (``PREPARED_FRAMES``), the last answers' logits to refine from,
  and the tracker's per-video state, so a second Track starts from what the
  first one learned. It is dropped with the project;
* per call: everything a generator makes while it runs (frames being rendered,
  a refined frame's image state).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from inpaint.base import Inpainter
from inpaint.render import (HoleConfig, HoleMasks, hole_alpha, render_frames, render_native, write_clip,
                            write_output)
from tam import codecs
from tam import masks as maskio
from tam.errors import MaskError, PromptError
from tam.fileio import atomic_dir
from tam.encode import ClipWriter
from tam.mattes import MATTE_FORMAT, MATTE_TAGS, matte_frame
from tam.mediameta import SourceMeta, folder_meta, read_meta
from tam.cache import LRU
from tam.jobs.executors import ExecutorSpec
from tam.jobs.removal import StoredFills
from tam.project import Project
from tam.runspec import BackendSpec, RunContext
from tam.segment.base import Prompt, Segmenter, SegmentResult
from tam.segment.strokes import Stroke, apply_strokes
from tam.segment.video import prepare_video_frame
from tam.track.base import Tracker
from tam.track.propagation import count_frames, stopped_at_cuts, track
from tam.track.refine import Refiner
from tam.video import open_source


PAINTED_SCORE = 1.0  # the score of a mask painted with strokes alone: the editor's own word
PREPARED_FRAMES = 4  # segmenter image states a studio keeps: the clicked frame and the last few before it


@dataclass(frozen=True)
class StudioConfig:
    segmenter: str = "classical"
    tracker: str = "classical"
    inpainter: str = "flow"
    segmenter_options: dict = field(default_factory=dict)
    tracker_options: dict = field(default_factory=dict)
    inpainter_options: dict = field(default_factory=dict)
    holes: HoleConfig = HoleConfig()
    executor: ExecutorSpec | None = None  # where tracking and removal run as tasks; None: in this process
    chunk: int = 60  # frames per removal task

    @classmethod
    def from_specs(cls, segmenter: BackendSpec | None = None, tracker: BackendSpec | None = None,
                   inpainter: BackendSpec | None = None, **config) -> "StudioConfig":
        """A config from :class:`~tam.runspec.BackendSpec` values (the others keep their defaults)."""
        for spec in (segmenter, tracker, inpainter):
            if spec is not None:
                config[spec.kind] = spec.name
                config[f"{spec.kind}_options"] = spec.constructor_options()
        return cls(**config)

    def spec(self, kind: str) -> BackendSpec:
        """The backend of ``kind`` as a spec (its options already hold any checkpoint and device)."""
        return BackendSpec(kind, getattr(self, kind), tuple(sorted(getattr(self, f"{kind}_options").items())))


class Backends:
    """Lazily created backend instances; share one across studios (they hold no video state)."""

    def __init__(self, config: StudioConfig):
        self.config = config
        self._segmenter: Segmenter | None = None
        self._tracker: Tracker | None = None
        self._inpainter: Inpainter | None = None

    def segmenter(self) -> Segmenter:
        if self._segmenter is None:
            self._segmenter = self.config.spec("segmenter").create()
        return self._segmenter

    def tracker(self) -> Tracker:
        if self._tracker is None:
            self._tracker = self.config.spec("tracker").create()
        return self._tracker

    def inpainter(self) -> Inpainter:
        if self._inpainter is None:
            self._inpainter = self.config.spec("inpainter").create()
        return self._inpainter


class Studio:
    def __init__(self, project: Project, config: StudioConfig | None = None, backends: Backends | None = None):
        self.project = project
        self.config = config or (backends.config if backends else StudioConfig())
        self.backends = backends or Backends(self.config)
        # (frame, object) -> (the clicks a result came from, its logits). A result is fed
        # back only to refine a prompt that extends those clicks: an undo starts afresh.
        self._logits: dict[tuple[int, int], tuple[list, np.ndarray]] = {}
        # the last answer of the segmenter, keyed by (frame, object, clicks, box): a stroke drawn
        # or undone after it is applied to it without asking the segmenter again
        self._answer: tuple[tuple, SegmentResult] | None = None
        # frame -> the segmenter's image state of that frame (with its neighbours), most recent last
        self._images = LRU(PREPARED_FRAMES)
        self._track_state = None

    # -- step 1: clicks to a mask ----------------------------------------------
    def segment(self, frame: int, object_id: int) -> SegmentResult | None:
        """Re-segment ``object_id`` on ``frame`` from its prompt; store the keyframe.

        The mask is the segmenter's answer to the clicks and the box (empty when
        there are none), then each brush stroke in order. Returns the result (None
        when the object has no prompt there, in which case it is removed from that
        keyframe).
        """
        p = self.project
        prompt = p.prompt(frame, object_id)
        base = self.labels_at(frame).copy()
        base[base == object_id] = 0
        clicked = bool(prompt["clicks"]) or prompt["box"] is not None
        if not clicked and not prompt["strokes"]:
            self._logits.pop((frame, object_id), None)
            self._store_keyframe(frame, base)
            return None
        if clicked:
            result = self._predict(frame, object_id, prompt)
        else:
            w, h = p.proxy_size
            self._logits.pop((frame, object_id), None)
            result = SegmentResult(np.zeros((h, w), bool), PAINTED_SCORE)
        if prompt["strokes"]:
            result = self._paint(frame, result, prompt["strokes"])
        base[result.mask] = object_id
        self._store_keyframe(frame, base)
        return result

    def _predict(self, frame: int, object_id: int, prompt: dict) -> SegmentResult:
        """The segmenter's mask for the prompt's clicks and box (working size)."""
        p = self.project
        sx, sy = p.proxy_scale
        clicks = [(min(x * sx, p.proxy_size[0] - 1), min(y * sy, p.proxy_size[1] - 1), lab)
                  for x, y, lab in prompt["clicks"]]
        box = None
        if prompt["box"] is not None:
            x0, y0, x1, y1 = prompt["box"]
            box = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
        asked = (frame, object_id, tuple(clicks), box)
        if self._answer is not None and self._answer[0] == asked:
            return self._answer[1]
        query = Prompt.from_clicks(clicks, box)
        query.validate(*p.proxy_size)
        segmenter = self.backends.segmenter()
        state = self._image_state(frame)
        previous = self._logits.get((frame, object_id))
        done, mask_input = 0, None
        if previous is not None and len(previous[0]) < len(clicks) and clicks[:len(previous[0])] == previous[0]:
            done, mask_input = len(previous[0]), previous[1]
        # the clicks not covered by a kept answer are replayed one at a time, each refining the answer to
        # the ones before it, as when they were made: the mask depends on the prompt alone, not on whether
        # this studio saw the earlier clicks (a reloaded page, an undo)
        for k in range(done + 1, len(clicks)):
            step = segmenter.predict(state, Prompt.from_clicks(clicks[:k], box), mask_input=mask_input)
            mask_input = step.logits
            if mask_input is None:  # a segmenter that gives no logits answers every prompt afresh
                break
        result = segmenter.predict(state, query, mask_input=mask_input)
        if result.logits is not None:
            self._logits[(frame, object_id)] = (clicks, result.logits)
        self._answer = (asked, result)
        return result

    def _image_state(self, frame: int):
        """The segmenter's image state of ``frame``, prepared with its neighbours once and kept a while."""
        state = self._images.get(frame)
        if state is None:
            _, state = prepare_video_frame(self.backends.segmenter(), self.project.frames, frame)
            self._images.put(frame, state)
        return state

    def _paint(self, frame: int, result: SegmentResult, strokes: list[dict]) -> SegmentResult:
        """``result`` with the brush strokes (source pixels) applied in order at working size."""
        p = self.project
        sx, sy = p.proxy_scale
        scaled = [Stroke(s["points"], s["label"], s["radius"]).scaled(sx, sy) for s in strokes]
        return replace(result, mask=apply_strokes(p.frames[frame], result.mask, scaled))

    def _store_keyframe(self, frame: int, labels: np.ndarray) -> None:
        if labels.any() or frame in self.project.keyframe_indices():
            self.project.set_keyframe(frame, labels)
        if not labels.any():
            self.project.remove_keyframe(frame)

    def labels_at(self, frame: int) -> np.ndarray:
        """The current label map of ``frame`` at working size (keyframe, tracked or empty)."""
        m = self.project.mask(frame)
        if m is None:
            w, h = self.project.proxy_size
            m = np.zeros((h, w), np.uint8)
        return m

    def add_mask(self, frame: int, labels_at_source: np.ndarray) -> None:
        """Fix a whole label map given at the source's size as the keyframe on ``frame``."""
        labels = self.project.to_proxy_labels(labels_at_source)
        if not labels.any():
            raise MaskError(f"the mask for frame {frame} is empty")
        self.project.set_keyframe(frame, labels)

    # -- steps 2-4: track, correct, re-propagate -----------------------------------
    def track(self, direction: str = "both", from_frame: int | None = None, refine: bool = False,
              ctx: RunContext | None = None) -> Iterator[tuple[int, int]]:
        """Propagate the keyframes; from ``from_frame`` only when it is a keyframe.

        Each frame's mask is saved as soon as it is computed, so a cancel or a
        crash keeps everything done so far. ``refine`` adds TAM's refinement step
        (:mod:`tam.track.refine`) through the segmenter. With a parallel ``config.executor``
        and more than one stretch to track (and no ``refine``), the stretches run as tasks there, unless
        this studio already holds a tracker state: re-tracking in process with it beats re-initialising
        the tracker in every worker.
        """
        p = self.project
        ctx = ctx or RunContext()
        keyframes = p.keyframes()
        changed = _changed(from_frame, keyframes)
        cuts = p.cuts()
        executor = self.config.executor
        if executor is not None and executor.parallel and not refine and self._track_state is None:
            from tam.jobs.tracking import run_tracking, segment_tasks

            if len(segment_tasks(p, self.config.spec("tracker"), changed, direction)) > 1:
                with executor.create() as ex:
                    yield from run_tracking(p, self.config.spec("tracker"), ex, changed, direction, ctx)
                return
        total = count_frames(p.num_frames, keyframes, changed, direction, cuts)
        tracker = self.backends.tracker()
        if self._track_state is None:
            self._track_state = tracker.init_state(p.frames)
        refiner = None
        if refine:
            refiner = Refiner(self.backends.segmenter())
        done = 0
        for index, labels in track(tracker, self._track_state, p.frames, keyframes, changed, direction,
                                   ctx.cancelled, refiner, cuts):
            p.save_mask(index, labels)
            done += 1
            yield done, total

    def frames_to_track(self, direction: str = "both", from_frame: int | None = None) -> int:
        """How many frames :meth:`track` with these arguments computes (its progress total)."""
        p = self.project
        keys = p.keyframe_indices()
        return count_frames(p.num_frames, keys, _changed(from_frame, keys), direction, p.cuts())

    def cut_stops(self, direction: str = "both", from_frame: int | None = None) -> list[int]:
        """The shot cuts where :meth:`track` with these arguments stops (it never crosses a cut)."""
        p = self.project
        keys = p.keyframe_indices()
        if not keys:
            return []
        return stopped_at_cuts(p.num_frames, keys, _changed(from_frame, keys), direction, p.cuts())

    # -- removal ----------------------------------------------------------------
    def holes(self, ids: Sequence[int] | None = None) -> HoleMasks:
        return HoleMasks(self.project.masks, ids, self.config.holes, self.project.proxy_scale[0])

    def preview(self, frame: int, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(source frame, frame with the objects removed), both at full resolution."""
        p = self.project
        if not 0 <= frame < p.num_frames:
            raise PromptError(f"frame {frame} is outside 0..{p.num_frames - 1}")
        holes = self.holes(ids)
        [(_, out)] = list(render_frames(p.source(), p.frames, holes, self.backends.inpainter(),
                                        self.config.holes.feather, indices=[frame]))
        return p.source()[frame], out

    def render(self, out: str | os.PathLike, ids: Sequence[int] | None = None, codec: str | None = None,
               ctx: RunContext | None = None) -> Iterator[tuple[int, int]]:
        """Remove the objects from every frame and write ``out``.

        ``codec`` is one of :data:`tam.codecs.CODECS` (default: from ``out``'s suffix,
        .mp4 H.264, .mov ProRes, .mkv FFV1); a folder without ``codec`` gets 8-bit PNGs.
        With ``config.executor`` the fills are computed first as chunk tasks there
        (:mod:`tam.jobs.removal`; progress counts filled frames, then written ones),
        resuming from the fills a killed render left in the project.
        """
        p = self.project
        ctx = ctx or RunContext()
        if not p.tracked_frames():
            raise MaskError("no masks yet: segment and track an object first")
        spec = codecs.resolve(out, codec)
        folder = None
        if self.config.executor is not None:
            folder = yield from self._chunked_fills(ids, ctx)
            inpainter = StoredFills(folder)
        else:
            inpainter = self.backends.inpainter()
        if spec is not None:
            yield from self._render_codec(out, ids, ctx.cancelled, spec, inpainter)
        else:
            probe = p.probe
            frames = render_frames(p.source(), p.frames, self.holes(ids), inpainter, self.config.holes.feather)
            audio = p.source_path if probe.kind == "file" and probe.has_audio else None
            yield from write_output(frames, out, p.num_frames, probe.width, probe.height, probe.fps,
                                    probe.timestamps if probe.variable_frame_rate else None, audio, ctx.cancelled)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _chunked_fills(self, ids, ctx: RunContext):
        """Run the removal job's tasks on ``config.executor``; yields progress, returns the fills' folder."""
        from tam.jobs.removal import plan_removal, run_removal

        plan = plan_removal(self.project, self.config.spec("inpainter"), self.config.holes, ids, self.config.chunk)
        executor = self.config.executor
        if not executor.parallel or (len(plan.chunks) == 1 and not plan.anchors):
            executor = ExecutorSpec("serial")  # one worker or one task: no process to start
        with executor.create() as ex:
            yield from run_removal(plan, ex, ctx)
        return plan.folder

    def _render_codec(self, out, ids, should_stop, spec, inpainter) -> Iterator[tuple[int, int]]:
        p = self.project
        with open_source(p.source_path) as source:  # its own decoder, read in order
            frames = render_native(source, p.frames, self.holes(ids), inpainter,
                                   self.config.holes.feather, sixteen_bit_rgb=spec.is_sequence)
            yield from write_clip(frames, out, spec, self.source_meta(), p.num_frames, should_stop)

    def source_meta(self) -> SourceMeta:
        """The facts an export keeps from the source (rate, clock, colour, timecode, audio)."""
        probe = self.project.probe
        if probe.kind == "folder":
            return folder_meta(probe.fps)
        return read_meta(self.project.source_path)

    # -- mask exports -------------------------------------------------------------
    def export_masks(self, out_dir: str | os.PathLike) -> Iterator[tuple[int, int]]:
        """Indexed PNGs at the source's size, ``00000.png``..., pixel = object id."""
        n = self.project.num_frames
        with atomic_dir(out_dir) as tmp:
            for i in range(n):
                maskio.save_labels(tmp / f"{i:05d}.png", self.project.to_source_labels(self.labels_at(i)))
                yield i + 1, n

    def export_mattes(self, out_dir: str | os.PathLike, depth: int = 8) -> Iterator[tuple[int, int]]:
        """Per-object mattes at the source's size: ``object_<id>/00000.png``...

        ``depth`` 8: black/white PNGs; 16: 16-bit greyscale PNGs whose edges keep the
        working-size mask's sub-pixel position (linear upscaling, 0..65535).
        """
        if depth not in (8, 16):
            raise ValueError("matte depth is 8 or 16")
        n = self.project.num_frames
        ids = [o.id for o in self.project.objects]
        with atomic_dir(out_dir) as tmp:
            for oid in ids:
                (tmp / f"object_{oid}").mkdir()
            for i in range(n):
                labels = self.labels_at(i)
                for oid in ids:
                    path = tmp / f"object_{oid}" / f"{i:05d}.png"
                    if depth == 16:
                        cv2.imwrite(str(path), self._soft_matte(labels == oid))
                    else:
                        maskio.save_matte(path, self.project.to_source_labels(labels) == oid)
                yield i + 1, n

    def _soft_matte(self, mask: np.ndarray) -> np.ndarray:
        """A working-size bool mask as a 16-bit matte at the source's size."""
        w, h = self.project.source_size
        m = mask.astype(np.float32)
        if m.shape[::-1] != (w, h):
            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(m * 65535.0 + 0.5, 0, 65535).astype(np.uint16)

    def export_matte_video(self, out: str | os.PathLike, ids: Sequence[int] | None = None
                           ) -> Iterator[tuple[int, int]]:
        """The objects' removal matte (dilated and feathered as for removal) as a video.

        ``.mp4``: white on black H.264. ``.mov``: ProRes 4444 with alpha, white where
        the objects are and the alpha channel the same matte, 10-bit, at the source's
        rate, timestamps and timecode.
        """
        p = self.project
        holes = self.holes(ids)
        w, h = p.source_size
        probe = p.probe
        if Path(out).suffix.lower() == ".mov":
            yield from self._matte_prores(out, holes)
            return

        def frames():
            for i in range(p.num_frames):
                m = holes[i]
                if m.shape[::-1] != (w, h):
                    m = cv2.resize(m.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_LINEAR) > 127
                g = np.where(m, 255, 0).astype(np.uint8)
                yield i, np.dstack([g, g, g])

        yield from write_output(frames(), out, p.num_frames, w, h, probe.fps,
                                probe.timestamps if probe.variable_frame_rate else None)

    def _matte_prores(self, out, holes) -> Iterator[tuple[int, int]]:
        p = self.project
        w, h = p.source_size
        meta = replace(self.source_meta(), tags=MATTE_TAGS)
        times = p.probe.timestamps
        frames = (matte_frame(hole_alpha(holes[i], (w, h), self.config.holes.feather), (w, h), times[i], meta)
                  for i in range(p.num_frames))
        n = p.num_frames
        with ClipWriter(out, codecs.CODECS["prores4444"], meta, w, h, MATTE_FORMAT, 10, alpha=True,
                        with_audio=False) as writer:
            for done, frame in enumerate(frames, 1):
                writer.write(frame)
                yield done, n


def _changed(from_frame: int | None, keyframes) -> list[int] | None:
    """The keyframes a track re-propagates from: ``[from_frame]`` when it is one of ``keyframes``
    (indices or a mapping by index), else None (all of them)."""
    return [from_frame] if from_frame is not None and from_frame in keyframes else None


def write_source_masks(studio: Studio, masks_dir: str | os.PathLike) -> None:
    """Load a folder of per-frame masks at the source's size into the project (for ``remove``)."""
    p = studio.project
    if not Path(masks_dir).is_dir():
        raise MaskError(f"no such mask folder: {masks_dir}")
    files = sorted(Path(masks_dir).glob("*.png"))
    if len(files) != p.num_frames:
        raise MaskError(f"{masks_dir} holds {len(files)} mask PNGs for {p.num_frames} frames")
    for i, f in enumerate(files):
        labels = maskio.load_labels(f)
        maskio.check_size(labels, *p.source_size, what=f"mask {f.name}")
        p.save_mask(i, p.to_proxy_labels(labels))
