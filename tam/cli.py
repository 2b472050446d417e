"""Command line: a thin layer over :mod:`tam.studio`, the same core the UI drives.

Every command prints a one-line ``error: ...`` and exits 1 on bad input; long
commands show a progress bar on stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from tam.errors import PromptError, TamError

STROKE_RADIUS = 8.0  # brush radius in source pixels for a stroke in a clicks file that gives none


def _progress(steps, desc: str, quiet: bool = False, then: str | None = None):
    """Drive a ``(done, total)`` generator with a progress bar.

    A generator with two phases (a render fills the frames, then writes them)
    starts counting again from zero: that opens a second bar named ``then``.
    """
    from tqdm import tqdm

    bar = None
    try:
        for done, total in steps:
            if bar is not None and done < bar.n and then is not None:
                bar.close()
                bar, desc, then = None, then, None
            if bar is None:
                bar = tqdm(total=total, desc=desc, unit="frame", disable=quiet, file=sys.stderr,
                           dynamic_ncols=True, leave=False)
            bar.n = done
            bar.refresh()
    finally:
        if bar is not None:
            bar.close()


def _parse_point(text: str) -> tuple[float, float, int]:
    parts = text.split(",")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        x, y = float(parts[0]), float(parts[1])
        label = int(parts[2]) if len(parts) == 3 else 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y or X,Y,L, got {text!r}") from None
    if label not in (0, 1):
        raise argparse.ArgumentTypeError(f"label must be 1 (positive) or 0 (negative), got {label}")
    return x, y, label


def _parse_click(text: str) -> tuple[float, float, int, int]:
    """X,Y[,L][@FRAME]"""
    point, _, frame = text.partition("@")
    x, y, label = _parse_point(point)
    try:
        f = int(frame) if frame else 0
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y[,L][@FRAME], got {text!r}") from None
    return x, y, label, f


def _parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        vals = tuple(float(v) for v in text.split(","))
        if len(vals) != 4:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1, got {text!r}") from None
    return vals


def _backend_help(registry) -> str:
    lines = []
    for name in registry.names():
        e = registry.entry(name)
        lines.append(f"{name}{' (default)' if name == registry.default else ''}: {e.summary}")
    return "; ".join(lines)


def _spec(args, kind: str, name: str | None = None):
    """The :class:`~tam.runspec.BackendSpec` of ``kind`` chosen on the command line."""
    from tam.runspec import BackendSpec

    checkpoint = getattr(args, f"{kind}_checkpoint", None) or (
        getattr(args, "checkpoint", None) if kind == getattr(args, "checkpoint_for", None) else None)
    opts = {}
    if kind == "inpainter":
        for key in ("model_dir", "prompt", "seed", "steps"):
            if getattr(args, key, None) is not None:
                opts[key] = getattr(args, key)
    return BackendSpec.of(kind, name, opts, getattr(args, "device", None), checkpoint)


# -- commands -------------------------------------------------------------------

def cmd_info(args) -> int:
    from tam.mediameta import folder_meta, read_meta
    from tam.shots import describe, detect_cuts
    from tam.video import open_source, proxy_size

    with open_source(args.source) as src:
        p = src.probe
        cuts = [] if args.no_shots else detect_cuts(_detect_frames(src, proxy_size), p.fps)
    meta = folder_meta(p.fps) if p.kind == "folder" else read_meta(args.source)
    if args.json:
        d = p.to_dict()
        d.pop("timestamps")
        t = meta.tags
        d.update(rate=f"{meta.rate.numerator}/{meta.rate.denominator}", timecode=meta.timecode,
                 color_primaries=t.primaries, color_trc=t.transfer, colorspace=t.matrix, color_range=t.range,
                 audio_streams=[a.codec for a in meta.audio])
        if not args.no_shots:
            d["cuts"] = cuts
        print(json.dumps(d, indent=1))
    else:
        print(f"{p.path}\n  {p.summary()}\n  {meta.summary()}")
        if not args.no_shots:
            lines = describe(p.num_frames, cuts, p.fps)
            print(f"  {len(cuts) + 1} shot(s)" + "".join(f"\n    {line}" for line in lines))
    return 0


def _detect_frames(src, proxy_size):
    """The source's frames at working size, in order, for the cut detector."""
    from tam.video import to_working_size

    size = proxy_size(*src.size)
    return (to_working_size(rgb, size) for rgb in src)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise TamError(f"cannot read image {path.name}: {e}") from None


