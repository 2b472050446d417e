"""The studio in a browser: open a clip, click the object, track it, remove it, export.

Run with ``streamlit run streamlit_app.py``. The page only draws and dispatches:
every operation is a call into :class:`tam.studio.Studio` on a
:class:`tam.project.Project` folder, the same core the command line uses, so
whatever the page shows is on disk and a refresh (or another day) reopens it.

Who owns what:

* the project on disk (:mod:`tam.project`) owns everything the user made: clicks,
  strokes, boxes, objects, keyframes, masks, renders. Two tabs on one project
  both edit it, each edit a transaction, and each tab shows the other's edits on
  its next run;
* the browser session (``st.session_state``) owns which project is open, the
  current frame, object and tool, and two studios over that project
  (:class:`~tam.studio.Studio`): ``studio`` for the page's clicks (it keeps the
  segmenter's image states) and ``job_studio`` for its Track and Render jobs (it
  keeps the tracker's state between jobs). Closing the project, or its folder
  vanishing, drops both;
* the server (``st.cache_resource``) owns the models, one set per settings
  (:class:`~tam.ui_state.SharedBackends`: no per-image data, a lock per tracker
  and inpainter), and the job board, one slot per project: tracking and
  rendering run in a background job so the page keeps answering, and a
  reopened page finds a job still running on its project;
* per run of the page: the widgets' values and whatever a panel computes to draw.
"""
from __future__ import annotations

import importlib.util
import dataclasses
import io
import shutil
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import cv2
import numpy as np
import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from inpaint.base import INPAINTERS
from inpaint.render import HoleConfig
from tam import masks as maskio
from tam.codecs import CODECS
from tam import ui_brush
from tam.errors import TamError, brief
from tam.project import Project, default_root, delete_project, list_projects, project_path
from tam.segment.base import SEGMENTERS
from tam.jobs.executors import ExecutorSpec
from tam.studio import Backends, Studio, StudioConfig
from tam.track.base import TRACKERS
from tam.video import DEFAULT_PROXY_LONGEST
from tam.ui_state import (Job, JobBoard, SharedBackends, available_backends, check_upload_size,
                          click_from_event, max_upload_mb)

SAMPLE = Path(__file__).resolve().parent / "assets" / "bigbuckbunny.mp4"
VIDEO_TYPES = ["mp4", "mov", "m4v", "mkv", "webm", "avi"]
RESOLUTIONS = [DEFAULT_PROXY_LONGEST, 640, 427, 1280, 0]  # longest side of the working frames; 0 = the source's size
RENDER_NAME = "removed.mp4"
RENDER_STEM = "removed"  # renders/removed.<codec's suffix>, or a folder for PNGs
CODEC_MIME = {".mp4": "video/mp4", ".mov": "video/quicktime", ".mkv": "video/x-matroska"}
DOWNLOAD_LABEL = {"h264": "Download MP4", "h265": "Download H.265 MP4", "prores": "Download ProRes",
                  "prores4444": "Download ProRes 4444", "ffv1": "Download FFV1", "png": "Download 16-bit PNGs (zip)"}
CANVAS_KEY = "canvas"
PREVIEW_WIDTH = 960  # before/after stills are sent to the browser at most this wide
INLINE_VIDEO_BYTES = 64 * 2**20  # larger clips are played only on request


# -- shared resources ------------------------------------------------------------

@st.cache_resource(show_spinner=False)
def shared_backends(segmenter: str, tracker: str, inpainter: str, device: str) -> SharedBackends:
    """One set of models per settings for the whole server, used under its lock."""

    def options(registry, name: str) -> dict:
        # only neural backends take a device; the classical ones run on the CPU
        return {"device": device} if device != "auto" and registry.entry(name).needs else {}

    config = StudioConfig(segmenter=segmenter, tracker=tracker, inpainter=inpainter,
                          segmenter_options=options(SEGMENTERS, segmenter),
                          tracker_options=options(TRACKERS, tracker),
                          inpainter_options=options(INPAINTERS, inpainter), executor=ExecutorSpec())
    return SharedBackends(Backends(config))


@st.cache_resource(show_spinner=False)
def job_board() -> JobBoard:
    return JobBoard()


def backend_choices() -> dict[str, list[str]]:
    return {"segmenter": available_backends(SEGMENTERS), "tracker": available_backends(TRACKERS),
            "inpainter": available_backends(INPAINTERS)}


