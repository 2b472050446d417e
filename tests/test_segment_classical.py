"""The classical click-to-mask segmenter and the simulated-click evaluation."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tam.errors import MaskError, PromptError
from tam.segment import SEGMENTERS, Prompt
from tam.segment.classical import ClassicalSegmenter, ClassicalSegmenterConfig
from tam.segment.base import Segmenter, SegmentResult
from tam.segment.evaluate import (ClickResults, ObjectClicks, add_arguments, evaluate_clicks, interior_point, iou,
                                  largest_error, main, next_click, run_clicks, simulated_clicks_mask)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def _needs_data():
    if not DATA.is_dir():
        pytest.skip(f"public evaluation data not found at {DATA}")


def _noisy_scene(seed: int, parts) -> np.ndarray:
    """A 240 x 320 RGB uint8 frame: flat blue, each (bool mask, RGB colour) of ``parts`` painted in order,
    then Gaussian noise (sigma 8) from ``seed``."""
    img = np.empty((240, 320, 3), np.float32)
    img[:] = (60, 120, 200)
    for where, colour in parts:
        img[where] = colour
    rng = np.random.RandomState(seed)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def _two_squares(seed=1):
    """Two red squares on a blue background (with noise), and their masks."""
    a = np.zeros((240, 320), bool)
    b = np.zeros((240, 320), bool)
    a[60:180, 40:130] = True
    b[60:180, 190:280] = True
    return _noisy_scene(seed, [(a | b, (220, 40, 40))]), a, b


@pytest.fixture(scope="module")
def squares():
    img, a, b = _two_squares()
    seg = ClassicalSegmenter()
    return seg, seg.set_image(img), img, a, b


# ----------------------------------------------------------------------------- segmenter behaviour
def test_registry_creates_classical_with_config():
    seg = SEGMENTERS.create("classical", superpixels=800)
    assert isinstance(seg, ClassicalSegmenter)
    assert seg.config.superpixels == 800
    with pytest.raises(ValueError):
        ClassicalSegmenterConfig(superpixels=0)
    with pytest.raises(ValueError):
        ClassicalSegmenterConfig(adapt_q=120)
    with pytest.raises(ValueError):
        ClassicalSegmenterConfig(adapt_growth=-1)
    with pytest.raises(TypeError):
        ClassicalSegmenter(no_such_option=1)


def test_positive_click_selects_the_object(squares):
    seg, seg_state, img, a, b = squares
    res = seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1)]))
    assert res.mask.dtype == bool and res.mask.shape == a.shape
    assert 0.0 <= res.score <= 1.0
    assert res.logits is not None and res.logits.shape == a.shape
    assert np.array_equal(res.logits > 0, res.mask)
    assert iou(res.mask, a) > 0.9
    assert set(vars(seg)) == {"config"}  # the prepared frame is the caller's, not the shared model's


def test_large_frames_are_processed_downscaled():
    img, a, b = _two_squares(seed=2)
    seg = ClassicalSegmenter(max_side=160)  # the 320x240 frame is worked on at 160x120
    seg_state = seg.set_image(img)
    res = seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1)]))
    assert res.mask.shape == a.shape and res.logits.shape == a.shape
    assert iou(res.mask, a) > 0.85
    res2 = seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1), (235, 120, 1)]), mask_input=res.logits)
    assert iou(res2.mask, a | b) > 0.85


def test_first_click_takes_in_the_other_parts_of_the_object():
    """A red body with a green head on blue: the click's own region is the body; the box stage adds the head."""
    body = np.zeros((240, 320), np.uint8)
    cv2.ellipse(body, (160, 140), (40, 60), 0, 0, 360, 1, -1)
    head = np.zeros((240, 320), np.uint8)
    cv2.circle(head, (160, 70), 12, 1, -1)
    body = body.astype(bool)
    head = head.astype(bool) & ~body
    img = _noisy_scene(4, [(body, (220, 40, 40)), (head, (40, 170, 60))])
    prompt = Prompt.from_clicks([(160, 140, 1)])
    seg = ClassicalSegmenter()
    seg_state = seg.set_image(img)
    res = seg.predict(seg_state, prompt)
    assert (res.mask & head).sum() > 0.9 * head.sum()  # measured 1.0
    assert iou(res.mask, body | head) > 0.95  # measured 1.0
    off = ClassicalSegmenter(box_grow=0)
    off_state = off.set_image(img)
    # measured 0: without the box stage the growth stops at the body's outline
    assert (off.predict(off_state, prompt).mask & head).sum() < 0.5 * head.sum()


