"""The on-disk project: one folder per clip that remembers every click and mask.

Layout of a project folder::

    project.json        source path, probe, working (proxy) size, objects
    prompts.json        clicks, boxes and brush strokes per frame per object, in source pixels,
                        with the order they were added in (for undo)
    keyframes/NNNNN.png user-fixed label maps (what tracking starts from), proxy size
    masks/NNNNN.png     label maps for every tracked frame, proxy size, DAVIS palette
    proxy/NNNNN.jpg     the working-resolution frame cache
    (project.json's "shots": the shot cuts found when the clip was opened)
    renders/            previews and exports

One object's prompt on one frame in ``prompts.json``::

    {"clicks": [[x, y, label], ...], "boxes": [[x0, y0, x1, y1], ...], "box": <the last box or null>,
     "strokes": [{"points": [[x, y], ...], "label": 1 add | 0 erase, "radius": r}, ...],
     "steps": ["click", "stroke", "box", ...]}

``steps`` is the order things were added in, which undo walks back; ``box``
repeats the box in force for readers that know only clicks and a box. A file
with only ``clicks`` and ``box`` (the earlier format) reads as those clicks,
then that box.

Every write is atomic, so killing the process at any moment loses at most the
file being written, and reopening the folder restores the session exactly.

The project on disk owns the prompts, the objects and the keyframes: the UI and
the CLI hold nothing that is not on disk, and a :class:`Project` object is only
a view of the folder. Several editors may have one project open at once (two
browser tabs, the studio and the command line). Every edit (a click, a box, a
stroke, an undo, a cleared or replaced prompt, an object added, renamed or
deleted, a keyframe or mask set or removed, the shot cuts recorded) is a
transaction: it takes an exclusive lock on ``.project.lock`` in the folder
(:class:`tam.filelock.FileLock`), rereads ``project.json`` and ``prompts.json``,
applies the change and writes the files atomically, then lets go. So concurrent
editors never erase each other's work, and an undo takes back the last step on
disk, whoever made it. Reads take no lock: they reread a file whenever its
inode, size or modification time changed since it was last read, so an open
project shows edits made elsewhere on its next read. The source, its probe and
the working size never change once the project is made.

Who owns what: the folder owns all of the above. A :class:`Project` object owns
only caches that can be rebuilt from the folder: the last-read copy of each JSON
file (reread when the file changes), a small LRU of decoded working frames
(:class:`ProxyFrames`) and an open decoder of the source (``close`` drops it). A
studio session (:mod:`tam.studio`) holds a Project; nothing else is per session.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from tam import masks as maskio
from tam import shots as shotcuts
from tam.cache import LRU, content_digest
from tam.errors import MaskError, PromptError, TamError
from tam.fileio import atomic_path, read_json, write_json
from tam.filelock import FileLock
from tam.video import DEFAULT_PROXY_LONGEST, Probe, VideoSource, open_source, proxy_size, to_working_size

FORMAT_VERSION = 1
LOCK_NAME = ".project.lock"  # the lock every edit of the folder holds


def default_root() -> Path:
    """Where projects live: ``$TAM_HOME/projects`` or the user's data folder."""
    home = os.environ.get("TAM_HOME")
    if home:
        return Path(home).expanduser() / "projects"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "tam" / "projects"


def frame_name(index: int, suffix: str = ".png") -> str:
    return f"{index:05d}{suffix}"


@dataclass
class ObjectInfo:
    id: int
    name: str


JPEG_QUALITY = 95  # of the cached working-size frames