def _segment_frame(segmenter, path: Path, frame: int | None):
    """Prepare SOURCE for ``segmenter``: an image alone, or frame ``frame`` of a video or a folder of frames
    with its neighbouring frames; returns (the frame, its image state)."""
    from tam.datasets import IMAGE_SUFFIXES
    from tam.segment.video import prepare_video_frame
    from tam.video import open_source

    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        if frame not in (None, 0):
            raise PromptError(f"--frame {frame}: {path.name} is a single image (give a video or a folder)")
        image = _read_image(path)
        return image, segmenter.set_image(image)
    frame = 0 if frame is None else frame
    with open_source(path) as src:
        if not 0 <= frame < len(src):
            raise PromptError(f"--frame {frame} is outside 0..{len(src) - 1}")
        return prepare_video_frame(segmenter, src, frame)


def cmd_segment(args) -> int:
    from tam import masks as maskio
    from tam.fileio import check_writable_dir
    from tam.segment import Prompt

    path = Path(args.source)
    if not path.exists():
        raise TamError(f"no such image, video or folder: {path}")
    out = Path(args.out)
    check_writable_dir(out.parent)
    prompt = Prompt.from_clicks(args.point or [], args.box)
    segmenter = _spec(args, "segmenter", args.backend).create()
    image, state = _segment_frame(segmenter, path, args.frame)
    h, w = image.shape[:2]
    prompt.validate(w, h)
    result = segmenter.predict(state, prompt)
    maskio.save_matte(out, result.mask)
    print(f"{out}: {int(result.mask.sum())} pixels, score {result.score:.3f} ({segmenter.name})")
    return 0


@contextlib.contextmanager
def _studio(source, args, *specs):
    """A Studio over ``source`` with the backends of ``specs``: in ``--project`` when given, else in a
    temporary folder."""
    from inpaint.render import HoleConfig
    from tam.project import Project
    from tam.studio import Studio, StudioConfig

    kwargs = {}
    if getattr(args, "dilate", None) is not None:
        kwargs["holes"] = HoleConfig(dilate=args.dilate, feather=args.feather)
    if hasattr(args, "workers"):
        kwargs["executor"] = executor_spec(args)
        kwargs["chunk"] = args.chunk
    cfg = StudioConfig.from_specs(**{s.kind: s for s in specs}, **kwargs)
    with contextlib.ExitStack() as stack:
        if getattr(args, "project", None):
            project = Project.create(source, path=args.project, proxy_longest=args.proxy)
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="tam-"))
            project = Project.create(source, path=Path(tmp) / "project", proxy_longest=args.proxy)
        stack.callback(project.close)
        yield Studio(project, cfg)


def executor_spec(args):
    """The executor chosen with ``--workers N`` / ``--ray [ADDRESS]`` (default: a pool on every core)."""
    from tam.jobs.executors import ExecutorSpec

    if getattr(args, "ray", None) is not None:
        return ExecutorSpec("ray", workers=args.workers or 0, address=args.ray or None)
    return ExecutorSpec("pool", workers=args.workers or 0)


def add_executor_options(p) -> None:
    """``--workers N``, ``--ray [ADDRESS]`` and ``--chunk N`` on a command that runs jobs as tasks."""
    g = p.add_argument_group("parallel runs")
    g.add_argument("--workers", type=int, default=0, metavar="N",
                   help="worker processes (default: every core); with --ray, the CPUs of a local Ray")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the tasks on Ray: a cluster at ADDRESS (e.g. ray://head:10001 or head:6379), "
                        "or a local Ray when no address is given")
    g.add_argument("--chunk", type=int, default=60, metavar="N",
                   help="frames per removal task (default 60)")


