"""Object removal as a job of independent tasks: temporal chunks of one clip.

The clip is cut into chunks of ``chunk`` frames. A chunk task opens the project
(frames and masks on disk), runs the inpainter over its frames with the context
it needs on both sides, and writes each filled working-size frame to
``<project>/jobs/remove-<digest>/fills/00000.png`` atomically; frames already
there are not written again, so a re-run after a crash continues where it stopped.

**Same output as one run.** A flow-guided inpainter carries state from frame to
frame (the keyframe fill of never-seen pixels, temporal smoothing). The job sets
its ``restart`` option to the chunk length: the carried state restarts at fixed
frames (see ``FlowGuidedInpainter.restarts_at``), so each chunk computes its
frames exactly, bit for bit, as one whole run with the same option does, and
every executor gives the same files. The first keyframe fill after each restart
(an *anchor*, the only fill two neighbouring chunks would both need) is computed
once per clip by an anchor task before the chunks, stored under ``anchors/``
and handed to both chunks by content, so they carry the same fill across the
boundary. A per-frame inpainter (telea) needs no context; any other runs as one task.

The driver then composites the stored fills into the source at full resolution
and encodes the output as a serial render does (:class:`StoredFills`).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from inpaint.base import Inpainter
from inpaint.render import HoleConfig, HoleMasks
from tam.cache import content_digest
from tam.errors import TamError
from tam.jobs.executors import Executor, Resources, worker_info
from tam.runspec import BackendSpec, RunContext

DEFAULT_CHUNK = 60  # frames per removal task
JOBS_DIR = "jobs"
JOB_DIGEST_CHARS = 16  # hex characters of a job folder's content digest
FILLS = "fills"
ANCHORS = "anchors"
NO_FILL = b"none"  # an anchor frame that needed no keyframe fill


# -- where things are -----------------------------------------------------------------

def fill_path(folder: str | os.PathLike, index: int) -> Path:
    return Path(folder) / FILLS / f"{index:05d}.png"


def anchor_path(folder: str | os.PathLike, index: int) -> Path:
    return Path(folder) / ANCHORS / f"{index:05d}.npz"


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` under ``path``, appearing whole or not at all."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_fill(path: Path, rgb: np.ndarray) -> None:
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise TamError(f"could not encode {path.name}")
    write_atomic(path, png.tobytes())


def read_fill(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise TamError(f"the fill {path.name} of the removal job is missing or unreadable")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# -- the tasks ------------------------------------------------------------------------

@dataclass(frozen=True)
class RemovalTask:
    """One chunk: frames [start, stop) of the project at ``project``; fills go to ``folder``."""

    project: str
    folder: str
    inpainter: BackendSpec
    holes: HoleConfig
    ids: tuple[int, ...] | None
    start: int
    stop: int


@dataclass(frozen=True)
class AnchorTask:
    """The keyframe fill at ``frame``, where the first pass of a flow-guided inpainter restarts."""

    project: str
    folder: str
    inpainter: BackendSpec
    holes: HoleConfig
    ids: tuple[int, ...] | None
    frame: int


def _inputs(task):
    """(project, working frames, hole masks) of a task, read from disk."""
    from tam.project import Project

    p = Project.open(task.project)
    ids = list(task.ids) if task.ids is not None else None
    return p, p.frames, HoleMasks(p.masks, ids, task.holes, p.proxy_scale[0])


def flow_part(inpainter: Inpainter):
    """The ``FlowGuidedInpainter`` doing the work of ``inpainter`` (itself or the one it wraps), or None."""
    from inpaint.flow_guided import FlowGuidedInpainter

    if isinstance(inpainter, FlowGuidedInpainter):
        return inpainter
    inner = getattr(inpainter, "_flow", None)
    return inner if isinstance(inner, FlowGuidedInpainter) else None


def _question(rgb: np.ndarray, hole: np.ndarray, sources=(), start=None) -> str:
    """The content digest of one keyframe-filler call: the frame, its hole, and for a filler that
    takes other views (``takes_views``) those views and the mask of carried pixels it refines."""
    parts = [rgb, hole]
    for view, known in sources:
        parts += [view, known]
    if start is not None:
        parts.append(start)
    return content_digest(*parts)


class _Recorder:
    """A keyframe filler that remembers its answers by the content of its question."""

    def __init__(self, filler):
        self.filler, self.answers = filler, {}
        self.takes_views = getattr(filler, "takes_views", False)

    def __call__(self, rgb: np.ndarray, hole: np.ndarray, **views) -> np.ndarray:
        out = np.asarray(self.filler(rgb, hole, **views))
        self.answers[_question(rgb, hole, **views)] = out
        return out


class _Memo:
    """A keyframe filler answering the questions an anchor task answered already, by content."""

    def __init__(self, filler, known: dict[str, np.ndarray]):
        self.filler, self.known = filler, known
        self.takes_views = getattr(filler, "takes_views", False)

    def __call__(self, rgb: np.ndarray, hole: np.ndarray, **views) -> np.ndarray:
        hit = self.known.get(_question(rgb, hole, **views))
        return hit.copy() if hit is not None else self.filler(rgb, hole, **views)


def fill_anchor(task: AnchorTask) -> dict:
    """Compute and store the keyframe fill at an anchor frame (nothing when the frame needs none).

    The first pass at a restart frame depends on the frames around it only: it is
    run alone there, with the filler recorded."""
    from inpaint.flow_guided import FlowGuidedInpainter

    out = anchor_path(task.folder, task.frame)
    if out.exists():
        return {"frames": 0, **worker_info()}
    _, frames, holes = _inputs(task)
    flow = flow_part(task.inpainter.create())
    cfg = {**flow.config.__dict__, "passes": 1, "restart": 0}
    recorder = _Recorder(flow.keyframe_filler)
    for _ in FlowGuidedInpainter(recorder, **cfg).inpaint(frames, holes, [task.frame]):
        pass
    if recorder.answers:
        [(key, fill)] = recorder.answers.items()
        import io
        buf = io.BytesIO()
        np.savez(buf, key=np.array(key), fill=fill)
        write_atomic(out, buf.getvalue())
    else:
        write_atomic(out, NO_FILL)
    return {"frames": 0, **worker_info()}


def _known_anchors(folder: str, lo: int, hi: int) -> dict[str, np.ndarray]:
    """The stored anchor fills of frames in [lo, hi], by content digest."""
    known = {}
    d = Path(folder) / ANCHORS
    if not d.is_dir():
        return known
    for path in d.glob("*.npz"):
        if lo <= int(path.stem) <= hi and path.read_bytes()[:len(NO_FILL)] != NO_FILL:
            with np.load(path) as z:
                known[str(z["key"])] = z["fill"]
    return known


def fill_chunk(task: RemovalTask) -> dict:
    """Fill frames [start, stop) and write those not on disk yet; returns counts and worker facts."""
    missing = [i for i in range(task.start, task.stop) if not fill_path(task.folder, i).exists()]
    started = time.perf_counter()
    if missing:
        _, frames, holes = _inputs(task)
        inpainter = task.inpainter.create()
        flow = flow_part(inpainter)
        if flow is not None:
            cfg = flow.config
            reach = _flow_reach(task.inpainter) + cfg.radius
            flow.keyframe_filler = _Memo(flow.keyframe_filler,
                                         _known_anchors(task.folder, task.start - reach, task.stop + reach))
        todo = set(missing)
        for i, rgb in inpainter.inpaint(frames, holes, range(task.start, task.stop)):
            if i in todo:
                write_fill(fill_path(task.folder, i), rgb)
    return {"frames": len(missing), "seconds": time.perf_counter() - started, **worker_info()}


# -- the job --------------------------------------------------------------------------

@dataclass(frozen=True)
class RemovalPlan:
    """The tasks of one removal: anchor tasks first, then the chunks."""

    folder: str
    anchors: tuple[AnchorTask, ...]
    chunks: tuple[RemovalTask, ...]
    num_frames: int


def chunk_mode(spec: BackendSpec) -> str:
    """``flow`` (chunks with restarts), ``frames`` (chunks, no context needed) or ``whole`` (one task)."""
    from inpaint.base import INPAINTERS
    from inpaint.flow_guided import FlowGuidedInpainter
    from inpaint.spatial import TeleaInpainter

    cls = INPAINTERS.entry(spec.name).load_class()
    if issubclass(cls, FlowGuidedInpainter) or spec.name == "diffusion":
        return "flow"
    if issubclass(cls, TeleaInpainter):
        return "frames"
    return "whole"


def _flow_reach(spec: BackendSpec) -> int:
    """Frames before a chunk where its first pass restarts (``FlowGuidedInpainter.restart_reach``)."""
    from inpaint.flow_guided import RESTART_WARMUP, FlowGuidedConfig, FlowGuidedInpainter

    names = {f.name for f in fields(FlowGuidedConfig)}
    options = {k: v for k, v in spec.options_dict.items() if k in names}
    runner = FlowGuidedInpainter(_unused_filler, **options)  # only its config is read: no filler is built
    return runner.restart_reach(0) + RESTART_WARMUP


def _unused_filler(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    raise TamError("this inpainter only states its restarts")


def _masks_digest(project) -> str:
    d = Path(project.path) / "masks"
    paths = sorted(d.glob("[0-9]*.png")) if d.is_dir() else []
    return content_digest(*(part for path in paths for part in (path.name, path.read_bytes())))


def plan_removal(project, spec: BackendSpec, holes: HoleConfig, ids: Sequence[int] | None = None,
                 chunk: int = DEFAULT_CHUNK) -> RemovalPlan:
    """The job's tasks and its folder, named after everything its output depends on.

    A folder left by an earlier job on other masks or settings is removed."""
    if chunk < 1:
        raise TamError(f"--chunk must be >= 1, got {chunk}")
    n = project.num_frames
    for _ in project.frames.fill_cache():  # decode the source once here, not in every task
        pass
    mode = chunk_mode(spec)
    if mode == "whole":
        chunk = n
    if mode == "flow":
        spec = spec.with_options(restart=chunk if chunk < n else 0)
    ids_t = tuple(sorted(int(i) for i in ids)) if ids is not None else None
    key = json.dumps({"spec": [spec.kind, spec.name, list(map(list, spec.options)), spec.device, spec.checkpoint],
                      "holes": asdict(holes), "ids": ids_t, "chunk": chunk, "n": n,
                      "proxy": list(project.proxy_size), "masks": _masks_digest(project)}, default=str)
    digest = content_digest(key)[:JOB_DIGEST_CHARS]
    root = Path(project.path) / JOBS_DIR
    folder = root / f"remove-{digest}"
    for stale in root.glob("remove-*") if root.is_dir() else []:
        if stale != folder:
            shutil.rmtree(stale, ignore_errors=True)
    (folder / FILLS).mkdir(parents=True, exist_ok=True)
    (folder / ANCHORS).mkdir(exist_ok=True)
    common = dict(project=str(project.path), folder=str(folder), inpainter=spec, holes=holes, ids=ids_t)
    chunks = tuple(RemovalTask(**common, start=s, stop=min(n, s + chunk)) for s in range(0, n, chunk))
    anchors = ()
    if mode == "flow" and chunk < n:
        reach = _flow_reach(spec)
        anchors = tuple(AnchorTask(**common, frame=k * chunk - reach)
                        for k in range(1, len(chunks)) if k * chunk - reach >= 0)
    return RemovalPlan(str(folder), anchors, chunks, n)


def count_fills(folder: str | os.PathLike) -> int:
    d = Path(folder) / FILLS
    with os.scandir(d) as it:
        return sum(1 for e in it if e.name.endswith(".png") and not e.name.startswith("."))


def run_removal(plan: RemovalPlan, executor: Executor, ctx: RunContext | None = None
                ) -> Iterator[tuple[int, int]]:
    """Run the plan's tasks; yields ``(frames filled, total)``. Returns the tasks' results."""
    ctx = ctx or RunContext()
    n = plan.num_frames
    resources = Resources.for_backend(plan.chunks[0].inpainter)
    results = []

    for _ in _drive(executor.run(fill_anchor, plan.anchors, resources), ctx, results):
        pass
    done = count_fills(plan.folder)
    yield done, n
    for _ in _drive(executor.run(fill_chunk, plan.chunks, resources), ctx, results):
        done = count_fills(plan.folder)
        yield done, n
    if done < n:
        raise TamError(f"the removal job wrote {done} of {n} frames")
    return results


def _drive(events, ctx: RunContext, results: list) -> Iterator[None]:
    """Follow an executor's events: keep the results, check for a cancel, yield at each event."""
    with contextlib.closing(events):
        for event in events:
            ctx.check("removal")
            if event is not None:
                results.append(event[1])
            yield None


class StoredFills(Inpainter):
    """The fills a removal job stored, read back as an inpainter for the renderer (not registered)."""

    name = "stored"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def inpaint(self, frames, masks, indices=None):
        for i in range(len(frames)) if indices is None else sorted(set(indices)):
            yield i, read_fill(fill_path(self.folder, i))
