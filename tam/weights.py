"""Checkpoints for the neural backends: a manifest, a local cache, download and loading.

Nothing is downloaded implicitly. ``python -m tam weights download NAME`` fetches a
checkpoint into the cache (resumable: a ``.part`` file grows with HTTP Range requests
and is renamed atomically once its size and sha256 match); ``--from FILE`` registers a
copy obtained another way, for machines without network. Backends ask :func:`path`
for a file and get a one-line :class:`BackendError` naming that command when it is
missing.

The cache lives in ``$TAM_WEIGHTS_DIR`` when set, else in the user cache directory
(``platformdirs.user_cache_dir("tam")/weights``, or ``~/.cache/tam/weights``).

Sizes and sha256 sums of the official files are recorded where they are known.
For an entry with ``sha256=None``, ``verify`` can only check the size (when known)
and that the file loads as a state dict. Note that the hex suffix in the SAM v1 file
names (``..._01ec64.pth``) is not a prefix of their sha256.

Loading always uses ``torch.load(path, map_location="cpu", weights_only=True)``
and strict state-dict keys: missing or unexpected keys are a BackendError.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import socket
import sys
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tam.errors import BackendError

ENV_DIR = "TAM_WEIGHTS_DIR"
SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
CUTIE_URL = "https://github.com/hkchengrex/Cutie/releases/download/v1.0/"


@dataclass(frozen=True)
class Checkpoint:
    """One downloadable checkpoint."""

    name: str  # what users type: "sam-vit-b", "sam2.1-tiny", "cutie-base-mega"
    family: str  # "sam" (segment-anything), "sam2" or "cutie"
    filename: str
    url: str
    size: int | None  # bytes, None where unknown
    sha256: str | None  # None where unknown: verify then checks only size and loading
    arch: str  # segment-anything model type ("vit_b"), the sam2 config name, or Cutie's model config
    summary: str = ""
    md5: str | None = None  # the authors' published md5, checked where no sha256 is published

    def __post_init__(self):
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lowercase hex digits")
        if self.md5 is not None and not re.fullmatch(r"[0-9a-f]{32}", self.md5):
            raise ValueError(f"{self.name}: md5 must be 32 lowercase hex digits")


def _entries() -> dict[str, Checkpoint]:
    items = [
        Checkpoint("sam-vit-b", "sam", "sam_vit_b_01ec64.pth", SAM_URL + "sam_vit_b_01ec64.pth",
                   375042383, "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
                   "vit_b", "Segment Anything ViT-B (91M parameters)"),
        Checkpoint("sam-vit-l", "sam", "sam_vit_l_0b3195.pth", SAM_URL + "sam_vit_l_0b3195.pth",
                   1249524607, "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
                   "vit_l", "Segment Anything ViT-L (308M parameters)"),
        Checkpoint("sam-vit-h", "sam", "sam_vit_h_4b8939.pth", SAM_URL + "sam_vit_h_4b8939.pth",
                   2564550879, "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
                   "vit_h", "Segment Anything ViT-H (636M parameters)"),
        Checkpoint("sam2.1-tiny", "sam2", "sam2.1_hiera_tiny.pt", SAM2_URL + "sam2.1_hiera_tiny.pt",
                   156008466, "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
                   "configs/sam2.1/sam2.1_hiera_t.yaml", "SAM 2.1 Hiera-T (39M parameters)"),
        Checkpoint("sam2.1-small", "sam2", "sam2.1_hiera_small.pt", SAM2_URL + "sam2.1_hiera_small.pt",
                   184416285, "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
                   "configs/sam2.1/sam2.1_hiera_s.yaml", "SAM 2.1 Hiera-S (46M parameters)"),
        Checkpoint("sam2.1-base-plus", "sam2", "sam2.1_hiera_base_plus.pt",
                   SAM2_URL + "sam2.1_hiera_base_plus.pt",
                   323606802, "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
                   "configs/sam2.1/sam2.1_hiera_b+.yaml", "SAM 2.1 Hiera-B+ (81M parameters)"),
        Checkpoint("sam2.1-large", "sam2", "sam2.1_hiera_large.pt", SAM2_URL + "sam2.1_hiera_large.pt",
                   898083611, "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
                   "configs/sam2.1/sam2.1_hiera_l.yaml", "SAM 2.1 Hiera-L (224M parameters)"),
        # The Cutie authors publish an md5 only (their download script checks it), no sha256.
        Checkpoint("cutie-base-mega", "cutie", "cutie-base-mega.pth", CUTIE_URL + "cutie-base-mega.pth",
                   140443788, None, "base", "Cutie base, trained on the MEGA mix (35M parameters)",
                   md5="a6071de6136982e396851903ab4c083a"),
    ]
    return {c.name: c for c in items}


MANIFEST: dict[str, Checkpoint] = _entries()


def get(name: str | Checkpoint) -> Checkpoint:
    if isinstance(name, Checkpoint):
        return name
    if name not in MANIFEST:
        raise BackendError(f"unknown checkpoint {name!r} (known: {', '.join(MANIFEST)})")
    return MANIFEST[name]


def names(family: str | None = None) -> list[str]:
    return [n for n, c in MANIFEST.items() if family is None or c.family == family]


def weights_dir() -> Path:
    """The cache folder (not created here)."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("tam")) / "weights"
    except ImportError:
        return Path.home() / ".cache" / "tam" / "weights"


