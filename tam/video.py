"""Video in: a lazily decoded, seekable source of RGB frames (a file or a folder of images).

``open_source(path)`` returns a :class:`VideoSource`. Frames are decoded on
demand and kept in a small LRU cache, so memory does not grow with the clip's
length. Indexing is by frame number; a file's frames are indexed by their
presentation order, found once by demuxing (no decoding), which also keeps the
exact timestamps of variable-frame-rate clips. Rotation metadata is applied, and
any pixel format (10-bit, alpha) is converted to RGB uint8.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tam.cache import LRU
from tam.datasets import IMAGE_SUFFIXES
from tam.errors import VideoError, brief

DEFAULT_FOLDER_FPS = 25.0
DEFAULT_PROXY_LONGEST = 854  # 854x480 stays as is; 1280x720 and 1920x1080 become 854x480


@dataclass(frozen=True)
class Probe:
    """What a source is: the facts a project records and an export must keep."""

    path: str
    kind: str  # "file" or "folder"
    width: int  # after rotation
    height: int
    fps: float
    num_frames: int
    duration: float  # seconds
    rotation: int = 0  # display rotation (degrees counter-clockwise), already applied to frames
    has_audio: bool = False
    audio_codec: str | None = None
    video_codec: str | None = None
    pix_fmt: str | None = None
    variable_frame_rate: bool = False
    timestamps: list[float] = field(default_factory=list, repr=False)  # seconds, per frame

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Probe":
        return cls(**d)

    def summary(self) -> str:
        audio = f"audio {self.audio_codec}" if self.has_audio else "no audio"
        vfr = ", variable frame rate" if self.variable_frame_rate else ""
        rot = f", rotated {self.rotation} deg" if self.rotation else ""
        return (f"{self.width}x{self.height}, {self.fps:.3f} fps, {self.num_frames} frames, "
                f"{self.duration:.2f} s, {self.video_codec or 'images'}{rot}{vfr}, {audio}")


def proxy_size(width: int, height: int, longest: int | None = DEFAULT_PROXY_LONGEST) -> tuple[int, int]:
    """Working size: the longest side brought down to ``longest`` (never up), even-sized."""
    if not longest or max(width, height) <= longest:
        return width, height
    s = longest / max(width, height)
    return max(2, int(round(width * s / 2)) * 2), max(2, int(round(height * s / 2)) * 2)


def to_working_size(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` (HxWx3) at ``size`` (w, h): itself when it is that size already, else area-resampled."""
    if rgb.shape[1::-1] == tuple(size):
        return rgb
    import cv2

    return cv2.resize(rgb, tuple(size), interpolation=cv2.INTER_AREA)


class VideoSource:
    """Random access to the frames of a video file or an image folder.

    ``source[i]`` is frame ``i`` as RGB uint8 HxWx3 at the source's (rotated) size.
    Sequential reads continue the open decoder; a jump seeks to the nearest
    keyframe before it. Use as a context manager or call ``close()``.
    """

    def __init__(self, path: str | os.PathLike, cache_frames: int = 8):
        self.path = Path(path)
        self._cache = LRU(cache_frames)
        if not self.path.exists():
            raise VideoError(f"no such file or folder: {self.path}")
        if self.path.is_dir():
            self._reader = _FolderReader(self.path)
        else:
            self._reader = _FileReader(self.path)
        self.probe = self._reader.probe

    # -- sequence protocol -------------------------------------------------
    def __len__(self) -> int:
        return self.probe.num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range 0..{len(self) - 1}")
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        frame = self._reader.read(index)
        frame.setflags(write=False)  # cached arrays are shared; callers copy to edit
        self._cache.put(index, frame)
        return frame

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def native(self, index: int):
        """Frame ``index`` in the source's own pixel format (a :class:`tam.pixels.NativeFrame`),
        rotated like ``self[index]``; not cached. Read in order for speed."""
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range 0..{len(self) - 1}")
        return self._reader.read_native(int(index))

    @property
    def size(self) -> tuple[int, int]:
        return self.probe.width, self.probe.height

    @property
    def fps(self) -> float:
        return self.probe.fps

    def close(self) -> None:
        self._reader.close()
        self._cache.clear()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(path: str | os.PathLike, cache_frames: int = 8) -> VideoSource:
    return VideoSource(path, cache_frames)


def probe(path: str | os.PathLike) -> Probe:
    with open_source(path) as src:
        return src.probe


