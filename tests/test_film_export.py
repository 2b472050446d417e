"""Film-grade exports: codecs, bit-exact lossless outputs, colour tags, timecode, rate, audio, mattes."""
from __future__ import annotations

import json
from fractions import Fraction

import cv2
import numpy as np
import pytest

from tam.cli import main
from tam.errors import OutputError

W, H, N = 64, 48, 8
RATE = Fraction(24000, 1001)
TIMECODE = "01:02:03:04"
BT709, LIMITED = 1, 1
HOLE = (slice(16, 32), slice(20, 44))  # rows, cols of the object in the masks
FAR = 8 + 4 + 1  # dilation + feather + one pixel for a 2x2 chroma block: beyond this, the source's samples


def make_source(path, pix_fmt="yuv420p", codec="libx264", audio=("aac", "pcm_s16le"), timecode=TIMECODE):
    """A BT.709-tagged clip at 24000/1001 fps with a start timecode and several audio streams."""
    import av

    fmt = {".mov": "mov", ".mkv": "matroska"}.get(path.suffix, "mp4")
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format=fmt) as c:
        v = c.add_stream(codec, rate=RATE)
        v.width, v.height, v.pix_fmt = W, H, pix_fmt
        for name in ("color_primaries", "color_trc", "colorspace"):
            setattr(v.codec_context, name, BT709)
        v.codec_context.color_range = LIMITED
        if codec == "libx264":
            v.options = {"qp": "0"} if "10" not in pix_fmt else {}
        if timecode:
            v.metadata["timecode"] = timecode
            c.metadata["TIMECODE"] = timecode
        streams = []
        for name in audio:
            a = c.add_stream(name, rate=48000)
            a.layout = "stereo"
            streams.append(a)
        base = rng.integers(40, 215, (H, W, 3), dtype=np.uint8)
        for i in range(N):
            rgb = np.roll(base, i, axis=1)
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
            f.pts = i
            f.time_base = 1 / RATE
            for name in ("color_primaries", "color_trc", "colorspace"):
                setattr(f, name, BT709)
            f.color_range = LIMITED
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        for a in streams:
            fmt_name = a.codec_context.codec.audio_formats[0].name
            samples = int(48000 * N / RATE)
            step = a.codec_context.frame_size or 1024
            for k in range(0, samples, step):
                n = min(step, samples - k)
                dtype = np.int16 if fmt_name.startswith("s16") else np.float32
                data = np.zeros((2, n) if fmt_name.endswith("p") else (1, 2 * n), dtype)
                af = av.AudioFrame.from_ndarray(data, format=fmt_name, layout="stereo")
                af.sample_rate, af.pts = 48000, k
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
    return path


def write_masks(folder, n=N):
    folder.mkdir()
    m = np.zeros((H, W), np.uint8)
    m[HOLE] = 255
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:05d}.png"), m)
    return folder


def far_from_hole(shape, margin=FAR) -> np.ndarray:
    """True where a sample of a plane of ``shape`` covers only pixels beyond ``margin`` of the hole."""
    h, w = shape
    near = np.zeros((H, W), np.float32)
    rows, cols = HOLE
    near[max(rows.start - margin, 0): rows.stop + margin, max(cols.start - margin, 0): cols.stop + margin] = 1
    if (h, w) != (H, W):
        near = cv2.resize(near, (w, h), interpolation=cv2.INTER_AREA)  # a subsampled plane's blocks
    return near == 0