def local_path(name: str | Checkpoint) -> Path:
    """Where the checkpoint lives once installed (it may not exist)."""
    return weights_dir() / get(name).filename


def download_hint(name: str | Checkpoint) -> str:
    return f"python -m tam weights download {get(name).name}"


def is_installed(name: str | Checkpoint) -> bool:
    """The file is there and has the recorded size (no hashing: cheap enough for menus)."""
    entry = get(name)
    p = local_path(entry)
    try:
        st = p.stat()
    except OSError:
        return False
    return entry.size is None or st.st_size == entry.size


def path(name: str | Checkpoint) -> Path:
    """The installed checkpoint file, or a one-line BackendError naming the command to get it."""
    entry = get(name)
    p = local_path(entry)
    if not p.exists():
        raise BackendError(f"checkpoint {entry.name} is not installed ({p} is missing); "
                           f"get it with: {download_hint(entry)}")
    if not is_installed(entry):
        raise BackendError(f"checkpoint {entry.name} at {p} has the wrong size; "
                           f"fetch it again with: {download_hint(entry)}")
    return p


def installed(family: str | None = None) -> list[str]:
    return [n for n in names(family) if is_installed(n)]


# ---------------------------------------------------------------------------- hashing


def file_sha256(p: str | Path, chunk_size: int = 1 << 20, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# ---------------------------------------------------------------------------- download


def fetch(url: str, dest: str | Path, *, size: int | None = None, sha256: str | None = None,
          progress: bool = True, timeout: float = 60.0, chunk_size: int = 1 << 20,
          md5: str | None = None) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` with an HTTP Range request.

    The file appears at ``dest`` only complete and checked (size and sha256 where
    given). An interrupted transfer leaves the ``.part`` file for the next call; a
    complete file with a wrong sha256 is deleted.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # not a prefix of the file we want
        part.unlink()
        have = 0
    if size is None or have < size:
        have = _transfer(url, part, have, size, progress, timeout, chunk_size)
    got = part.stat().st_size if part.exists() else 0
    if size is not None and got != size:
        if got < size:
            raise BackendError(f"download of {dest.name} stopped at {got} of {size} bytes; "
                               "run the same command again to resume")
        part.unlink()
        raise BackendError(f"download of {dest.name} gave {got} bytes, expected {size}; removed it")
    if sha256 is not None:
        digest = file_sha256(part)
        if digest != sha256:
            part.unlink()
            raise BackendError(f"download of {dest.name} has sha256 {digest[:16]}..., expected "
                               f"{sha256[:16]}...; removed it, run the command again")
    elif md5 is not None:
        digest = file_sha256(part, algorithm="md5")
        if digest != md5:
            part.unlink()
            raise BackendError(f"download of {dest.name} has md5 {digest}, expected {md5}; "
                               "removed it, run the command again")
    os.replace(part, dest)
    return dest


def _transfer(url, part: Path, have: int, size, progress, timeout, chunk_size) -> int:
    headers = {"User-Agent": "tam-weights/1"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and have:  # the part file already holds everything
            return have
        raise BackendError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (URLError, OSError, HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise BackendError(f"download of {url} failed: {reason}") from exc
    with resp:
        if have and resp.status == 206:
            m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                part.unlink()
                raise BackendError(f"download of {url} failed: the server answered another range; "
                                   "removed the partial file, run the command again")
        elif have:  # the server ignored the range: start over
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else size
        from tqdm import tqdm

        try:
            with open(part, "ab" if have else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                desc=part.name[: -len(".part")], disable=not progress, leave=False,
            ) as bar:
                while True:
                    block = resp.read(chunk_size)
                    if not block:
                        break
                    f.write(block)
                    have += len(block)
                    bar.update(len(block))
        except (OSError, HTTPException, socket.timeout) as exc:
            raise BackendError(f"download of {part.name[:-5]} interrupted after {have} bytes ({exc}); "
                               "run the same command again to resume") from exc
    return have


def download(name: str | Checkpoint, *, url: str | None = None, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Fetch a manifest checkpoint into the cache (``url`` overrides it, e.g. a mirror)."""
    entry = get(name)
    dest = local_path(entry)
    if dest.exists() and is_installed(entry):
        return dest
    return fetch(url or entry.url, dest, size=entry.size, sha256=entry.sha256,
                 progress=progress, timeout=timeout, md5=entry.md5)


def install_local(name: str | Checkpoint, source: str | Path, *, link: bool = False) -> Path:
    """Register a file obtained another way: check it, then copy (or symlink) it into the cache."""
    entry = get(name)
    source = Path(source).expanduser()
    if not source.is_file():
        raise BackendError(f"{source} is not a file")
    ok, detail = check_file(entry, source)
    if not ok:
        raise BackendError(f"{source} is not {entry.name}: {detail}")
    dest = local_path(entry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and os.path.samefile(dest, source):
        return dest
    tmp = dest.with_name(dest.name + ".part")
    if tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    if link:
        tmp.symlink_to(source.resolve())
    else:
        shutil.copyfile(source, tmp)
    os.replace(tmp, dest)
    return dest


# ---------------------------------------------------------------------------- verify / load


def check_file(entry: Checkpoint, p: str | Path) -> tuple[bool, str]:
    """(ok, detail) for a candidate file: size, then sha256, or loadability when no sum is known."""
    p = Path(p)
    try:
        got = p.stat().st_size
    except OSError:
        return False, "not installed"
    if entry.size is not None and got != entry.size:
        return False, f"size {got} bytes, expected {entry.size}"
    if entry.sha256 is not None:
        digest = file_sha256(p)
        if digest != entry.sha256:
            return False, f"sha256 {digest[:16]}..., expected {entry.sha256[:16]}..."
        return True, "sha256 ok"
    if entry.md5 is not None:
        digest = file_sha256(p, algorithm="md5")
        if digest != entry.md5:
            return False, f"md5 {digest}, expected {entry.md5}"
        return True, "md5 ok (no sha256 published)"
    try:
        state = load_state_dict(p)
    except BackendError as exc:
        return False, str(exc)
    size_note = "size ok, " if entry.size is not None else ""
    return True, f"{size_note}no sha256 recorded; loads as a state dict of {len(state)} tensors"


def verify(name: str | Checkpoint) -> tuple[bool, str]:
    entry = get(name)
    return check_file(entry, local_path(entry))


def load_state_dict(p: str | Path) -> dict[str, Any]:
    """A checkpoint's state dict (a SAM 2 ``{"model": ...}`` wrapper is unwrapped)."""
    import torch

    p = Path(p)
    if not p.is_file():
        raise BackendError(f"checkpoint {p} does not exist")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused, truncated zip, not a torch file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BackendError(f"cannot read checkpoint {p}: {first[:200]}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BackendError(f"checkpoint {p} does not hold a state dict of tensors")
    return obj


def load_into(model, checkpoint: str | Path | dict, source: str | None = None) -> None:
    """Load a checkpoint (path or state dict) into ``model`` with strict keys.

    Missing or unexpected keys, or a tensor of the wrong shape, raise a one-line
    BackendError naming the first few keys.
    """
    if isinstance(checkpoint, dict):
        state, source = checkpoint, source or "state dict"
    else:
        state, source = load_state_dict(checkpoint), source or str(checkpoint)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "size mismatch" in ln), lines[-1] if lines else "")
        raise BackendError(f"checkpoint {source} does not fit the model: {detail[:300]}") from exc
    problems = []
    if result.missing_keys:
        problems.append("missing keys " + _few(result.missing_keys))
    if result.unexpected_keys:
        problems.append("unexpected keys " + _few(result.unexpected_keys))
    if problems:
        raise BackendError(f"checkpoint {source} does not fit the model: {'; '.join(problems)}")


def _few(keys, n: int = 3) -> str:
    keys = list(keys)
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


# ---------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="weights_command", metavar="{list,download,verify,path}")
    sub.required = True
    sub.add_parser("list", help="known checkpoints, their size and whether they are installed")
    d = sub.add_parser("download", help="fetch a checkpoint into the cache (resumable)")
    d.add_argument("name", choices=list(MANIFEST), metavar="NAME", help=", ".join(MANIFEST))
    d.add_argument("--from", dest="source", metavar="FILE",
                   help="register a local copy instead of downloading (checked, then copied)")
    d.add_argument("--link", action="store_true", help="with --from: symlink instead of copying")
    d.add_argument("--url", help="download from this URL (a mirror) instead of the official one")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    v = sub.add_parser("verify", help="check installed checkpoints (size and sha256)")
    v.add_argument("names", nargs="*", metavar="NAME", help="default: every installed one")
    p = sub.add_parser("path", help="print the file of an installed checkpoint")
    p.add_argument("name", metavar="NAME")


def main(args: argparse.Namespace) -> int:
    cmd = args.weights_command
    if cmd == "list":
        print(f"weights folder: {weights_dir()}  (set {ENV_DIR} to change it)")
        for entry in MANIFEST.values():
            state = "installed" if is_installed(entry) else "-"
            part = local_path(entry).with_name(entry.filename + ".part")
            if state == "-" and part.exists() and entry.size:
                state = f"partial {100 * part.stat().st_size / entry.size:.0f}%"
            print(f"{entry.name:18s} {_human(entry.size):>10s}  {state:12s} {entry.summary}")
        return 0
    if cmd == "download":
        if args.source:
            dest = install_local(args.name, args.source, link=args.link)
        else:
            dest = download(args.name, url=args.url, progress=not args.quiet)
        print(dest)
        return 0
    if cmd == "verify":
        todo = args.names or installed()
        if not todo:
            print("no checkpoint installed")
            return 0
        bad = 0
        for name in todo:
            ok, detail = verify(name)
            bad += not ok
            print(f"{get(name).name:18s} {'ok' if ok else 'FAILED':7s} {detail}")
        return 1 if bad else 0
    if cmd == "path":
        print(path(args.name))
        return 0
    print(f"unknown weights command {cmd!r}", file=sys.stderr)
    return 2
