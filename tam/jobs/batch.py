"""``tam batch JOBS.json``: many clips, each its own job, on one executor.

JOBS.json is a list of clips::

    [{"source": "a.mp4", "clicks": "a-clicks.json", "out": "a-clean.mp4"},
     {"source": "b.mp4", "masks": "b-masks/", "out": "b-clean.mov",
      "options": {"inpainter": "flow", "proxy": 640, "dilate": 6, "codec": "prores"}}]

``clicks`` is a clicks file (as for ``tam track --clicks``) or the same list
inline; ``masks`` a folder of per-frame masks at the source's size (as for
``tam remove``). Relative paths are read from the folder holding JOBS.json.
``options`` (all optional) are listed in :data:`OPTIONS`.

Each clip keeps its work in a project folder next to its output
(``.<out name>.tam``, or ``options.project``) so that running the same command
again skips clips whose output exists, skips clicks and tracking already done,
and fills only the frames the removal had not written. A clip that fails is
reported in one line; the others go on.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tam.cache import content_digest
from tam.errors import TamError, brief
from tam.jobs.removal import JOB_DIGEST_CHARS
from tam.runspec import BackendSpec, RunContext

OPTIONS = {  # name -> (type, meaning)
    "segmenter": (str, "segmenter backend for clicks (default classical)"),
    "tracker": (str, "tracker backend (default classical)"),
    "inpainter": (str, "inpainter backend (default flow)"),
    "inpainter_options": (dict, "constructor options of the inpainter, e.g. {\"radius\": 6}"),
    "device": (str, "auto, cpu or cuda"),
    "proxy": (int, "working resolution, longest side in pixels (default 854; 0 = source size)"),
    "dilate": (int, "mask growth in source pixels (default 8)"),
    "feather": (int, "soft edge width (default 4)"),
    "codec": (str, "output codec (default from the output's suffix)"),
    "chunk": (int, "frames per removal task (default 60)"),
    "project": (str, "the clip's project folder (default .<out name>.tam next to the output)"),
}
DONE_MARK = "batch-masks.done"  # in the project's jobs folder: the masks are complete for this digest


@dataclass(frozen=True)
class ClipJob:
    """One entry of JOBS.json, checked and with its paths resolved."""

    name: str
    source: Path
    out: Path
    clicks: list | None = None
    masks: Path | None = None
    options: dict = field(default_factory=dict)

    @property
    def project_dir(self) -> Path:
        given = self.options.get("project")
        return Path(given) if given else self.out.parent / f".{self.out.name}.tam"

    def spec(self, kind: str) -> BackendSpec:
        opts = self.options.get("inpainter_options", {}) if kind == "inpainter" else {}
        return BackendSpec.of(kind, self.options.get(kind), opts, self.options.get("device"))

    def digest(self) -> str:
        """What the clip's masks depend on (its clicks or mask folder, backends, working size)."""
        key = json.dumps({"clicks": self.clicks, "masks": str(self.masks), "source": str(self.source),
                          "opts": {k: self.options.get(k) for k in ("segmenter", "tracker", "proxy", "device")}},
                         sort_keys=True, default=str)
        return content_digest(key)[:JOB_DIGEST_CHARS]