def _check_out_dir(out: Path) -> None:
    from tam.fileio import check_writable_dir

    check_writable_dir(out.parent)


def _check_media_out(out: Path, codec: str | None) -> None:
    """The output's folder is writable and ``codec`` writes ``out`` (checked before any long work)."""
    from tam.codecs import resolve

    _check_out_dir(out)
    resolve(out, codec)


def _read_clicks_file(path: str) -> list[dict]:
    """A JSON list of prompts, replayed in order (frame 0, object 1, label 1 by default):

    a click ``{"frame", "object", "x", "y", "label"}``, a box ``{"frame", "object", "box": [x0, y0, x1, y1]}``
    or a brush stroke ``{"frame", "object", "points": [[x, y], ...], "label": 1 add | 0 erase, "radius": r}``,
    all in source pixels.
    """
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise TamError(f"no such clicks file: {path}") from None
    except json.JSONDecodeError as e:
        raise TamError(f"{path} is not valid JSON: {e}") from None
    if isinstance(data, dict) and "clicks" in data:
        data = data["clicks"]
    if not isinstance(data, list) or not data:
        raise PromptError(f"{path}: expected a non-empty list of clicks")
    return [_read_prompt_item(path, c) for c in data]


def _read_prompt_item(path: str, c) -> dict:
    """One entry of a clicks file as a click, a box or a stroke (see :func:`_read_clicks_file`)."""
    try:
        item = {"frame": int(c.get("frame", 0)), "object": int(c.get("object", 1))}
        if "points" in c:
            return {**item, "stroke": {"points": c["points"], "label": int(c.get("label", 1)),
                                       "radius": float(c.get("radius", STROKE_RADIUS))}}
        if "box" in c:
            return {**item, "box": c["box"]}
        return {**item, "x": float(c["x"]), "y": float(c["y"]), "label": int(c.get("label", 1))}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise PromptError(f"{path}: each click needs numeric x and y (a box needs \"box\", a stroke "
                          f"\"points\"), got {c!r}") from None


def _apply_clicks(studio, clicks: list[dict]) -> None:
    """Replay clicks, boxes and strokes (as read by :func:`_read_clicks_file`) and segment each prompt."""
    p = studio.project
    for c in clicks:
        p.add_object(object_id=c["object"])
        if "stroke" in c:
            p.add_stroke(c["frame"], c["object"], **c["stroke"])
        elif "box" in c:
            p.add_box(c["frame"], c["object"], c["box"])
        else:
            p.add_click(c["frame"], c["object"], c["x"], c["y"], c["label"])
    for frame, objs in p.prompted().items():
        for oid in objs:
            result = studio.segment(frame, oid)
            if result is None or not result.mask.any():
                raise PromptError(f"the clicks for object {oid} on frame {frame} give an empty mask")


def cmd_track(args) -> int:
    from tam import masks as maskio

    out = Path(args.out)
    _check_out_dir(out)
    if (args.init_mask is None) == (args.clicks is None):
        raise TamError("give either --init-mask MASK.png or --clicks CLICKS.json")
    with _studio(args.source, args, _spec(args, "tracker", args.backend),
                 _spec(args, "segmenter", args.segmenter)) as studio:
        p = studio.project
        if args.init_mask is not None:
            if not 0 <= args.init_frame < p.num_frames:
                raise PromptError(f"--init-frame {args.init_frame} is outside 0..{p.num_frames - 1}")
            labels = maskio.load_labels(args.init_mask)
            maskio.check_size(labels, *p.source_size, what=f"mask {Path(args.init_mask).name}")
            studio.add_mask(args.init_frame, labels)
        else:
            _apply_clicks(studio, _read_clicks_file(args.clicks))
        _progress(p.find_cuts(), "find shot cuts", args.quiet)
        _progress(studio.track(direction=args.direction, refine=args.refine), "track", args.quiet)
        _say_cut_stops(studio.cut_stops(args.direction))
        _progress(studio.export_masks(out), "write masks", args.quiet)
    print(f"{out}: {p.num_frames} masks")
    return 0