def test_box_stage_answer_leaking_along_the_box_is_dropped():
    """blackswan, frame 15: GrabCut in the box, all of its iterations at 480 px, runs into the reflection below
    the swan, along the box's frame; the default coarse first iteration stays out of it."""
    _needs_data()
    from tam.datasets import find_sequences

    seq = next(s for s in find_sequences(DATA) if s.name == "davis2016/blackswan")
    img, gt = seq.frame(15), seq.mask(15) > 0
    x, y, _ = interior_point(gt)
    prompt = Prompt.from_clicks([(x, y, 1)])
    scores = {}
    for touch, coarse in ((0.1, 0), (1.0, 0), (0.1, 240)):
        seg = ClassicalSegmenter(box_touch=touch, box_coarse_side=coarse)
        seg_state = seg.set_image(img)
        scores[touch, coarse] = iou(seg.predict(seg_state, prompt).mask, gt)
    # measured 0.79 with the check, 0.54 without (the mask 1.6 times the swan's area); 0.84 coarse first
    assert scores[0.1, 0] > 0.7 and scores[1.0, 0] < 0.65 and scores[0.1, 240] > 0.7, scores


def test_box_stage_answer_along_the_box_s_frame_is_dropped():
    """A strip of the object's colour, joined to it, runs along the inside of the grown box's lower side
    (a reflection or a floor): GrabCut takes it in, and the leak check hands back the mask unchanged."""
    from types import SimpleNamespace

    from tam.segment.classical.polish import box_grabcut

    obj = np.zeros((240, 320), bool)
    obj[60:140, 150:170] = True
    obj[90:110, 120:200] = True  # a plus, 80 px across: the mask's box grown by half is x 99..220, y 39..160
    strip = np.zeros_like(obj)
    strip[152:160, 99:220] = True  # inside the box, along its lower side
    neck = np.zeros_like(obj)
    neck[140:152, 155:165] = True  # joins the strip to the object
    frame = SimpleNamespace(rgb=_noisy_scene(3, [(obj | strip | neck, (200, 60, 50))]))
    pts, labs = np.array([[160, 100]]), np.array([1])
    grown = {}
    for touch in (0.1, 1.0):
        for coarse in (0, 240):  # the crop is 261 px wide: 240 runs the first iteration downscaled
            cfg = ClassicalSegmenterConfig(box_touch=touch, box_coarse_side=coarse)
            out = box_grabcut(frame, cfg, obj, pts, labs)
            assert out[obj].all() and not (out & ~(obj | strip | neck)).any()  # no blue background either way
            grown[touch, coarse] = out[strip].mean()
    # measured 1.0 without the check: the strip is a quarter of the box's inner frame
    assert min(grown[1.0, 0], grown[1.0, 240]) > 0.9 and grown[0.1, 0] == grown[0.1, 240] == 0.0, grown
    with pytest.raises(ValueError):
        ClassicalSegmenterConfig(box_coarse_side=-1)


def test_negative_click_removes_a_region(squares):
    seg, seg_state, img, a, b = squares
    prev = a | b  # a previous mask that wrongly holds both squares
    res = seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1), (235, 120, 0)]), mask_input=prev)
    assert (res.mask & b).sum() < 0.05 * b.sum()
    assert (res.mask & a).sum() > 0.9 * a.sum()
    # the same previous mask passed as logits gives the same answer
    logits = np.where(prev, 5.0, -5.0).astype(np.float32)
    res2 = seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1), (235, 120, 0)]), mask_input=logits)
    assert iou(res.mask, res2.mask) > 0.98