# -- settings ----------------------------------------------------------------------

def settings_panel() -> dict:
    """The sidebar's settings; returns them as a plain dict."""
    choices = backend_choices()
    with st.sidebar.expander("Settings", expanded=False):
        out = {}
        for kind, registry in (("segmenter", SEGMENTERS), ("tracker", TRACKERS), ("inpainter", INPAINTERS)):
            names = choices[kind]
            out[kind] = st.selectbox(
                f"{kind.capitalize()} backend", names, key=f"set_{kind}",
                format_func=lambda n, r=registry: n + (" (default)" if n == r.default else ""),
                help="; ".join(f"{n}: {registry.entry(n).summary}" for n in names))
        devices = ["auto", "cpu"] + (["cuda"] if importlib.util.find_spec("torch") else [])
        out["device"] = st.selectbox("Device", devices, key="set_device",
                                     help="where neural backends run; the classical ones use the CPU")
        out["proxy"] = st.selectbox(
            "Working resolution", RESOLUTIONS, key="set_proxy",
            format_func=lambda v: "source size" if v == 0 else f"{v} px longest side",
            help="frames are masked, tracked and inpainted at this size, then composited at full "
                 "resolution; applies to clips opened from now on")
        out["dilate"] = st.slider("Mask dilation (px)", 0, 40, HoleConfig.dilate, key="set_dilate",
                                  help="grow the masks before removal to take in edges and shadows")
        out["feather"] = st.slider("Edge feather (px)", 0, 20, HoleConfig.feather, key="set_feather")
    return out


# -- opening -----------------------------------------------------------------------

def _new_project_name(stem: str) -> str:
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"


def sample_project_name(proxy: int) -> str:
    """The sample clip's one project per working resolution (reopened, never copied again)."""
    return f"sample-{proxy}px" if proxy else "sample-source"


def open_project(path: Path) -> Project:
    """Make ``path`` this session's project (and remember it in the URL for a refresh)."""
    project = Project.open(path)
    if not project.objects:
        project.add_object()
    ss = st.session_state
    ss["project_path"] = str(project.path)
    ss["frame"] = 0
    ss["object_id"] = project.objects[0].id
    ss.pop("preview_result", None)
    ss.pop("studio", None)
    st.query_params["project"] = project.path.name
    if not project.cuts_known:
        with st.spinner("Finding the shot cuts..."):
            for _ in project.find_cuts():
                pass
    return project


def create_project(source: Path, proxy: int, stem: str | None = None, path: Path | None = None) -> Project:
    """The project for ``source`` at ``path`` (reopened when it exists), or in a new folder named after ``stem``."""
    root = default_root()
    root.mkdir(parents=True, exist_ok=True)
    path = path or root / _new_project_name(stem or source.stem)
    project = Project.create(source, path=path, proxy_longest=proxy)
    return open_project(project.path)


def import_upload(name: str, data: bytes, proxy: int) -> Project:
    """Save an uploaded clip inside a new project folder and open it."""
    check_upload_size(name, len(data), max_upload_mb())
    stem = Path(name).stem or "upload"
    folder = default_root() / _new_project_name(stem)
    source = folder / f"source{Path(name).suffix.lower()}"
    try:
        folder.mkdir(parents=True)
        source.write_bytes(data)
        return create_project(source, proxy, path=folder)
    except (OSError, TamError) as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise upload_error(name, source.name, e) from None
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def upload_error(name: str, saved_as: str, e: Exception) -> TamError:
    """A one-line error about the upload ``name`` that shows no server path or errno."""
    if isinstance(e, TamError):
        text = str(e)
        return type(e)(name + text[len(saved_as):] if text.startswith(saved_as) else text)
    return TamError(f"{name} could not be saved on the server: {brief(e)}")