def _say_cut_stops(stops: list[int]) -> None:
    if stops:
        print(f"tracking stopped at the shot cut before frame {', '.join(map(str, stops))}: a mask is never "
              "carried into another shot; add clicks there if the object is in that shot too", file=sys.stderr)


def cmd_remove(args) -> int:
    from tam.studio import write_source_masks

    out = Path(args.out)
    _check_media_out(out, args.codec)
    with _studio(args.source, args, _spec(args, "inpainter", args.backend)) as studio:
        write_source_masks(studio, args.masks)
        _progress(studio.render(out, codec=args.codec), "remove", args.quiet, then="write")
    print(f"{out}: {studio.project.num_frames} frames")
    return 0


def cmd_run(args) -> int:
    out = Path(args.out)
    _check_media_out(out, args.codec)
    if args.matte_video and Path(args.matte_video).suffix.lower() not in (".mov", ".mp4"):
        raise TamError(f"--matte-video {Path(args.matte_video).name}: use a .mov or .mp4 name")
    clicks = [{"frame": f, "object": 1, "x": x, "y": y, "label": lab} for x, y, lab, f in args.click or []]
    if args.clicks:
        clicks += _read_clicks_file(args.clicks)
    if not clicks:
        raise PromptError("give at least one --click X,Y[,L][@FRAME]")
    with _studio(args.video, args, _spec(args, "segmenter", args.segmenter), _spec(args, "tracker", args.tracker),
                 _spec(args, "inpainter", args.inpainter)) as studio:
        _apply_clicks(studio, clicks)
        _progress(studio.project.find_cuts(), "find shot cuts", args.quiet)
        _progress(studio.track(refine=args.refine), "track", args.quiet)
        _say_cut_stops(studio.cut_stops())
        if args.masks_out:
            _progress(studio.export_masks(args.masks_out), "write masks", args.quiet)
        if args.mattes_out:
            _progress(studio.export_mattes(args.mattes_out, depth=16), "write mattes", args.quiet)
        if args.matte_video:
            _progress(studio.export_matte_video(args.matte_video), "write matte video", args.quiet)
        _progress(studio.render(out, codec=args.codec), "remove", args.quiet, then="write")
    print(f"{out}: {studio.project.num_frames} frames, objects removed")
    return 0


def cmd_project(args) -> int:
    from tam.project import Project, default_root, delete_project, list_projects

    root = Path(args.root) if args.root else default_root()
    if args.action == "list":
        paths = list_projects(root)
        if not paths:
            print(f"no projects in {root}")
        for path in paths:
            proj = Project.open(path)
            print(f"{proj.name}\t{proj.num_frames} frames\t{len(proj.tracked_frames())} tracked\t{proj.source_path}")
        return 0
    if not args.name:
        raise TamError(f"project {args.action} needs a project name")
    if args.action == "show":
        path = Path(args.name) if (Path(args.name) / "project.json").exists() else root / args.name
        print(Project.open(path).summary())
    elif args.action == "delete":
        print(f"deleted {delete_project(args.name, root)}")
    return 0


def _delegate(module: str):
    """Subcommands implemented in their own module: add_arguments(parser) and main(args)."""
    def add(parser):
        importlib.import_module(module).add_arguments(parser)

    def run(args):
        return importlib.import_module(module).main(args)
    return add, run


DELEGATED = {
    "weights": ("tam.weights", "list, download and verify model checkpoints"),
    "eval-clicks": ("tam.segment.evaluate", "interactive segmentation quality with simulated clicks"),
    "eval-vos": ("tam.track.evaluate", "video object segmentation quality (J&F)"),
    "eval-inpaint": ("inpaint.evaluate", "video completion quality (PSNR, SSIM, flicker)"),
    "batch": ("tam.jobs.batch", "remove objects from many clips listed in JOBS.json, resumable"),
}