def decoded(path):
    """Decoded frames of a file (av.VideoFrame list) and its video stream facts."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        facts = {"codec": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt, "rate": v.average_rate,
                 "audio": [s.codec_context.name for s in c.streams.audio]}
    return frames, facts


def planes(frame):
    from tam.pixels import from_av

    return from_av(frame).planes


def run_remove(src, tmp_path, out, codec, *extra):
    masks = write_masks(tmp_path / "masks") if not (tmp_path / "masks").exists() else tmp_path / "masks"
    assert main(["remove", str(src), "--masks", str(masks), "--out", str(out), "--codec", codec, "-q", *extra]) == 0
    return out


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le"])
def test_ffv1_is_bit_exact_outside_the_hole(tmp_path, pix_fmt):
    src = make_source(tmp_path / "src.mkv", pix_fmt, codec="ffv1")
    out = run_remove(src, tmp_path, tmp_path / "out.mkv", "ffv1")
    got, facts = decoded(out)
    want, _ = decoded(src)
    assert facts["codec"] == "ffv1" and facts["pix_fmt"] == pix_fmt and len(got) == N
    changed = 0
    for g, s in zip(got, want):
        for k, (pg, ps) in enumerate(zip(planes(g), planes(s))):
            keep = far_from_hole(pg.shape)
            assert np.array_equal(pg[keep], ps[keep]), f"plane {k} changed outside the hole"
            changed += int((pg != ps).sum())
    assert changed > 0  # the hole itself was filled


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le"])
def test_png_sequence_is_16_bit_and_bit_exact_outside_the_hole(tmp_path, pix_fmt):
    src = make_source(tmp_path / "src.mkv", pix_fmt, codec="ffv1")
    out = run_remove(src, tmp_path, tmp_path / "frames", "png")
    want, _ = decoded(src)
    files = sorted(out.glob("*.png"))
    assert len(files) == N
    keep = far_from_hole((H, W))
    for f, s in zip(files, want):
        png = cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
        assert png.dtype == np.uint16
        if "10" in pix_fmt:
            ref = s.to_ndarray(format="rgb48le")
        else:
            ref = s.to_ndarray(format="rgb24").astype(np.uint16) * 257
        assert np.array_equal(png[keep], ref[keep])
        assert not np.array_equal(png[HOLE], ref[HOLE])
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["frame_rate"] == "24000/1001" and meta["timecode"] == TIMECODE
    assert (meta["color_primaries"], meta["color_trc"], meta["colorspace"]) == (BT709, BT709, BT709)
    assert (out / "audio.mka").exists()


def test_ffv1_keeps_an_image_folder_rgb_bit_exact(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(N):
        cv2.imwrite(str(folder / f"{i:05d}.png"), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    out = run_remove(folder, tmp_path, tmp_path / "out.mkv", "ffv1")
    got, facts = decoded(out)
    assert facts["pix_fmt"] == "bgr0" and len(got) == N
    keep = far_from_hole((H, W))
    for i, g in enumerate(got):
        src = cv2.cvtColor(cv2.imread(str(folder / f"{i:05d}.png")), cv2.COLOR_BGR2RGB)
        rgb = g.to_ndarray(format="rgb24")
        assert np.array_equal(rgb[keep], src[keep]) and not np.array_equal(rgb[HOLE], src[HOLE])


def test_prores_422_refuses_an_odd_width(tmp_path, capsys):
    import av

    src = tmp_path / "odd.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = W + 1, H, "yuv444p"
        for i in range(N):
            f = av.VideoFrame.from_ndarray(np.full((H, W + 1, 3), 90, np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    masks = tmp_path / "masks"
    masks.mkdir()
    m = np.zeros((H, W + 1), np.uint8)
    m[HOLE] = 255
    for i in range(N):
        cv2.imwrite(str(masks / f"{i:05d}.png"), m)
    rc = main(["remove", str(src), "--masks", str(masks), "--out", str(tmp_path / "o.mov"), "--codec", "prores", "-q"])
    assert rc == 1 and "use prores4444" in capsys.readouterr().err
    assert not list(tmp_path.glob("*o.mov*"))  # no half-written file left behind


def test_run_prores_keeps_tags_timecode_rate_timestamps_and_audio(tmp_path):
    """The issue's acceptance: a BT.709 clip with a start timecode through ``run --codec prores``."""
    src = make_source(tmp_path / "src.mov", "yuv420p10le")
    out = tmp_path / "clean.mov"
    assert main(["run", str(src), "--click", "30,22", "--codec", "prores", "--out", str(out), "-q"]) == 0
    import av

    with av.open(str(out)) as c, av.open(str(src)) as s:
        v, sv = c.streams.video[0], s.streams.video[0]
        cc = v.codec_context
        assert cc.name == "prores" and cc.pix_fmt == "yuv422p10le"
        assert (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range) == (BT709, BT709, BT709, LIMITED)
        assert v.metadata.get("timecode") == TIMECODE
        assert v.average_rate == RATE
        assert [a.codec_context.name for a in c.streams.audio] == [a.codec_context.name for a in s.streams.audio]
        got = [f.pts * f.time_base for f in c.decode(v)]
        want = [f.pts * f.time_base for f in s.decode(sv)]
    assert got == [t - want[0] for t in want]


@pytest.mark.parametrize("codec,suffix,pix_fmt", [("prores", ".mov", "yuv422p10le"),
                                                  ("prores4444", ".mov", "yuv444p"),
                                                  ("h265", ".mp4", "yuv420p10le"),
                                                  ("ffv1", ".mkv", "yuv420p10le")])