def test_a_patch_of_the_objects_colour_that_no_click_reaches_is_left_out():
    img, a, _ = _two_squares()
    patch = np.zeros_like(a)
    patch[100:125, 150:168] = True  # beside the square, across a strip of background
    img = img.copy()
    img[patch] = img[a][: patch.sum()]
    share = {}
    for keep in (True, False):
        seg = ClassicalSegmenter(keep_connected=keep)
        seg_state = seg.set_image(img)
        mask = seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1)])).mask
        assert (mask & a).sum() > 0.95 * a.sum()
        share[keep] = (mask & patch).sum() / patch.sum()
    # measured 0 and 1: the GrabCut polish's colour mixtures take the patch in
    assert share[True] < 0.05 and share[False] > 0.5, share


def test_later_clicks_keep_to_their_sign(squares):
    seg, seg_state, img, a, b = squares
    prev = a.copy()
    prev[20:50, 60:110] = True  # the previous mask also holds a strip of background
    grown = seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1), (235, 120, 1)]), mask_input=prev).mask
    assert np.all(grown[prev]), "a positive click took something away"
    assert (grown & b).sum() > 0.9 * b.sum()
    cut = seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1), (85, 35, 0)]), mask_input=prev).mask
    assert not np.any(cut & ~prev), "a negative click added something"
    assert cut[20:50, 60:110].mean() < 0.1 and (cut & a).sum() > 0.95 * a.sum()
    free = ClassicalSegmenter(monotone=False)
    free_state = free.set_image(img)
    # measured 0.88: without the rule, the stages after the cut drop part of the strip the click never spoke of
    free_mask = free.predict(free_state, Prompt.from_clicks([(85, 120, 1), (235, 120, 1)]), mask_input=prev).mask
    assert free_mask[prev].mean() < 0.95


def test_a_positive_click_beside_the_mask_adds_a_sliver_not_the_wall_behind_it():
    obj = np.zeros((240, 320), bool)
    obj[70:170, 60:160] = True
    wall = np.zeros_like(obj)
    wall[40:200, 160:300] = True  # a surface of the object's colour right beside it
    img = _noisy_scene(4, [(obj | wall, (200, 60, 50))])
    prev = obj.copy()
    prev[:, 145:160] = False  # the previous mask misses a strip along the object's right side
    clicks = Prompt.from_clicks([(100, 120, 1), (152, 120, 1)])
    share = {}
    for cap in (0.0, ClassicalSegmenterConfig().depth_cap):
        seg = ClassicalSegmenter(depth_cap=cap)
        mask = seg.predict(seg.set_image(img), clicks, mask_input=prev).mask
        assert mask[70:170, 145:160].mean() > 0.95  # the strip is added either way
        share[cap] = (mask & wall).sum() / wall.sum()
    # measured 0.65 without the cap (the click grows over the wall), 0.36 with it
    assert share[0.0] > 0.55 and share[ClassicalSegmenterConfig().depth_cap] < 0.45, share
    with pytest.raises(ValueError):
        ClassicalSegmenterConfig(depth_cap=-1)


def test_the_polish_of_a_large_window_stays_within_its_band_outside_the_mask():
    from types import SimpleNamespace

    from tam.segment.classical.polish import grabcut_polish

    obj = np.zeros((240, 320), bool)
    obj[40:200, 20:300] = True
    img = _noisy_scene(5, [(obj, (200, 60, 50))])
    mask = np.zeros_like(obj)
    mask[40:200, 20:120] = True  # the cut's answer holds the object's left third
    pts, labs = np.array([[70, 120]]), np.array([1])
    frame = SimpleNamespace(rgb=img)
    band = ClassicalSegmenterConfig().grabcut_band
    beyond = obj.copy()
    beyond[:, :120 + band + 2] = False  # the object farther than the band outside the mask
    grown = {}
    for above in (10 ** 9, 0):  # the window's undecided pixels never / always count as many
        cfg = ClassicalSegmenterConfig(grabcut_band_above=above, grabcut_margin=2.0)  # a window over all of it
        out = grabcut_polish(frame, cfg, mask, pts, labs)
        assert out[mask].mean() > 0.99  # what the mask held stays
        grown[above] = out[beyond].mean()
    # a small window: the polish spreads over the whole object; a large one: it stops at the band
    assert grown[10 ** 9] > 0.95 and grown[0] == 0.0, grown
    with pytest.raises(ValueError):
        ClassicalSegmenterConfig(grabcut_band=-1)
    with pytest.raises(ValueError):
        ClassicalSegmenterConfig(grabcut_band_above=-1)