# -- image folders -----------------------------------------------------------

class _FolderReader:
    def __init__(self, folder: Path, fps: float = DEFAULT_FOLDER_FPS):
        from PIL import Image

        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise VideoError(f"{folder} holds no image frames ({', '.join(IMAGE_SUFFIXES)})")
        try:
            with Image.open(self._files[0]) as im:
                w, h = _exif_size(im)
        except OSError as e:
            raise VideoError(f"cannot read image {self._files[0].name}: {e}") from None
        n = len(self._files)
        self.probe = Probe(
            path=str(folder.resolve()), kind="folder", width=w, height=h, fps=fps, num_frames=n,
            duration=n / fps, timestamps=[i / fps for i in range(n)],
        )

    def read(self, index: int) -> np.ndarray:
        from PIL import Image, ImageOps

        path = self._files[index]
        try:
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im)
                rgb = np.asarray(_to_rgb(im))
        except OSError as e:
            raise VideoError(f"cannot read image {path.name}: {e}") from None
        if rgb.shape[:2] != (self.probe.height, self.probe.width):
            raise VideoError(
                f"image {path.name} is {rgb.shape[1]}x{rgb.shape[0]}, the first frame is "
                f"{self.probe.width}x{self.probe.height}: every frame must have one size")
        return np.ascontiguousarray(rgb)

    def read_native(self, index: int):
        from fractions import Fraction

        from tam.pixels import from_rgb

        native = from_rgb(self.read(index))
        native.pts, native.time_base = index, 1 / Fraction(self.probe.fps).limit_denominator(1001)
        return native

    def close(self) -> None:
        pass


def _exif_size(im) -> tuple[int, int]:
    from PIL import ImageOps

    return ImageOps.exif_transpose(im).size