def build_parser() -> argparse.ArgumentParser:
    from inpaint.base import INPAINTERS
    from inpaint.render import HoleConfig
    from tam.segment.base import SEGMENTERS
    from tam.track.base import TRACKERS
    from tam.video import DEFAULT_PROXY_LONGEST

    parser = argparse.ArgumentParser(
        prog="tam", description="Remove objects from videos: click, track, correct, inpaint, export.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p, proxy=True):
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        if proxy:
            p.add_argument("--proxy", type=int, default=DEFAULT_PROXY_LONGEST, metavar="PX",
                           help=f"working resolution: longest side in pixels (default {DEFAULT_PROXY_LONGEST}; "
                                "0 = source size)")
            p.add_argument("--project", metavar="DIR",
                           help="keep the work in this project folder (default: a temporary one)")

    def diffusion_opts(p):
        g = p.add_argument_group("diffusion inpainter")
        g.add_argument("--model-dir", metavar="DIR", help="local Stable Diffusion inpainting model "
                       "(diffusers format); default $TAM_INPAINT_MODEL")
        g.add_argument("--prompt", help="what to paint into never-seen regions")
        g.add_argument("--seed", type=int, help="random seed of the diffusion fills")
        g.add_argument("--steps", type=int, help="diffusion steps")

    def refine_opt(p):
        p.add_argument("--refine", action="store_true",
                       help="re-prompt the segmenter on frames where a tracked mask changes suddenly, and "
                            "track on from the refined mask; meant for a neural segmenter: with the classical one it "
                            "lowered accuracy on the benchmark")

    def codec_opt(p):
        from tam.codecs import CODECS

        p.add_argument("--codec", choices=list(CODECS), metavar="CODEC",
                       help="output codec: " + "; ".join(f"{c.name}: {c.summary}" for c in CODECS.values())
                            + ". Default from OUT: .mp4 h264, .mov prores, .mkv ffv1, a folder 8-bit PNGs. "
                            "Colour tags, start timecode, exact frame rate and timestamps and every audio "
                            "stream are kept")

    def hole_opts(p):
        p.add_argument("--dilate", type=int, default=HoleConfig.dilate, metavar="PX",
                       help=f"grow the masks by PX source pixels to take in edges and shadows "
                            f"(default {HoleConfig.dilate})")
        p.add_argument("--feather", type=int, default=HoleConfig.feather, metavar="PX",
                       help=f"soft edge width (default {HoleConfig.feather})")

    p = sub.add_parser("info", help="describe a video or image folder")
    p.add_argument("source")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-shots", action="store_true", help="skip the shot-cut detection (it reads every frame)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("segment", help="mask an object in one image or video frame from clicks",
                       description="Mask one object from clicks and/or a box; writes a 0/255 PNG. SOURCE is an "
                                   "image, a video or a folder of frames; with a video or a folder, frame N "
                                   "is segmented with the help of its neighbouring frames (their motion).")
    p.add_argument("source", metavar="SOURCE", help="an image, a video file or a folder of frames")
    p.add_argument("--frame", type=int, default=None, metavar="N",
                   help="with a video or a folder: the frame to segment (default 0)")
    p.add_argument("--point", type=_parse_point, action="append", metavar="X,Y[,L]",
                   help="a click; L=1 positive (default), 0 negative; repeat")
    p.add_argument("--box", type=_parse_box, metavar="X0,Y0,X1,Y1")
    p.add_argument("--out", required=True, metavar="MASK.png")
    p.add_argument("--backend", default="classical", help=_backend_help(SEGMENTERS))
    p.add_argument("--checkpoint", metavar="PATH", help="model checkpoint for a neural backend")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.set_defaults(func=cmd_segment, checkpoint_for="segmenter")

    p = sub.add_parser("track", help="carry masks through a video",
                       description="Track objects from a mask (or clicks) on one frame through every frame of "
                                   "SOURCE (a video or a folder of frames). DIR receives 00000.png... at the "
                                   "source size, pixel = object id.")
    p.add_argument("source")
    p.add_argument("--init-mask", metavar="MASK.png",
                   help="mask of the first annotated frame (0/255 = one object, id 1; palette PNG = ids)")
    p.add_argument("--init-frame", type=int, default=0, metavar="N")
    p.add_argument("--clicks", metavar="CLICKS.json",
                   help='JSON list of clicks {"frame": 0, "object": 1, "x": .., "y": .., "label": 1}, boxes '
                        '{"frame", "object", "box": [x0, y0, x1, y1]} and brush strokes {"frame", "object", '
                        '"points": [[x, y], ...], "label": 1 add / 0 erase, "radius": px}, replayed in order')
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--backend", default="classical", help=_backend_help(TRACKERS))
    p.add_argument("--segmenter", default="classical", help="segmenter for --clicks")
    p.add_argument("--checkpoint", metavar="PATH", help="model checkpoint for a neural tracker")
    p.add_argument("--segmenter-checkpoint", metavar="PATH", help="model checkpoint for a neural segmenter")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--direction", choices=("both", "forward", "backward"), default="both")
    refine_opt(p)
    common(p)
    add_executor_options(p)
    p.set_defaults(func=cmd_track, checkpoint_for="tracker")

    p = sub.add_parser("remove", help="remove masked objects from a video",
                       description="Inpaint the objects of the per-frame masks in DIR out of SOURCE. OUT ending "
                                   "in .mp4 is a video (audio kept); anything else a folder of PNG frames.")
    p.add_argument("source")
    p.add_argument("--masks", required=True, metavar="DIR", help="00000.png... at the source size, 0 = keep")
    p.add_argument("--out", required=True, metavar="OUT")
    p.add_argument("--backend", default="flow", help=_backend_help(INPAINTERS))
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    codec_opt(p)
    hole_opts(p)
    diffusion_opts(p)
    common(p)
    add_executor_options(p)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("run", help="the whole job: clicks to mask, track, remove, export",
                       description="Click an object, track it through VIDEO, remove it, write OUT.mp4 with the "
                                   "source audio. Defaults: the classical backends (no weights needed).")
    p.add_argument("video")
    p.add_argument("--click", type=_parse_click, action="append", metavar="X,Y[,L][@FRAME]",
                   help="a click in source pixels on FRAME (default 0); repeat")
    p.add_argument("--clicks", metavar="CLICKS.json", help="more clicks, as for track")
    p.add_argument("--out", required=True, metavar="OUT.mp4|.mov|.mkv|DIR")
    p.add_argument("--masks-out", metavar="DIR", help="also write the tracked masks here")
    p.add_argument("--mattes-out", metavar="DIR", help="also write per-object 16-bit PNG mattes here "
                   "(object_<id>/00000.png...)")
    p.add_argument("--matte-video", metavar="MATTE.mov|.mp4", help="also write the removal matte as a video: "
                   ".mov is ProRes 4444 with alpha, .mp4 white-on-black H.264")
    p.add_argument("--segmenter", default="classical", help=_backend_help(SEGMENTERS))
    p.add_argument("--tracker", default="classical", help=_backend_help(TRACKERS))
    p.add_argument("--inpainter", default="flow", help=_backend_help(INPAINTERS))
    p.add_argument("--segmenter-checkpoint", metavar="PATH", help="checkpoint for a neural segmenter")
    p.add_argument("--tracker-checkpoint", metavar="PATH", help="checkpoint for a neural tracker")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    refine_opt(p)
    codec_opt(p)
    hole_opts(p)
    diffusion_opts(p)
    common(p)
    add_executor_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("project", help="list, show or delete saved projects")
    p.add_argument("action", choices=("list", "show", "delete"))
    p.add_argument("name", nargs="?")
    p.add_argument("--root", help="projects folder (default $TAM_HOME/projects or ~/.local/share/tam/projects)")
    p.set_defaults(func=cmd_project)

    for name, (module, summary) in DELEGATED.items():
        add, run = _delegate(module)
        p = sub.add_parser(name, help=summary, description=summary)
        try:
            add(p)
        except ImportError:
            continue
        p.set_defaults(func=run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # a backend's config rejected an option value
        print(f"error: {str(e).splitlines()[0] if str(e) else 'invalid value'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory: lower --proxy or use shorter clips", file=sys.stderr)
        return 1


def main_exit() -> None:
    """Console-script entry point."""
    sys.exit(main())