def test_superpixel_ceiling(squares):
    seg, seg_state, img, a, b = squares
    # the squares' outlines are strong edges: the superpixels follow them
    assert iou(seg.superpixel_ceiling(seg_state, a), a) >= 0.95
    # a one-pixel line has no superpixel of its own: no labelling of them can draw it
    line = np.zeros_like(a)
    line[100, 10:300] = True
    assert iou(seg.superpixel_ceiling(seg_state, line), line) < 0.5
    with pytest.raises(MaskError):
        seg.superpixel_ceiling(seg_state, np.zeros((10, 10), bool))
    small = ClassicalSegmenter(max_side=160)  # works at half size, answers at full size
    small_state = small.set_image(img)
    m = small.superpixel_ceiling(small_state, a)
    assert m.shape == a.shape and iou(m, a) >= 0.9


def test_a_click_on_a_small_part_of_another_colour_adds_it():
    # a red body and, apart from it, a small green head; the background has large green patches, so the
    # boundary refinement's colour models (the mask's against the background's) call green background
    body = np.zeros((240, 320), bool)
    body[100:160, 135:185] = True
    head = np.zeros_like(body)
    head[70:84, 153:167] = True
    patches = np.zeros_like(body)
    for y, x in [(10, 10), (10, 260), (190, 10), (190, 260), (100, 10), (100, 260)]:
        patches[y:y + 45, x:x + 50] = True
    img = _noisy_scene(3, [(body, (220, 40, 40)), (head | patches, (40, 200, 60))])
    covered = {}
    for keep in (0.0, ClassicalSegmenterConfig().refine_keep):
        seg = ClassicalSegmenter(refine_keep=keep)
        seg_state = seg.set_image(img)
        first = seg.predict(seg_state, Prompt.from_clicks([(160, 130, 1)]))
        assert iou(first.mask, body) >= 0.9
        second = seg.predict(seg_state, Prompt.from_clicks([(160, 130, 1), (160, 77, 1)]), mask_input=first.logits)
        assert iou(second.mask & ~head, body) >= 0.9
        covered[keep] = np.count_nonzero(second.mask & head) / np.count_nonzero(head)
    # measured: 0.15 (the click's own disc) when the refinement may drop the head, 0.71 when it may not
    assert covered[0.0] < 0.3
    assert covered[ClassicalSegmenterConfig().refine_keep] >= 0.5


def test_box_prompt(squares):
    seg, seg_state, img, a, b = squares
    res = seg.predict(seg_state, Prompt(box=(30, 50, 140, 190)))
    assert iou(res.mask, a) > 0.85
    assert not (res.mask & b).any()  # nothing outside the box
    res = seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1)], box=(30, 50, 140, 190)))
    assert iou(res.mask, a) > 0.9


def test_bad_prompts_raise(squares):
    seg, seg_state, img, a, b = squares
    with pytest.raises(PromptError):
        seg.predict(seg_state, Prompt.from_clicks([(320, 10, 1)]))  # x == width is outside
    with pytest.raises(PromptError):
        seg.predict(seg_state, Prompt.from_clicks([(-1, 10, 1)]))
    with pytest.raises(PromptError):
        seg.predict(seg_state, Prompt())
    with pytest.raises(MaskError):
        seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1)]), mask_input=np.zeros((10, 10), bool))
    with pytest.raises(TypeError, match="PreparedFrame"):
        ClassicalSegmenter().predict(None, Prompt.from_clicks([(5, 5, 1)]))