class ProxyFrames:
    """The source's frames at working size, cached as JPEG on disk and in a small LRU.

    A FrameSequence: ``len`` and ``[i]`` -> RGB uint8 at ``size``. The first read of
    a frame decodes the source (sequential reads are cheap) and writes the cache.
    """

    def __init__(self, project: "Project", memory_frames: int = 24):
        self._project = project
        self._dir = project.path / "proxy"
        self._dir.mkdir(exist_ok=True)
        self._lru = LRU(memory_frames)
        self.size = project.proxy_size

    def __len__(self) -> int:
        return self._project.num_frames

    def path(self, index: int) -> Path:
        return self._dir / frame_name(index, ".jpg")

    def __getitem__(self, index: int) -> np.ndarray:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(index)
        hit = self._lru.get(index)
        if hit is not None:
            return hit
        p = self.path(index)
        img = cv2.imread(str(p), cv2.IMREAD_COLOR) if p.exists() else None
        if img is not None and img.shape[1::-1] == self.size:
            rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        else:
            rgb = self._from_source(index)
        rgb.setflags(write=False)
        self._lru.put(index, rgb)
        return rgb

    def _from_source(self, index: int) -> np.ndarray:
        full = self._project.source()[index]
        rgb = to_working_size(full, self.size)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise OSError(f"could not encode frame {index} as JPEG")
        with atomic_path(self.path(index)) as tmp:
            Path(tmp).write_bytes(jpeg.tobytes())
        # the pixels the cache gives back from now on, so that a frame reads the same before and after
        # it is cached (a click gives the same mask in this process and after a restart)
        return cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def fill_cache(self):
        """Decode the whole source once, in order; yields (done, total) for progress."""
        n = len(self)
        for i in range(n):
            if not self.path(i).exists():
                self[i]
            yield i + 1, n


class MaskFrames:
    """Label maps of every frame at working size; frames never tracked read as zeros."""

    def __init__(self, project: "Project"):
        self._project = project

    def __len__(self) -> int:
        return self._project.num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        m = self._project.mask(int(index))
        if m is None:
            w, h = self._project.proxy_size
            return np.zeros((h, w), np.uint8)
        return m


class SharedJson:
    """A JSON file that other processes change: the copy in memory follows the file on disk.

    :meth:`get` rereads the file when its inode, size or modification time
    differ from the copy's (an atomic rename always brings a new inode), and
    :meth:`save` writes atomically. When the file is missing, ``get`` answers a
    copy of ``default``, or the last copy read when ``default`` is None. The
    caller serialises edits (the project's lock); reads need no lock.
    """

    def __init__(self, path: Path, default: dict | None = None, data: dict | None = None):
        self.path = path
        self._default = default
        self._data = data
        self._stamp: tuple | None = None

    def get(self) -> dict:
        try:
            stamp = _stamp(os.stat(self.path))
        except FileNotFoundError:
            stamp = _GONE
        if self._data is None or stamp != self._stamp:
            self.reload()
        return self._data

    def reload(self) -> dict:
        """Read the file now, whatever its stamp."""
        try:
            with open(self.path) as f:
                stamp = _stamp(os.fstat(f.fileno()))  # the stamp of the very file read
                self._data = json.load(f)
                self._stamp = stamp
        except FileNotFoundError:
            if self._default is not None or self._data is None:
                self._data = copy.deepcopy(self._default) if self._default is not None else {}
            self._stamp = _GONE
        return self._data

    def save(self) -> None:
        write_json(self.path, self._data)
        self._stamp = _stamp(os.stat(self.path))


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


_GONE = ()  # the stamp of a file that is not there