def _to_rgb(im):
    """RGB, compositing any alpha over black (what an editor's matte expects)."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (0, 0, 0, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    if im.mode in ("I;16", "I;16B", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        top = 65535.0 if a.max() > 255 else 255.0
        g = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(np.dstack([g, g, g]))
    return im.convert("RGB")


# -- video files ---------------------------------------------------------------

def _open_container(path: Path):
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise VideoError(f"{path.name} is not a readable video: {_short(e)}") from None


def _short(e: Exception) -> str:
    return brief(e)


class _FileReader:
    def __init__(self, path: Path):
        import av

        self._path = path
        container = _open_container(path)
        try:
            if not container.streams.video:
                raise VideoError(f"{path.name} has no video stream (no video frames)")
            vstream = container.streams.video[0]
            astreams = container.streams.audio
            self._time_base = vstream.time_base
            ptss = []
            try:
                for packet in container.demux(vstream):
                    if packet.pts is not None and packet.size > 0:
                        ptss.append(int(packet.pts))
            except av.error.FFmpegError:
                pass  # a truncated file: keep the packets read so far, decoding decides
            ctx = vstream.codec_context
            if ctx is None:
                raise VideoError(f"{path.name}: no decoder here for its video stream")
            pix_fmt, codec_name = ctx.pix_fmt, ctx.name
            from tam.pixels import tags_of

            self._header_tags = tags_of(ctx)  # decoders may reset them once opened
            avg_rate = vstream.average_rate or vstream.guessed_rate or vstream.base_rate
            audio = astreams[0] if astreams else None
            audio_codec = audio.codec_context.name if audio is not None and audio.codec_context else None
        finally:
            container.close()
        ptss = sorted(set(ptss))
        # Decode the first frame: it proves the stream decodes and gives the real
        # size and the display rotation that PyAV reads from side data.
        self._container = None
        self._next_index = None
        self._pts = ptss
        self._rotation = 0  # display rotation, degrees counter-clockwise, read from frame 0
        first = None
        if ptss:
            try:
                first = self._decode_at(0, allow_probe=True)
            except VideoError:
                first = None
        if first is None:
            self.close()
            raise VideoError(f"{path.name} has no decodable video frames (no video, or corrupt)")
        self._prune_undecodable_tail()
        h, w = first.shape[:2]
        tb = float(self._time_base) if self._time_base else 0.0
        ts = [(p - self._pts[0]) * tb for p in self._pts]
        n = len(self._pts)
        if avg_rate:
            fps = float(avg_rate)
        elif n > 1 and ts[-1] > 0:
            fps = (n - 1) / ts[-1]
        else:
            fps = DEFAULT_FOLDER_FPS
        deltas = np.diff(ts) if n > 2 else np.array([])
        vfr = bool(len(deltas) and (deltas.max() - deltas.min()) > 0.5 / max(fps, 1e-6) + 1e-4)
        duration = (ts[-1] + 1.0 / fps) if n else 0.0
        self.probe = Probe(
            path=str(path.resolve()), kind="file", width=w, height=h, fps=fps, num_frames=n,
            duration=duration, rotation=self._rotation, has_audio=audio is not None,
            audio_codec=audio_codec, video_codec=codec_name, pix_fmt=pix_fmt,
            variable_frame_rate=vfr, timestamps=ts,
        )

    def _prune_undecodable_tail(self) -> None:
        """A truncated file lists packets it cannot decode; find the last decodable frame."""
        last = len(self._pts) - 1
        if last <= 0:
            return
        try:
            self._decode_at(last)
            return
        except VideoError:
            pass
        lo, hi = 0, last  # lo decodes, hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                self._decode_at(mid)
                lo = mid
            except VideoError:
                hi = mid
        self._pts = self._pts[: lo + 1]

    def _ensure_open(self):
        if self._container is None:
            self._container = _open_container(self._path)
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            self._frames = None
            self._next_index = None
        return self._container

    def _restart_at(self, index: int) -> None:
        import av

        container = self._ensure_open()
        target = self._pts[index]
        try:
            container.seek(target, stream=self._stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            try:
                container.seek(0)
            except av.error.FFmpegError as e:  # a corrupt index: even the start cannot be reached
                raise VideoError(f"{self._path.name}: frame {index} cannot be reached ({_short(e)})") from None
        self._frames = container.decode(self._stream)
        self._next_index = None

    def _decode_at(self, index: int, allow_probe: bool = False, raw: bool = False):
        """Frame ``index`` as RGB uint8, or with ``raw`` the decoded ``av.VideoFrame`` itself."""
        import av

        target = self._pts[index]
        if self._next_index != index:
            self._restart_at(index)
        try:
            for frame in self._frames:
                if frame.pts is None:
                    continue
                if frame.pts < target:
                    continue
                # frame.pts >= target: the frame at or just after the target
                if allow_probe:
                    # The display matrix (phone videos): degrees counter-clockwise, as
                    # FFmpeg's own auto-rotation applies it.
                    self._rotation = int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) * 90 % 360
                rgb = frame if raw else self._to_rgb(frame)
                try:
                    self._next_index = self._pts.index(frame.pts) + 1
                except ValueError:
                    self._next_index = None
                return rgb
        except (av.error.FFmpegError, EOFError) as e:
            self._next_index = None
            raise VideoError(f"{self._path.name}: frame {index} cannot be decoded ({_short(e)})") from None
        self._next_index = None
        raise VideoError(f"{self._path.name}: frame {index} cannot be decoded (stream ended early)")

    def _to_rgb(self, frame) -> np.ndarray:
        fmt = frame.format.name
        if "a" in fmt.replace("yuva", "a").split("p")[0] and fmt not in ("gray",) and (
                fmt.startswith(("yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya"))):
            rgba = frame.to_ndarray(format="rgba")
            alpha = rgba[..., 3:4].astype(np.uint16)
            rgb = (rgba[..., :3].astype(np.uint16) * alpha // 255).astype(np.uint8)
        else:
            rgb = frame.to_ndarray(format="rgb24")
        if self._rotation:
            rgb = np.rot90(rgb, k=self._rotation // 90)
        return np.ascontiguousarray(rgb)

    def read(self, index: int) -> np.ndarray:
        return self._decode_at(index)

    def read_native(self, index: int):
        from tam.pixels import from_av

        frame = self._decode_at(index, raw=True)
        native = from_av(frame, self._rotation, self._tags(frame))
        native.pts = self._pts[index] - self._pts[0]
        native.time_base = self._time_base
        return native

    def _tags(self, frame):
        """The stream's colour tags, each one the frame leaves unspecified taken from the header."""
        from tam.pixels import ColourTags, tags_of

        f, s = tags_of(frame), self._header_tags
        pick = lambda a, b, unset: a if a != unset else b  # noqa: E731
        return ColourTags(pick(f.primaries, s.primaries, 2), pick(f.transfer, s.transfer, 2),
                          pick(f.matrix, s.matrix, 2), pick(f.range, s.range, 0))

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._next_index = None