def open_panel(bar, settings: dict) -> str | None:
    """The open controls (drawn in ``bar``); returns the path of the project opened by this run, if any."""
    ss = st.session_state
    opened = None
    bar.subheader("Open a clip")
    try:
        if bar.button("Open the sample clip", key="open_sample", type="primary", width="stretch",
                      disabled=not SAMPLE.exists(), help="Big Buck Bunny, 5.3 s with audio"):
            opened = create_project(SAMPLE, settings["proxy"],
                                    path=project_path(sample_project_name(settings["proxy"])))
        limit = max_upload_mb()
        upload = bar.file_uploader(f"Upload a video (up to {limit} MB)", type=VIDEO_TYPES, key="upload",
                                   max_upload_size=limit)
        if upload is not None and ss.get("imported_upload") != upload.file_id:
            ss["imported_upload"] = upload.file_id
            check_upload_size(upload.name, upload.size, limit)
            opened = import_upload(upload.name, upload.getvalue(), settings["proxy"])
        projects = list_projects(default_root())
        if projects:
            projects.sort(key=_changed, reverse=True)
            names = [p.name for p in projects]  # most recently changed first
            choice = bar.selectbox("Saved projects", names, key="saved_project")
            left, right = bar.columns(2)
            if left.button("Open", key="open_saved", width="stretch"):
                opened = open_project(default_root() / choice)
            if right.button("Delete", key="delete_saved", width="stretch"):
                ss["confirm_delete"] = None
                refuse_if_busy(choice)
                ss["confirm_delete"] = choice
            delete_confirmation(bar, choice)
    except TamError as e:
        bar.error(str(e))
    return str(opened.path) if opened else None


def refuse_if_busy(name: str) -> None:
    """Raise TamError when a job (track or render) is running on the project called ``name``."""
    job = job_board().get(str(project_path(name)))
    if job is not None and job.running:
        raise TamError(f"{name} is busy ({job.kind} running): cancel it first")


def delete_confirmation(bar, name: str) -> None:
    """After a click on Delete, ask again; "Confirm delete" removes the project unless a job runs on it."""
    ss = st.session_state
    if ss.get("confirm_delete") != name:
        return
    bar.warning(f"Delete {name} with its masks and renders? This cannot be undone.")
    yes, no = bar.columns(2)
    if no.button("Keep", key="keep_saved", width="stretch"):
        ss.pop("confirm_delete", None)
        st.rerun()
    if yes.button("Confirm delete", key="confirm_delete_saved", type="primary", width="stretch"):
        ss.pop("confirm_delete", None)
        refuse_if_busy(name)
        if ss.get("project_path") == str(project_path(name)):
            close_project()
        delete_project(name, default_root())
        st.rerun()


def _changed(path: Path) -> float:
    try:
        return (path / "project.json").stat().st_mtime
    except OSError:
        return 0.0


def close_project() -> None:
    ss = st.session_state
    for k in ("project_path", "studio", "job_studio", "preview_result"):
        ss.pop(k, None)
    st.query_params.pop("project", None)


def restore_from_url() -> None:
    """A refreshed page comes back to the project it had open (its folder name is in the URL)."""
    ss = st.session_state
    name = st.query_params.get("project")
    if "project_path" in ss or not name:
        return
    try:
        path = project_path(name)
    except TamError:
        return  # not a project's folder name: the page starts without a project
    if (path / "project.json").exists():
        open_project(path)


def drop_vanished_project() -> None:
    """Close this session's project when its folder was deleted elsewhere, saying so in one line."""
    path = st.session_state.get("project_path")
    if path and not (Path(path) / "project.json").exists():
        close_project()
        st.warning(f"Project {Path(path).name} was deleted elsewhere; it is closed.")


# -- the session's studio ------------------------------------------------------------

def session_studio(settings: dict) -> tuple[Studio, SharedBackends] | None:
    """This session's Studio over its open project, rebuilt when the settings change."""
    ss = st.session_state
    path = ss.get("project_path")
    if not path:
        return None
    shared = shared_backends(settings["segmenter"], settings["tracker"], settings["inpainter"],
                             settings["device"])
    holes = HoleConfig(dilate=settings["dilate"], feather=settings["feather"])
    key = (path, id(shared), holes)
    current = ss.get("studio")
    if current is None or current[0] != key:
        project = current[1].project if current is not None and str(current[1].project.path) == path \
            else Project.open(path)
        studio = Studio(project, dataclasses.replace(shared.backends.config, holes=holes), shared.backends)
        ss["studio"] = (key, studio)
    return ss["studio"][1], shared


def session_job_studio(studio: Studio, shared: SharedBackends) -> Studio:
    """The studio this session's jobs run on, kept in the session between jobs.

    One per open project and settings, over the project opened again (its own frame
    reader and decoder, never used by the page's thread): the tracker's state (working
    frames, colour models, the forest) made by one Track serves the next, so a
    correction re-tracks from the state it left. It goes with the project on close.
    """
    ss = st.session_state
    key = (str(studio.project.path), id(shared), studio.config)
    current = ss.get("job_studio")
    if current is None or current[0] != key:
        current = (key, Studio(Project.open(key[0]), studio.config, shared.backends))
        ss["job_studio"] = current
    return current[1]