class Project:
    """One clip's editing session on disk. Open with :meth:`create` or :meth:`open`.

    Edits are transactions under the folder's lock, and reads follow the files
    on disk (see the module's docstring), so any number of ``Project`` objects,
    in any processes, may have the same folder open.
    """

    def __init__(self, path: Path, meta: dict):
        self.path = Path(path)
        self._facts = copy.deepcopy(meta)  # the source, its probe and the working size: fixed at creation
        self._meta_file = SharedJson(self.path / "project.json", data=meta)
        self._prompts_file = SharedJson(self.path / "prompts.json", default={"frames": {}})
        self._lock = FileLock(self.path / LOCK_NAME)
        self._source: VideoSource | None = None
        self._frames: ProxyFrames | None = None

    # -- opening ------------------------------------------------------------
    @classmethod
    def create(cls, source: str | os.PathLike, root: str | os.PathLike | None = None,
               name: str | None = None, proxy_longest: int | None = DEFAULT_PROXY_LONGEST,
               path: str | os.PathLike | None = None) -> "Project":
        """Open the project for ``source``, creating it when new (idempotent).

        ``path`` places the project folder exactly; otherwise it goes under ``root``
        (default :func:`default_root`) named after the clip.
        """
        src = Path(source).resolve()
        with open_source(src) as video:
            probe = video.probe
        if path is None:
            root = Path(root) if root else default_root()
            name = name or _default_name(src)
            path = root / name
        path = Path(path)
        if (path / "project.json").exists():
            return cls.open(path)
        path.mkdir(parents=True, exist_ok=True)
        w, h = proxy_size(probe.width, probe.height, proxy_longest)
        meta = {
            "version": FORMAT_VERSION,
            "name": path.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "source": str(src),
            "probe": probe.to_dict(),
            "proxy": {"longest": proxy_longest, "width": w, "height": h},
            "objects": [],
        }
        write_json(path / "project.json", meta)
        return cls(path, meta)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Project":
        path = Path(path)
        meta = read_json(path / "project.json")
        if meta is None:
            raise TamError(f"{path} is not a project (no project.json)")
        if meta.get("version", 0) > FORMAT_VERSION:
            raise TamError(f"{path} was written by a newer version of this program")
        return cls(path, meta)

    # -- facts --------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._facts["name"]

    @property
    def probe(self) -> Probe:
        return Probe.from_dict(self._facts["probe"])

    @property
    def source_path(self) -> Path:
        return Path(self._facts["source"])

    @property
    def num_frames(self) -> int:
        return int(self._facts["probe"]["num_frames"])

    @property
    def source_size(self) -> tuple[int, int]:
        return int(self._facts["probe"]["width"]), int(self._facts["probe"]["height"])

    @property
    def proxy_size(self) -> tuple[int, int]:
        return int(self._facts["proxy"]["width"]), int(self._facts["proxy"]["height"])

    @property
    def proxy_scale(self) -> tuple[float, float]:
        """(sx, sy): working-frame pixels per source pixel, horizontally and vertically."""
        (pw, ph), (sw, sh) = self.proxy_size, self.source_size
        return pw / sw, ph / sh

    def source(self) -> VideoSource:
        if self._source is None:
            if not self.source_path.exists():
                raise TamError(f"the project's source is gone: {self.source_path}")
            self._source = open_source(self.source_path)
        return self._source

    @property
    def frames(self) -> ProxyFrames:
        if self._frames is None:
            self._frames = ProxyFrames(self)
        return self._frames

    @property
    def masks(self) -> MaskFrames:
        return MaskFrames(self)

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None

    # -- the files on disk -----------------------------------------------------
    @property
    def _meta(self) -> dict:
        """project.json as it is on disk now."""
        return self._meta_file.get()

    @property
    def _prompts(self) -> dict:
        """prompts.json as it is on disk now."""
        return self._prompts_file.get()

    @contextmanager
    def _edit(self):
        """One read-modify-write of the folder: hold its lock and start from the files on disk.

        The body changes ``_meta`` / ``_prompts`` and saves what it changed; when it
        raises, its unsaved changes are dropped. An edit inside an edit joins it.
        """
        with self._lock:
            if self._lock.depth == 1:
                self._reload()
            try:
                yield
            except BaseException:
                self._reload()
                raise

    def _reload(self) -> None:
        self._meta_file.reload()
        self._prompts_file.reload()

    # -- shots ---------------------------------------------------------------
    @property
    def cuts_known(self) -> bool:
        return self._meta.get("shots", {}).get("detector") == shotcuts.DETECTOR

    def find_cuts(self) -> Iterator[tuple[int, int]]:
        """Detect the shot cuts on the working frames (filling their cache) and record them;
        yields (done, total). Does nothing when they are known."""
        n = self.num_frames
        if not self.cuts_known:
            finder = shotcuts.CutFinder(self.probe.fps)
            for i in range(n):
                finder.add(self.frames[i])
                yield i + 1, n
            cuts = finder.cuts()
            with self._edit():
                self._meta["shots"] = {"detector": shotcuts.DETECTOR, "cuts": cuts}
                self._save_meta()
        else:
            yield n, n

    def cuts(self) -> list[int]:
        """First frames of the shots after the first (detected on first use, then cached)."""
        if not self.cuts_known:
            for _ in self.find_cuts():
                pass
        return list(self._meta["shots"]["cuts"])

    # -- objects ------------------------------------------------------------
    @property
    def objects(self) -> list[ObjectInfo]:
        return [ObjectInfo(**o) for o in self._meta["objects"]]

    def add_object(self, name: str | None = None, object_id: int | None = None) -> int:
        """Add an object (the lowest free id unless ``object_id`` is given); returns its id.

        An ``object_id`` already in the project is returned as it is.
        """
        with self._edit():
            used = {o.id for o in self.objects}
            if object_id is None:
                object_id = next(i for i in range(1, 256) if i not in used) if len(used) < 255 else None
                if object_id is None:
                    raise TamError("a project holds at most 255 objects")
            elif object_id in used:
                return object_id
            if not 1 <= object_id <= 255:
                raise TamError("object ids lie in 1..255")
            self._meta["objects"].append(asdict(ObjectInfo(object_id, name or f"object {object_id}")))
            self._save_meta()
        return object_id

    def rename_object(self, object_id: int, name: str) -> None:
        with self._edit():
            for o in self._meta["objects"]:
                if o["id"] == object_id:
                    o["name"] = name
            self._save_meta()

    def delete_object(self, object_id: int) -> None:
        """Forget an object: its clicks, and its pixels in every keyframe and mask."""
        with self._edit():
            self._meta["objects"] = [o for o in self._meta["objects"] if o["id"] != object_id]
            self._save_meta()
            frames = self._prompts["frames"]
            for frame in list(frames):
                frames[frame].pop(str(object_id), None)
                if not frames[frame]:
                    del frames[frame]
            self._save_prompts()
            for folder in ("keyframes", "masks"):
                self._erase_label(self.path / folder, object_id, drop_empty=folder == "keyframes")

    @staticmethod
    def _erase_label(folder: Path, object_id: int, drop_empty: bool) -> None:
        """Set ``object_id``'s pixels to 0 in every label map of ``folder``; remove maps left empty
        when ``drop_empty``."""
        for p in sorted(folder.glob("[0-9]*.png")) if folder.exists() else ():
            labels = maskio.load_labels(p)
            if (labels == object_id).any():
                labels[labels == object_id] = 0
                if drop_empty and not labels.any():
                    p.unlink()
                else:
                    maskio.save_labels(p, labels)

    def _require_object(self, object_id: int) -> None:
        if object_id not in {o.id for o in self.objects}:
            raise PromptError(f"no object {object_id} in this project")

    # -- prompts (source pixels) ----------------------------------------------
    def _check_frame(self, frame: int) -> None:
        if not 0 <= frame < self.num_frames:
            raise PromptError(f"frame {frame} is outside 0..{self.num_frames - 1}")

    def prompt(self, frame: int, object_id: int) -> dict:
        """``{"clicks": [[x, y, label], ...], "box": [x0, y0, x1, y1] | None, "strokes": [...]}``.

        ``strokes`` lists ``{"points": [[x, y], ...], "label": 1 add | 0 erase, "radius": r}``
        in the order drawn. The mask is replayed from the prompt as the segmenter's
        answer to the clicks and the box, then each stroke in order
        (:func:`tam.segment.strokes.apply_strokes`).
        """
        e = self._entry(frame, object_id)
        return {"clicks": [list(c) for c in e["clicks"]], "box": e["boxes"][-1] if e["boxes"] else None,
                "strokes": [_copy_stroke(s) for s in e["strokes"]]}

    def prompted(self) -> dict[int, list[int]]:
        """Frames with prompts -> object ids prompted there."""
        return {int(f): sorted(int(o) for o in objs) for f, objs in self._prompts["frames"].items()}

    def set_prompt(self, frame: int, object_id: int, clicks, box=None, strokes=()) -> None:
        """Replace the prompt: undo then goes back through clicks, the box and the strokes, last first."""
        self._check_frame(frame)
        clean = [self._clean_click(c) for c in clicks]
        boxes = [] if box is None else [self._clean_box(box)]
        lines = [self._clean_stroke(s) for s in strokes]
        steps = _steps_in_list_order(clean, boxes, lines)
        with self._edit():
            self._require_object(object_id)
            entry = {"clicks": clean, "boxes": boxes, "strokes": lines, "steps": steps}
            self._put_entry(frame, object_id, entry)

    def add_click(self, frame: int, object_id: int, x: float, y: float, label: int = 1) -> None:
        self._add_step(frame, object_id, "click", [x, y, label])

    def add_box(self, frame: int, object_id: int, box) -> None:
        """Draw a box ``[x0, y0, x1, y1]`` (source pixels); it replaces the previous one until undone."""
        self._add_step(frame, object_id, "box", box)

    def add_stroke(self, frame: int, object_id: int, points, label: int = 1, radius: float = 8.0) -> None:
        """Add a brush stroke: ``points`` [[x, y], ...] in source pixels, label 1 add / 0 erase, radius in px."""
        self._add_step(frame, object_id, "stroke", {"points": points, "label": label, "radius": radius})

    def undo(self, frame: int, object_id: int) -> str | None:
        """Take back the last click, box or stroke on disk; returns its kind (None when there was none)."""
        with self._edit():
            e = self._entry(frame, object_id)
            if not e["steps"]:
                return None
            kind = e["steps"].pop()
            e[_STEP_LISTS[kind]].pop()
            self._put_entry(frame, object_id, e)
        return kind

    def undo_click(self, frame: int, object_id: int) -> None:
        """Take back the last click on disk (boxes and strokes stay)."""
        with self._edit():
            e = self._entry(frame, object_id)
            if not e["clicks"]:
                return
            e["clicks"].pop()
            last = len(e["steps"]) - 1 - e["steps"][::-1].index("click")
            del e["steps"][last]
            self._put_entry(frame, object_id, e)

    def clear_prompt(self, frame: int, object_id: int) -> None:
        self.set_prompt(frame, object_id, [], None)

    def _entry(self, frame: int, object_id: int) -> dict:
        """The stored prompt as lists of clicks, boxes, strokes and the steps that added them.

        Files written before boxes and strokes had steps (``{"clicks", "box"}``),
        or whose steps do not match their lists, read as the clicks in order, then
        the boxes, then the strokes.
        """
        raw = self._prompts["frames"].get(str(frame), {}).get(str(object_id)) or {}
        clicks = [list(c) for c in raw.get("clicks", [])]
        if "boxes" in raw:
            boxes = [list(b) for b in raw["boxes"]]
        else:
            boxes = [] if raw.get("box") is None else [list(raw["box"])]
        strokes = [_copy_stroke(s) for s in raw.get("strokes", [])]
        lists = {"clicks": clicks, "boxes": boxes, "strokes": strokes}
        steps = list(raw.get("steps") or [])
        if any(steps.count(kind) != len(lists[name]) for kind, name in _STEP_LISTS.items()):
            steps = _steps_in_list_order(clicks, boxes, strokes)
        return {"clicks": clicks, "boxes": boxes, "strokes": strokes, "steps": steps}

    def _add_step(self, frame: int, object_id: int, kind: str, value) -> None:
        self._check_frame(frame)
        clean = {"click": self._clean_click, "box": self._clean_box, "stroke": self._clean_stroke}[kind](value)
        with self._edit():
            self._require_object(object_id)
            e = self._entry(frame, object_id)
            e[_STEP_LISTS[kind]].append(clean)
            e["steps"].append(kind)
            self._put_entry(frame, object_id, e)

    def _put_entry(self, frame: int, object_id: int, e: dict) -> None:
        """Store one prompt and save prompts.json (inside an edit)."""
        frames = self._prompts["frames"]
        if e["steps"]:
            # "box" (the box in force) keeps the file readable by code that knows only clicks and a box
            frames.setdefault(str(frame), {})[str(object_id)] = {
                "clicks": e["clicks"], "box": e["boxes"][-1] if e["boxes"] else None,
                "boxes": e["boxes"], "strokes": e["strokes"], "steps": e["steps"]}
        else:
            frames.get(str(frame), {}).pop(str(object_id), None)
            if str(frame) in frames and not frames[str(frame)]:
                del frames[str(frame)]
        self._save_prompts()

    def _clean_click(self, c) -> list:
        x, y, lab = float(c[0]), float(c[1]), int(c[2]) if len(c) > 2 else 1
        self._check_point(x, y, "click")
        if lab not in (0, 1):
            raise PromptError(f"click label must be 0 or 1, got {lab}")
        return [x, y, lab]

    def _clean_box(self, box) -> list:
        try:
            x0, y0, x1, y1 = (float(v) for v in box)
        except (TypeError, ValueError):
            raise PromptError(f"a box is four numbers x0, y0, x1, y1, got {box!r}") from None
        w, h = self.source_size
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise PromptError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty or outside the {w}x{h} frame")
        return [x0, y0, x1, y1]

    def _clean_stroke(self, stroke) -> dict:
        try:
            points = [[float(p[0]), float(p[1])] for p in stroke["points"]]
            label, radius = int(stroke.get("label", 1)), float(stroke["radius"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            raise PromptError(f"a stroke needs points [[x, y], ...] and a radius, got {stroke!r}") from None
        if not points:
            raise PromptError("a stroke needs at least one point")
        for x, y in points:
            self._check_point(x, y, "stroke point")
        if label not in (0, 1):
            raise PromptError(f"stroke label must be 0 (erase) or 1 (add), got {label}")
        if not radius > 0:
            raise PromptError(f"stroke radius must be positive, got {radius:g}")
        return {"points": points, "label": label, "radius": radius}

    def _check_point(self, x: float, y: float, what: str) -> None:
        w, h = self.source_size
        if not (0 <= x < w and 0 <= y < h):
            raise PromptError(f"{what} ({x:g}, {y:g}) lies outside the {w}x{h} frame")

    # -- masks (proxy pixels) ------------------------------------------------
    def keyframe_indices(self) -> list[int]:
        d = self.path / "keyframes"
        return sorted(int(p.stem) for p in d.glob("[0-9]*.png")) if d.exists() else []

    def keyframes(self) -> dict[int, np.ndarray]:
        return {i: maskio.load_labels(self.path / "keyframes" / frame_name(i)) for i in self.keyframe_indices()}

    def set_keyframe(self, frame: int, labels: np.ndarray) -> None:
        """Fix ``labels`` (proxy size) as the user's truth on ``frame``; also its mask."""
        self._check_frame(frame)
        labels = self._check_labels(labels)
        with self._edit():
            for i in np.unique(labels):
                if i:
                    self.add_object(object_id=int(i))
            (self.path / "keyframes").mkdir(exist_ok=True)
            if labels.any():
                maskio.save_labels(self.path / "keyframes" / frame_name(frame), labels)
            else:
                (self.path / "keyframes" / frame_name(frame)).unlink(missing_ok=True)
            self.save_mask(frame, labels)

    def remove_keyframe(self, frame: int) -> None:
        with self._edit():
            (self.path / "keyframes" / frame_name(frame)).unlink(missing_ok=True)

    def mask(self, frame: int) -> np.ndarray | None:
        p = self.path / "masks" / frame_name(frame)
        return maskio.load_labels(p) if p.exists() else None

    def save_mask(self, frame: int, labels: np.ndarray) -> None:
        self._check_frame(frame)
        labels = self._check_labels(labels)
        with self._lock:  # not while an object's pixels are being erased from every mask
            (self.path / "masks").mkdir(exist_ok=True)
            maskio.save_labels(self.path / "masks" / frame_name(frame), labels)

    def tracked_frames(self) -> list[int]:
        d = self.path / "masks"
        return sorted(int(p.stem) for p in d.glob("[0-9]*.png")) if d.exists() else []

    def clear_masks(self) -> None:
        with self._lock:
            shutil.rmtree(self.path / "masks", ignore_errors=True)

    def _check_labels(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels)
        w, h = self.proxy_size
        if labels.shape != (h, w):
            raise MaskError(f"mask is {labels.shape[1] if labels.ndim > 1 else '?'}x{labels.shape[0]}, "
                            f"the working frames are {w}x{h}")
        return labels.astype(np.uint8)

    def to_proxy_labels(self, labels: np.ndarray) -> np.ndarray:
        """A label map at source size brought to working size."""
        maskio.check_size(labels, *self.source_size)
        return maskio.resize_labels(labels, self.proxy_size)

    def to_source_labels(self, labels: np.ndarray) -> np.ndarray:
        return maskio.resize_labels(labels, self.source_size)

    # -- persistence -----------------------------------------------------------
    def _save_meta(self) -> None:
        """Write project.json (inside an edit)."""
        self._meta_file.save()

    def _save_prompts(self) -> None:
        """Write prompts.json (inside an edit)."""
        self._prompts_file.save()

    def renders_dir(self) -> Path:
        d = self.path / "renders"
        d.mkdir(exist_ok=True)
        return d

    def summary(self) -> str:
        objs = ", ".join(f"{o.id}:{o.name}" for o in self.objects) or "none"
        return (f"{self.name}: {self.source_path}\n  {self.probe.summary()}\n"
                f"  working size {self.proxy_size[0]}x{self.proxy_size[1]}; objects {objs}; "
                f"keyframes {self.keyframe_indices()}; tracked frames {len(self.tracked_frames())}"
                f"/{self.num_frames}" + self._shots_summary())

    def _shots_summary(self) -> str:
        if not self.cuts_known:
            return ""
        lines = shotcuts.describe(self.num_frames, self._meta["shots"]["cuts"], self.probe.fps)
        return "".join(f"\n  {line}" for line in lines)


_STEP_LISTS = {"click": "clicks", "box": "boxes", "stroke": "strokes"}


def _steps_in_list_order(clicks: list, boxes: list, strokes: list) -> list[str]:
    """The steps of a prompt whose order is not recorded: its clicks, then its boxes, then its strokes."""
    return ["click"] * len(clicks) + ["box"] * len(boxes) + ["stroke"] * len(strokes)


def _copy_stroke(s: dict) -> dict:
    return {"points": [list(p) for p in s["points"]], "label": s["label"], "radius": s["radius"]}


def _default_name(src: Path) -> str:
    digest = content_digest(str(src))[:8]
    return f"{src.stem}-{digest}"


def project_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder of the project called ``name``: a direct child of the projects folder ``root``.

    Raises TamError for anything else (empty, ``.``, ``..``, a path with separators), so a name taken from
    a URL or a command line can never reach the projects folder itself, its parent, or anywhere else."""
    if not name or name in (".", "..") or Path(name).name != name or "/" in name or "\\" in name:
        raise TamError(f"not a project name: {name!r}")
    return (Path(root) if root else default_root()) / name


def list_projects(root: str | os.PathLike | None = None) -> list[Path]:
    root = Path(root) if root else default_root()
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if (p / "project.json").exists())


def delete_project(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    p = Path(name_or_path)
    if not (p / "project.json").exists():
        p = project_path(str(name_or_path), root)
    if not (p / "project.json").exists():
        raise TamError(f"no project named {name_or_path}")
    shutil.rmtree(p)
    return p