def test_deterministic():
    img, a, b = _two_squares(seed=3)
    masks = []
    for _ in range(2):
        seg = ClassicalSegmenter()
        seg_state = seg.set_image(img)
        r1 = seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1)]))
        r2 = seg.predict(seg_state, Prompt.from_clicks([(85, 120, 1), (235, 100, 1)]), mask_input=r1.logits)
        masks.append((r1.mask, r2.mask, r2.logits))
    for x, y in zip(*masks):
        assert np.array_equal(x, y)


def test_classical_path_never_imports_torch():
    code = (
        "import sys, numpy as np\n"
        "from tam.segment import SEGMENTERS, Prompt\n"
        "from tam.segment.evaluate import simulated_clicks_mask\n"
        "seg = SEGMENTERS.create('classical')\n"
        "img = np.zeros((64, 96, 3), np.uint8); img[16:48, 24:72] = 200\n"
        "gt = img[..., 0] > 0\n"
        "m = simulated_clicks_mask(seg, img, gt, 2)\n"
        "assert m.shape == gt.shape\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------------------- click simulator
def test_interior_point_is_the_deepest_pixel():
    gt = np.zeros((50, 80), bool)
    gt[10:31, 30:51] = True  # 21 x 21: centre (40, 20)
    gt[20, 20:30] = True  # a thin spur does not move the deepest point
    x, y, d = interior_point(gt)
    assert (x, y) == (40, 20)
    assert d == pytest.approx(11, abs=0.6)
    # the image border counts as boundary: a region touching the left edge is entered away from it
    edge = np.zeros((50, 80), bool)
    edge[:, :30] = True
    x, y, d = interior_point(edge)
    assert 14 <= x <= 15 and d == pytest.approx(15, abs=0.6)


def test_next_click_targets_the_largest_error():
    gt = np.zeros((60, 100), bool)
    gt[10:50, 10:50] = True
    pred = gt.copy()
    pred[10:50, 30:50] = False  # a 40x20 miss
    pred[5:9, 70:74] = True  # a small false alarm
    x, y, lab = next_click(pred, gt)
    assert lab == 1 and 30 <= x < 50 and 10 <= y < 50
    pred2 = gt.copy()
    pred2[10:50, 60:95] = True  # a big false alarm
    x, y, lab = next_click(pred2, gt)
    assert lab == 0 and 60 <= x < 95
    assert next_click(gt, gt) is None


def test_click_times_report_the_median_and_the_slow_tail():
    objs = [ObjectClicks("a", 1, [0.5, 0.6], [0.1, 0.2], [0.1, 0.2]),
            ObjectClicks("b", 1, [0.5, 0.6], [0.3, 2.0], [0.3, 2.0])]
    res = ClickResults("x", 2, objs, [0.4], [0.4])
    assert res.seconds_per_click() == pytest.approx(0.25)
    assert res.seconds_per_click(100) == pytest.approx(2.0)
    assert 0.3 < res.seconds_per_click(90) < 2.0
    assert "slowest 2.000 s" in res.table()


class _FirstClickOnly(Segmenter):
    """Answers every prompt with a square around the first click: later clicks change nothing."""

    name = "first-click-only"

    def set_image(self, image):
        return image.shape[:2]

    def predict(self, shape, prompt, mask_input=None):
        x, y = (int(v) for v in prompt.points[0])
        m = np.zeros(shape, bool)
        m[max(0, y - 10):y + 10, max(0, x - 10):x + 10] = True
        return SegmentResult(m, 1.0)


def test_largest_error_region():
    gt = np.zeros((40, 60), bool)
    gt[5:35, 5:25] = True
    pred = np.zeros_like(gt)
    pred[5:35, 5:22] = True
    pred[0:3, 40:60] = True  # a 3x20 false alarm, smaller than the 30x3 miss
    label, miss = largest_error(pred, gt)
    assert label == 1 and miss.sum() == 30 * 3 and miss[20, 23] and not miss[10, 10]
    pred[0:3, 40:60] = False
    pred[0:3, 30:60] = True
    pred[36:40, 30:60] = True  # two false alarms; the larger, 4x30, outgrows the miss
    label, alarm = largest_error(pred, gt)
    assert label == 0 and alarm.sum() == 4 * 30 and alarm[38, 50] and not alarm[1, 50]
    assert largest_error(gt, gt) is None


def test_clicks_that_change_nothing_are_counted(squares):
    seg, seg_state, img, a, b = squares
    mended = []
    ious, _, _, _ = run_clicks(seg, seg_state, a | b, 4, mended)  # the second square is taken in when clicked
    assert mended and min(mended) > 0.9 and ious[-1] > 0.95
    still = _FirstClickOnly()
    still_state = still.set_image(img)
    mended = []
    ious, _, _, _ = run_clicks(still, still_state, a, 4, mended)
    assert mended == [0.0, 0.0, 0.0] and ious[0] == ious[-1]
    res = ClickResults("x", 4, [ObjectClicks("s", 1, ious, [0.1] * 4, [0.1] * 4, mended)], [0.1], [0.1])
    assert res.dead_clicks() == (3, 3)
    assert "under 10% of the error region they aimed at: 3 of 3" in res.table()


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real_results():
    _needs_data()
    from tam.datasets import find_sequences

    seqs = [s for s in find_sequences(DATA / "davis2016") if s.root.name in ("blackswan", "car-shadow")]
    seqs += find_sequences(DATA / "davis2017_432x240")
    assert len(seqs) == 3
    return evaluate_clicks(ClassicalSegmenter(), seqs, max_clicks=5)


def test_quality_on_real_first_frames(real_results):
    res = real_results
    assert len(res.objects) == 9
    # measured mIoU@1 0.493, mIoU@5 0.689 on this subset (0.518 / 0.687 before the polish's band in large
    # windows, which keeps blackswan's first click off its neck, and the box stage's coarse first iteration,
    # which takes car-shadow's first click from 0.84 to 0.79: docs/experiments.md)
    assert res.miou(1) >= 0.49
    assert res.miou(5) >= 0.63
    assert res.miou(5) > res.miou(1) + 0.1  # clicks help
    swan = next(o for o in res.objects if o.sequence.endswith("blackswan"))
    assert swan.ious[-1] >= 0.9  # measured 0.92
    # the first click's box stage takes in the windows and wheels the click's own region misses:
    # measured 0.79 after 1 click (0.84 with both box iterations at 480 px, 0.34 without the box stage);
    # later clicks lower it (see docs/experiments.md)
    car = next(o for o in res.objects if o.sequence.endswith("car-shadow"))
    assert car.ious[0] >= 0.75 and car.ious[-1] >= 0.5
    noc, missed = res.noc(0.85)
    assert 1 <= noc <= 5 and 0 <= missed <= len(res.objects)
    assert res.cpu_seconds_per_click() < 0.5  # predict() is cheap (CPU time: the machine may be loaded)


def test_simulated_clicks_mask_on_real_frame():
    _needs_data()
    from tam.datasets import find_sequences

    seq = find_sequences(DATA / "davis2016" / "blackswan")[0]
    gt = seq.mask(0) == 1
    seg = ClassicalSegmenter()
    m3 = simulated_clicks_mask(seg, seq.frame(0), gt, 3)
    assert m3.dtype == bool and m3.shape == gt.shape
    assert iou(m3, gt) >= 0.8  # measured 0.92


def test_bench_rejects_zero_threads():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_segment", REPO / "bench" / "bench_segment.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with pytest.raises(SystemExit, match="--threads"):
        bench.main(["--threads", "0", "--no-baseline"])


def test_eval_clicks_command(capsys):
    _needs_data()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([str(DATA / "davis2017_432x240" / "schoolgirls"), "--max-clicks", "2"])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "schoolgirls#7" in out and "mIoU" in out and "NoC@85" in out and "NoC@90" in out
    assert "s/click" in out