def resegment(studio: Studio, shared: SharedBackends, frame: int, object_id: int) -> int:
    """Recompute one object's mask on one frame from its clicks; returns its pixel count."""
    result = studio.segment(frame, object_id)
    return 0 if result is None else int(result.mask.sum())


def consume_click(studio: Studio, shared: SharedBackends, frame: int, object_id: int | None,
                  positive: bool, busy: bool) -> bool:
    """Apply the canvas's newest click (if not seen yet) as a prompt; True when the mask changed.

    This is the one path every click takes: the image component stores its event
    under ``CANVAS_KEY`` and the next run picks it up here, before drawing.
    """
    click = click_from_event(st.session_state.get(CANVAS_KEY), studio.project.source_size)
    if not ui_brush.take_event(click, "last_click", "clicking", busy, object_id):
        return False
    studio.project.add_click(frame, object_id, click.x, click.y, 1 if positive else 0)
    resegment(studio, shared, frame, object_id)
    return True


# -- drawing ---------------------------------------------------------------------------

def canvas_image(studio: Studio, frame: int) -> np.ndarray:
    """The working frame with the masks tinted and this frame's clicks, strokes and boxes drawn."""
    p = studio.project
    rgb = maskio.overlay(p.frames[frame], studio.labels_at(frame))
    sx, sy = p.proxy_scale
    r = max(3, round(max(p.proxy_size) / 140))
    for oid in p.prompted().get(frame, []):
        for x, y, label in p.prompt(frame, oid)["clicks"]:
            c = (int(round(x * sx)), int(round(y * sy)))
            cv2.circle(rgb, c, r + 1, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(rgb, c, r, (40, 200, 60) if label else (230, 40, 40), -1, cv2.LINE_AA)
    return ui_brush.draw_marks(rgb, p, frame)


def timeline_image(project: Project, frame: int, width: int = 800, height: int = 14) -> np.ndarray:
    """A strip, one column per frame: grey untracked, blue tracked, orange keyframe, red shot cut, white = here."""
    n = project.num_frames
    strip = np.full((1, n, 3), 70, np.uint8)
    strip[0, project.tracked_frames()] = (60, 120, 200)
    strip[0, project.keyframe_indices()] = (250, 160, 30)
    img = cv2.resize(strip, (width, height), interpolation=cv2.INTER_NEAREST)
    for cut in project.cuts() if project.cuts_known else []:
        cx = int(cut * width / n)
        img[:, max(0, cx - 2):cx + 2] = (230, 40, 40)
    x = int((frame + 0.5) * width / n)
    img[:, max(0, x - 1):x + 2] = 255
    return img


def shrink(rgb: np.ndarray, width: int = PREVIEW_WIDTH) -> np.ndarray:
    h, w = rgb.shape[:2]
    if w <= width:
        return rgb
    return cv2.resize(rgb, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


# -- sections -------------------------------------------------------------------------------

def objects_panel(project: Project, busy: bool = False) -> tuple[int | None, bool]:
    """Objects: add, rename, delete, choose the one clicks go to; returns (object id, positive)."""
    ss = st.session_state
    objects = project.objects
    ids = [o.id for o in objects]
    names = {o.id: o.name for o in objects}
    st.markdown("**Objects**")
    if ids:
        if ss.get("object_id") not in ids:
            ss["object_id"] = ids[0]
        oid = st.radio("Clicks go to", ids, key="object_id",
                       format_func=lambda i: f"{i}: {names.get(i, '?')}")
    else:
        oid = None
        st.caption("No objects: add one to start clicking.")
    a, b = st.columns(2)
    a.button("Add object", key="add_object", width="stretch", on_click=_add_object, args=(project,),
             disabled=busy)
    if oid is not None:
        b.button("Delete object", key="delete_object", width="stretch", on_click=_delete_object,
                 args=(project, oid), help="forget its clicks and masks on every frame", disabled=busy)
    if oid is not None:
        st.text_input("Name", value=names[oid], key=f"name_{project.name}_{oid}",
                      on_change=_rename, args=(project, oid, f"name_{project.name}_{oid}"))
    kind = st.radio("A click adds", ["positive", "negative"], key="click_kind", horizontal=True,
                    help="positive: part of the object; negative: not part of it")
    return oid, kind == "positive"


def _add_object(project: Project) -> None:
    st.session_state["object_id"] = project.add_object()


def _delete_object(project: Project, object_id: int) -> None:
    project.delete_object(object_id)
    st.session_state.pop("object_id", None)


def _rename(project: Project, object_id: int, key: str) -> None:
    name = st.session_state.get(key, "").strip()
    if name:
        project.rename_object(object_id, name)


def prompt_panel(studio: Studio, shared: SharedBackends, frame: int, object_id: int | None,
                 busy: bool) -> None:
    """This frame's prompt for the chosen object (clicks, strokes, box): a summary, undo and clear."""
    p = studio.project
    if object_id is None:
        return
    prompt = p.prompt(frame, object_id)
    clicks = prompt["clicks"]
    labels = studio.labels_at(frame)
    share = float((labels == object_id).mean()) * 100
    pos = sum(1 for c in clicks if c[2])
    st.caption(f"Frame {frame} · object {object_id}: {len(clicks)} click(s) "
               f"({pos} positive){ui_brush.prompt_summary(prompt)} · mask {share:.1f}% of the frame")
    prompted = bool(clicks or prompt["strokes"] or prompt["box"] is not None)
    a, b = st.columns(2)
    if a.button("Undo", key="undo_click", disabled=busy or not prompted, width="stretch",
                help="take back the last click, stroke or box"):
        p.undo(frame, object_id)
        resegment(studio, shared, frame, object_id)
        st.rerun()
    if b.button("Clear", key="clear_clicks", disabled=busy or not prompted, width="stretch",
                help="remove every click, stroke and box of this object on this frame"):
        p.clear_prompt(frame, object_id)
        resegment(studio, shared, frame, object_id)
        st.rerun()


def frame_controls(project: Project) -> int:
    """The scrubber; returns the current frame."""
    ss = st.session_state
    last = project.num_frames - 1
    frame = int(ss.get("frame", 0))
    if not 0 <= frame <= last:
        # set only when out of range: a value written back on every run reaches the browser as a new value
        # and overwrites the presses made while the run was on their way (a held arrow key skipped frames)
        ss["frame"] = min(max(frame, 0), last)
    a, b, c = st.columns([1, 12, 1], vertical_alignment="bottom")
    a.button("◀", key="prev_frame", on_click=_step_frame, args=(-1, last), help="previous frame")
    frame = b.slider("Frame", 0, max(last, 1), key="frame", disabled=last == 0)
    c.button("▶", key="next_frame", on_click=_step_frame, args=(1, last), help="next frame")
    return int(frame)


def _step_frame(delta: int, last: int) -> None:
    ss = st.session_state
    ss["frame"] = min(max(int(ss.get("frame", 0)) + delta, 0), last)


def track_panel(studio: Studio, shared: SharedBackends, frame: int, busy: bool) -> str:
    """Direction and the Track button; returns the chosen direction."""
    p = studio.project
    keys = p.keyframe_indices()
    st.markdown("**Track**")
    direction = st.radio("Direction", ["both", "forward", "backward"], key="track_direction",
                         horizontal=True, format_func={"both": "both ways", "forward": "forwards",
                                                       "backward": "backwards"}.get)
    if frame in keys:
        st.caption(f"From keyframe {frame}: tracks the frames between it and its neighbouring keyframes.")
    elif keys:
        st.caption(f"This frame has no clicks: tracks from every keyframe ({', '.join(map(str, keys))}).")
    else:
        st.caption("Click the object on some frame first.")
    refine = st.checkbox("Refine where the mask degrades", key="track_refine",
                         help="re-segment frames where a tracked mask changes suddenly, from the mask itself, "
                              "and track on from there; meant for a SAM segmenter: with the classical one it "
                              "lowered accuracy on the benchmark")
    tracked = len(p.tracked_frames())
    st.caption(f"{tracked}/{p.num_frames} frames have a mask.")
    stops = studio.cut_stops(direction, frame if frame in keys else None) if keys else []
    if stops:
        st.info(f"Tracking stops at the shot cut{'s' if len(stops) > 1 else ''} before frame "
                f"{', '.join(map(str, stops))}: a mask is never carried into another shot. "
                "If the object is there too, click it again in that shot.", icon=":material/content_cut:")
    if st.button("Track", key="track", type="primary", disabled=busy or not keys, width="stretch"):
        start = frame if frame in keys else None
        start_job("track", studio, shared, lambda s, ctx: s.track(direction, start, refine=refine, ctx=ctx),
                  studio.frames_to_track(direction, start))
    job_status(p, "track")
    return direction


def start_job(kind: str, studio: Studio, shared: SharedBackends, work, total: int) -> None:
    """Run ``work(studio, ctx)`` over ``total`` frames in the background, then redraw the page to
    follow it.

    The job runs on the session's job studio (:func:`session_job_studio`), so its
    frame reader and decoder are never used by the page's thread at the same
    time; the job and the page meet only on disk.
    """
    key = str(studio.project.path)
    job_studio = session_job_studio(studio, shared)
    lock = shared.locks["tracker" if kind == "track" else "inpainter"]
    try:
        job_board().start(key, Job(kind, lambda ctx: work(job_studio, ctx), lock,
                                   on_finish=job_studio.project.close, total=total))
    except TamError as e:
        st.error(str(e))
        return
    st.session_state.pop("preview_result", None)
    st.rerun()


@st.fragment(run_every=1.0)
def job_progress(key: str, job_id: str) -> None:
    """Progress and cancel for a running job; refreshes itself, then the page when the job ends."""
    job = job_board().get(key)
    if job is None or job.id != job_id or not job.running:
        st.rerun(scope="app")
        return
    verb = {"track": "Tracking", "render": "Removing"}.get(job.kind, job.kind)
    if job.waiting:
        model = "tracker" if job.kind == "track" else "inpainter"
        text = f"{verb}: waiting for the {model}, busy in another session"
    else:
        text = f"{verb}: {job.done}/{job.total} frames ({time.time() - job.started:.0f} s)"
    st.progress(job.fraction, text=text)
    if st.button("Cancel", key=f"cancel_{job_id}"):
        job.cancel()


def project_busy(project: Project) -> bool:
    """Whether a job (track or render) runs on the project, from this session or another."""
    job = job_board().get(str(project.path))
    return job is not None and job.running


def job_status(project: Project, kind: str) -> None:
    """Under the button that starts ``kind`` jobs, where the user is looking: the project's job of that
    kind (running: live progress and Cancel; finished: its outcome)."""
    job = job_board().get(str(project.path))
    if job is None or job.kind != kind:
        return
    if job.running:
        job_progress(str(project.path), job.id)
        return
    took = (job.finished or time.time()) - job.started
    if job.state == "done":
        verb = {"track": "Tracked", "render": "Rendered"}.get(job.kind, job.kind)
        st.success(f"{verb} {job.done}/{job.total} frames in {took:.0f} s.")
    elif job.state == "cancelled":
        st.warning(f"{job.message}; the frames done so far are kept.")
    else:
        st.error(f"{job.kind} failed: {job.message}")


def remove_panel(studio: Studio, shared: SharedBackends, frame: int, busy: bool) -> list[int]:
    """Choose objects, preview one frame, render the whole clip, compare before and after.

    Returns the ids of the objects chosen for removal."""
    ss = st.session_state
    p = studio.project
    objects = p.objects
    names = {o.id: o.name for o in objects}
    key, known_key = f"remove_ids_{p.name}", f"remove_known_{p.name}"
    known = set(ss.get(known_key, ()))  # objects new since the last run are selected too
    ss[key] = [i for i in ss.get(key, []) if i in names] + [i for i in names if i not in known]
    ss[known_key] = list(names)
    ids = st.multiselect("Objects to remove", list(names), key=key,
                         format_func=lambda i: f"{i}: {names.get(i, '?')}")
    has_masks = bool(p.tracked_frames())
    a, b = st.columns(2)
    if a.button("Preview this frame", key="preview", disabled=busy or not ids, width="stretch"):
        try:
            with st.spinner("Removing the objects from this frame..."), shared.locks["inpainter"]:
                before, after = studio.preview(frame, ids)
            ss["preview_result"] = {"project": str(p.path), "frame": frame, "before": shrink(before),
                             "after": shrink(after)}
        except TamError as e:
            st.error(str(e))
    codec = st.selectbox("Codec", list(CODECS), key="render_codec", format_func=lambda c: CODECS[c].summary,
                         help="ProRes and FFV1 keep 10-bit sources 10-bit; FFV1 and PNG leave every pixel outside "
                              "the hole exactly as decoded. Colour tags, timecode, frame rate and all audio are kept.")
    out = render_path(p, codec)
    if b.button("Render the clip", key="render", type="primary", disabled=busy or not ids or not has_masks,
                width="stretch"):
        start_job("render", studio, shared, lambda s, ctx: s.render(out, ids, codec=codec, ctx=ctx), p.num_frames)
    with b:  # under the Render button
        job_status(p, "render")
    prev = ss.get("preview_result")
    if prev and prev["project"] == str(p.path):
        st.caption(f"Frame {prev['frame']}: before and after")
        l, r = st.columns(2)
        l.image(prev["before"], caption="before", width="stretch")
        r.image(prev["after"], caption="after", width="stretch")
    if out.exists() and not busy and out.suffix == ".mp4":
        masks_dir = p.path / "masks"
        if masks_dir.exists() and masks_dir.stat().st_mtime > out.stat().st_mtime:
            st.info("The masks changed after this render: render again to include the changes.")
        small = out.stat().st_size + p.source_path.stat().st_size < INLINE_VIDEO_BYTES
        if st.toggle("Before and after, side by side", value=small, key=f"show_compare_{p.name}"):
            l, r = st.columns(2)
            l.caption("Before")
            l.video(str(p.source_path))
            r.caption("After")
            r.video(str(out))
    return list(ids)


def export_panel(studio: Studio, ids: list[int], busy: bool) -> None:
    """Downloads: the rendered MP4, the mask PNGs (zip) and the matte video, made on demand."""
    p = studio.project
    codec = st.session_state.get("render_codec", "h264")
    out = render_path(p, codec)
    has_masks = bool(p.tracked_frames())
    cols = st.columns(3)
    name = f"{p.name}-removed{out.suffix or '-png16.zip'}"
    cols[0].download_button(DOWNLOAD_LABEL[codec], data=lambda: render_bytes(out), file_name=name,
                            mime=CODEC_MIME.get(out.suffix, "application/zip"), key="download_mp4",
                            disabled=busy or not out.exists(), on_click="ignore", width="stretch")
    cols[1].download_button("Download mask PNGs (zip)", data=lambda: masks_zip(studio),
                            file_name=f"{p.name}-masks.zip", mime="application/zip", key="download_masks",
                            disabled=busy or not has_masks, on_click="ignore", width="stretch")
    cols[2].download_button("Download matte video", data=lambda: matte_video(studio, ids),
                            file_name=f"{p.name}-matte.mp4", mime="video/mp4", key="download_matte",
                            disabled=busy or not has_masks, on_click="ignore", width="stretch")
    more = st.columns(2)
    more[0].download_button("Download 16-bit mattes (zip)", data=lambda: mattes_zip(studio),
                            file_name=f"{p.name}-mattes16.zip", mime="application/zip", key="download_mattes16",
                            disabled=busy or not has_masks, on_click="ignore", width="stretch")
    more[1].download_button("Download ProRes 4444 matte with alpha",
                            data=lambda: matte_video(studio, ids, ".mov"), file_name=f"{p.name}-matte.mov",
                            mime="video/quicktime", key="download_matte_prores",
                            disabled=busy or not has_masks, on_click="ignore", width="stretch")


def render_path(project: Project, codec: str) -> Path:
    """Where the render with ``codec`` goes (the H.264 one keeps its historical name)."""
    if codec == "h264":
        return project.renders_dir() / RENDER_NAME
    spec = CODECS[codec]
    return project.renders_dir() / (RENDER_STEM + f"-{codec}" + ("" if spec.is_sequence else spec.suffixes[0]))


def render_bytes(out: Path) -> bytes:
    """A render's file, or a PNG sequence's folder as a zip."""
    if out.is_file():
        return out.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for f in sorted(out.iterdir()):
            z.write(f, f"{out.name}/{f.name}")
    return buf.getvalue()


def masks_zip(studio: Studio) -> bytes:
    studio = Studio(Project.open(studio.project.path), studio.config, studio.backends)  # runs off-page
    with tempfile.TemporaryDirectory(prefix="tam-masks-") as tmp:
        folder = Path(tmp) / "masks"
        for _ in studio.export_masks(folder):
            pass
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:  # PNGs are compressed already
            for f in sorted(folder.glob("*.png")):
                z.write(f, f"masks/{f.name}")
        return buf.getvalue()


def mattes_zip(studio: Studio) -> bytes:
    """Per-object 16-bit PNG mattes at the source's size, zipped."""
    studio = Studio(Project.open(studio.project.path), studio.config, studio.backends)  # runs off-page
    with tempfile.TemporaryDirectory(prefix="tam-mattes-") as tmp:
        folder = Path(tmp) / "mattes"
        for _ in studio.export_mattes(folder, depth=16):
            pass
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for f in sorted(folder.rglob("*.png")):
                z.write(f, f"mattes/{f.relative_to(folder)}")
        return buf.getvalue()


def matte_video(studio: Studio, ids: list[int] | None, suffix: str = ".mp4") -> bytes:
    """The removal matte: white-on-black H.264 (.mp4) or ProRes 4444 with alpha (.mov)."""
    studio = Studio(Project.open(studio.project.path), studio.config, studio.backends)  # runs off-page
    with tempfile.TemporaryDirectory(prefix="tam-matte-") as tmp:
        path = Path(tmp) / f"matte{suffix}"
        for _ in studio.export_matte_video(path, ids):
            pass
        return path.read_bytes()


def welcome() -> None:
    st.title("Video object removal studio")
    st.markdown(
        "Open a clip from the sidebar: **the sample clip**, an upload, or a saved project. Then\n"
        "1. click the object on a frame (positive and negative clicks) until its mask is right; where clicks\n"
        "   fall short, paint with the brush (add or erase) or drag a box around it;\n"
        "2. **track** it through the clip, scrub to check it, and fix any frame with more clicks;\n"
        "3. **preview** the removal on a frame, **render** the clip, and download the result.\n\n"
        "Everything is saved in the project folder as you go: reopen it any time.")
    st.caption(f"Projects live in {default_root()}")


def studio_page(studio: Studio, shared: SharedBackends) -> None:
    """The work area for the open project."""
    p = studio.project
    ss = st.session_state
    head, close = st.columns([6, 1], vertical_alignment="bottom")
    head.subheader(p.name)
    head.caption(f"{p.probe.summary()} · working at {p.proxy_size[0]}x{p.proxy_size[1]}")
    if close.button("Close", key="close_project"):
        close_project()
        st.rerun()
    busy = project_busy(p)
    left, right = st.columns([3, 1])
    with right:
        object_id, positive = objects_panel(p, busy)
    with left:
        frame = frame_controls(p)
        tool, radius = ui_brush.tool_bar(busy)
        try:
            consume_click(studio, shared, frame, object_id, positive, busy)
            if ui_brush.consume_drawing(p, frame, object_id, busy):
                resegment(studio, shared, frame, object_id)
        except TamError as e:
            st.error(str(e))
        if tool == "click":
            streamlit_image_coordinates(canvas_image(ss["studio"][1], frame), key=CANVAS_KEY, width="stretch",
                                        image_format="JPEG", jpeg_quality=90, cursor="crosshair")
        else:
            ui_brush.draw_surface(canvas_image(ss["studio"][1], frame), tool, radius, disabled=busy)
        st.image(timeline_image(p, frame), width="stretch",
                 caption="mask timeline: orange = clicked keyframe, blue = tracked, red = shot cut, "
                         "white = this frame")
        # st.video sends the whole file on every run, so the players are drawn only when asked for
        if st.toggle("Play the source clip", key="show_player"):
            st.video(str(p.source_path))
    studio = ss["studio"][1]
    with right:
        prompt_panel(studio, shared, frame, object_id, busy)
        st.divider()
        track_panel(studio, shared, frame, busy)
    st.divider()
    st.markdown("**Remove**")
    ids = remove_panel(studio, shared, frame, busy)
    st.markdown("**Export**")
    export_panel(studio, ids, busy)


def main() -> Studio | None:
    """Draw the page; returns the session's studio (None while no project is open)."""
    st.set_page_config(page_title="Video object removal", layout="wide")
    open_area = st.sidebar.container()
    settings = settings_panel()
    restore_from_url()
    open_panel(open_area, settings)
    drop_vanished_project()
    try:
        pair = session_studio(settings)
    except TamError as e:
        st.error(str(e))
        close_project()
        pair = None
    if pair is None:
        welcome()
        return None
    studio, shared = pair
    studio_page(studio, shared)
    return st.session_state["studio"][1]


if __name__ == "__main__":
    main()