def read_jobs(path: str | Path) -> list[ClipJob | TamError]:
    """The clips of JOBS.json; an entry that is wrong becomes the TamError saying why (the others run)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TamError(f"no such jobs file: {path}") from None
    except json.JSONDecodeError as e:
        raise TamError(f"{path.name} is not valid JSON: {e}") from None
    if not isinstance(data, list) or not data:
        raise TamError(f"{path.name}: expected a non-empty list of clips")
    jobs = []
    for k, entry in enumerate(data):
        try:
            jobs.append(_clip(entry, path.parent, k))
        except TamError as e:
            jobs.append(e)
    return jobs


def _clip(entry, base: Path, k: int) -> ClipJob:
    where = f"clip {k + 1}"
    if not isinstance(entry, dict):
        raise TamError(f"{where}: expected an object with source, out and clicks or masks")
    unknown = set(entry) - {"source", "clicks", "masks", "out", "options"}
    if unknown:
        raise TamError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("source", "out"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise TamError(f"{where}: \"{key}\" must be a path")
    if ("clicks" in entry) == ("masks" in entry):
        raise TamError(f"{where}: give either \"clicks\" or \"masks\"")
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise TamError(f"{where}: \"options\" must be an object")
    for name, value in options.items():
        if name not in OPTIONS:
            raise TamError(f"{where}: unknown option {name!r} (known: {', '.join(OPTIONS)})")
        if not isinstance(value, OPTIONS[name][0]) or isinstance(value, bool):
            raise TamError(f"{where}: option {name!r} must be a {OPTIONS[name][0].__name__}")
    source, out = base / entry["source"], base / entry["out"]
    clicks = entry.get("clicks")
    if isinstance(clicks, str):
        from tam.cli import _read_clicks_file

        clicks = _read_clicks_file(str(base / clicks))
    elif clicks is not None:
        from tam.cli import _read_prompt_item

        if not isinstance(clicks, list) or not clicks:
            raise TamError(f"{where}: \"clicks\" must be a clicks file or a non-empty list")
        clicks = [_read_prompt_item(where, c) for c in clicks]
    masks = base / entry["masks"] if "masks" in entry else None
    return ClipJob(Path(entry["source"]).name, source, out, clicks, masks, dict(options))


def run_clip(job: ClipJob, executor_spec, ctx: RunContext, stage=lambda name: None, chunk: int = 60) -> str:
    """Make ``job.out``; returns what was done (``done`` or ``skipped: ...``). Raises TamError."""
    from inpaint.render import HoleConfig
    from tam.cli import _apply_clicks, _check_media_out
    from tam.project import Project
    from tam.studio import Studio, StudioConfig, write_source_masks

    if job.out.exists():
        return "skipped: the output exists"
    if not job.source.exists():
        raise TamError(f"no such source: {job.source}")
    opts = job.options
    _check_media_out(job.out, opts.get("codec"))
    holes = HoleConfig(dilate=opts.get("dilate", 8), feather=opts.get("feather", 4))
    cfg = StudioConfig.from_specs(job.spec("segmenter"), job.spec("tracker"), job.spec("inpainter"),
                                  holes=holes, executor=executor_spec, chunk=opts.get("chunk", chunk))
    mark = job.project_dir / "jobs" / DONE_MARK
    if job.project_dir.exists() and not (mark.exists() and mark.read_text() == job.digest()):
        shutil.rmtree(job.project_dir)  # killed while prompting or tracking: those start again
    project = Project.create(job.source, path=job.project_dir, proxy_longest=opts.get("proxy", 854))
    try:
        studio = Studio(project, cfg)
        if not mark.exists():
            if job.masks is not None:
                stage("masks")
                write_source_masks(studio, job.masks)
            else:
                stage("segment")
                _apply_clicks(studio, job.clicks)
                for progress in project.find_cuts():
                    ctx.progress(*progress)
                stage("track")
                for progress in studio.track(ctx=ctx):
                    ctx.progress(*progress)
            mark.parent.mkdir(exist_ok=True)
            mark.write_text(job.digest())
        stage("remove")
        for progress in studio.render(job.out, codec=opts.get("codec"), ctx=ctx):
            ctx.progress(*progress)
    finally:
        project.close()
    return "done"


def run_batch(jobs_path: str, executor_spec, quiet: bool = False, chunk: int = 60) -> int:
    """Run every clip of ``jobs_path``; returns the number of clips that failed."""
    from tqdm import tqdm

    jobs = read_jobs(jobs_path)
    failed = 0
    overall = tqdm(total=len(jobs), desc="clips", unit="clip", position=0, disable=quiet, file=sys.stderr,
                   dynamic_ncols=True)
    with _shared(executor_spec):
        for k, job in enumerate(jobs):
            if isinstance(job, TamError):
                failed += 1
                tqdm.write(f"error: {job}", file=sys.stderr)
                overall.update(1)
                continue
            bar = tqdm(total=0, desc=job.name, unit="frame", position=1 + k, disable=quiet, file=sys.stderr,
                       dynamic_ncols=True, leave=True)

            def progress(done, total, bar=bar):
                bar.total, bar.n = total, done
                bar.refresh()

            def stage(name, bar=bar, job=job):
                bar.set_description(f"{job.name}: {name}")

            try:
                outcome = run_clip(job, executor_spec, RunContext(on_progress=progress), stage, chunk)
                bar.set_description(f"{job.name}: {outcome}")
                if outcome == "done":
                    tqdm.write(f"{job.out}: done", file=sys.stderr if quiet else sys.stdout)
            except (TamError, ValueError, OSError) as e:
                failed += 1
                bar.set_description(f"{job.name}: failed")
                tqdm.write(f"error: {job.name}: {brief(e)}", file=sys.stderr)
            finally:
                bar.close()
                overall.update(1)
    overall.close()
    return failed


class _shared:
    """Keeps one Ray session open for the whole batch (each clip's executor joins it)."""

    def __init__(self, executor_spec):
        self.spec, self.executor = executor_spec, None

    def __enter__(self):
        if self.spec is not None and self.spec.kind == "ray":
            self.executor = self.spec.create()
        return self

    def __exit__(self, *exc):
        if self.executor is not None:
            self.executor.close()


def add_arguments(parser) -> None:
    from tam.cli import add_executor_options

    parser.add_argument("jobs", metavar="JOBS.json",
                        help='a list of {"source": ..., "clicks": FILE or [...] | "masks": DIR, "out": ..., '
                             '"options": {...}}; options: ' + "; ".join(f"{k}: {v[1]}" for k, v in OPTIONS.items()))
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_executor_options(parser)


def main(args) -> int:
    from tam.cli import executor_spec

    failed = run_batch(args.jobs, executor_spec(args), args.quiet, args.chunk)
    return 1 if failed else 0