def test_ten_bit_stays_ten_bit(tmp_path, codec, suffix, pix_fmt):
    src = make_source(tmp_path / "src.mkv", "yuv420p10le", codec="ffv1", audio=("aac",))
    out = run_remove(src, tmp_path, tmp_path / f"out{suffix}", codec)
    frames, facts = decoded(out)
    assert len(frames) == N and facts["pix_fmt"].startswith(pix_fmt)
    bits = max(c.bits for c in frames[0].format.components)
    assert bits >= 10
    assert facts["audio"] == ["aac"]
    f = frames[0]
    assert (f.color_primaries, f.color_trc, f.colorspace) == (BT709, BT709, BT709)


def test_h264_mp4_keeps_timecode_and_reencodes_what_mp4_cannot_hold(tmp_path):
    src = make_source(tmp_path / "src.mov", "yuv420p", audio=("aac", "pcm_s16le"))
    out = run_remove(src, tmp_path, tmp_path / "out.mp4", "h264")
    frames, facts = decoded(out)
    assert facts["codec"] == "h264" and len(frames) == N and facts["rate"] == RATE
    assert facts["audio"] == ["aac", "aac"]  # PCM has no place in MP4: re-encoded, not dropped
    from tam.mediameta import read_meta

    assert read_meta(out).timecode == TIMECODE


def test_codec_and_suffix_mismatch_is_a_one_line_error(tmp_path, capsys):
    src = make_source(tmp_path / "src.mp4", audio=())
    masks = write_masks(tmp_path / "masks")
    rc = main(["remove", str(src), "--masks", str(masks), "--out", str(tmp_path / "o.mp4"), "--codec", "prores"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.startswith("error: codec prores writes .mov") and "\n" not in err
    from tam.codecs import resolve

    with pytest.raises(OutputError):
        resolve(tmp_path / "o.avi", None)
    assert resolve(tmp_path / "o.mov", None).name == "prores"
    assert resolve(tmp_path / "dir", None) is None


def test_run_writes_16_bit_mattes_and_a_prores_matte_beside_the_render(tmp_path):
    src = make_source(tmp_path / "src.mov", "yuv420p", audio=())
    mattes, matte = tmp_path / "mattes", tmp_path / "matte.mov"
    assert main(["run", str(src), "--click", "30,22", "--out", str(tmp_path / "o.mp4"), "--mattes-out", str(mattes),
                 "--matte-video", str(matte), "-q"]) == 0
    files = sorted((mattes / "object_1").glob("*.png"))
    assert len(files) == N and cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    frames, facts = decoded(matte)
    assert facts["codec"] == "prores" and facts["pix_fmt"].startswith("yuva444p") and len(frames) == N


def test_a_codec_mismatch_fails_before_tracking(tmp_path, capsys, monkeypatch):
    from tam.studio import Studio

    def never(*a, **k):
        raise AssertionError("tracked before the output was checked")

    monkeypatch.setattr(Studio, "track", never)
    src = make_source(tmp_path / "src.mp4", audio=())
    rc = main(["run", str(src), "--click", "30,22", "--out", str(tmp_path / "o.mkv"), "--codec", "prores", "-q"])
    assert rc == 1 and "codec prores writes .mov" in capsys.readouterr().err


def test_mattes_16_bit_pngs_and_prores_4444_with_alpha(tmp_path):
    import av

    from tam.project import Project
    from tam.studio import Studio

    src = make_source(tmp_path / "src.mov", "yuv420p", audio=())
    project = Project.create(src, path=tmp_path / "project")
    studio = Studio(project)
    labels = np.zeros((H, W), np.uint8)
    labels[HOLE] = 1
    project.set_keyframe(0, labels)
    for i in range(N):
        project.save_mask(i, labels)
    list(studio.export_mattes(tmp_path / "mattes", depth=16))
    m = cv2.imread(str(tmp_path / "mattes" / "object_1" / "00003.png"), cv2.IMREAD_UNCHANGED)
    assert m.dtype == np.uint16 and m[HOLE].min() == 65535 and m[0, 0] == 0
    list(studio.export_matte_video(tmp_path / "matte.mov"))
    with av.open(str(tmp_path / "matte.mov")) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "prores" and "yuva444p" in v.codec_context.pix_fmt
        assert v.metadata.get("timecode") == TIMECODE
        frames = list(c.decode(v))
    assert len(frames) == N
    rgba = frames[0].to_ndarray(format="rgba64le")
    assert rgba[24, 30, 3] > 60000 and rgba[0, 0, 3] == 0  # opaque on the object, clear elsewhere
    project.close()
