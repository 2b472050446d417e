"""SAM and SAM 2 segmenters with tiny random-weight models.

Each model is built through its package's own builder (segment_anything's model
registry, sam2's hydra config with overrides), seeded, saved to a temporary
checkpoint, loaded back through tam.weights (strict keys) and run through our
wrappers. The reference outputs come from the packages' own predictors on the
original in-memory model.
"""
from __future__ import annotations

import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from tam import weights
from tam.errors import BackendError
from tam.segment.base import SEGMENTERS, Prompt

torch = pytest.importorskip("torch", reason="torch is not installed")

REPO = Path(__file__).resolve().parents[1]
TINY_SAM = "vit_tiny_test"
from tests.tiny_sam2 import SAM2_CONFIG, one_thread, tiny_sam2_overrides  # noqa: F401 (one_thread: autouse)


def tiny_sam(checkpoint=None):
    """Segment Anything with a 2-block ViT on 128x128 inputs (the real prompt encoder/decoder)."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    size, patch, dim = 128, 16, 32
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=size, patch_size=patch, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0,
            out_chans=dim, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True, window_size=4, global_attn_indexes=(1,),
        ),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(size // patch, size // patch),
                                     input_image_size=(size, size), mask_in_chans=4),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=64, num_heads=2),
            transformer_dim=dim, iou_head_depth=3, iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    ).eval()


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(5)
    img = np.zeros((90, 140, 3), np.uint8)
    img[:] = (40, 90, 160)
    img[20:70, 30:80] = (220, 60, 40)
    return np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ SAM (segment_anything)


@pytest.fixture(scope="module")
def sam_setup(tmp_path_factory):
    sa = pytest.importorskip("segment_anything", reason="segment-anything is not installed")
    mp = pytest.MonkeyPatch()
    mp.setitem(sa.sam_model_registry, TINY_SAM, tiny_sam)
    torch.manual_seed(0)
    model = tiny_sam()
    path = tmp_path_factory.mktemp("sam") / "tiny_sam.pth"
    torch.save(model.state_dict(), path)
    yield model, path
    mp.undo()


def _sam(path, **kw):
    from tam.segment.sam import SamSegmenter

    return SamSegmenter(model_type=TINY_SAM, checkpoint=path, device="cpu", **kw)


def test_sam_round_trip_matches_the_package_predictor(sam_setup, image):
    from segment_anything import SamPredictor

    model, path = sam_setup
    ref = SamPredictor(model)
    ref.set_image(image)
    pts, lab = np.array([[50.0, 40.0], [120.0, 80.0]]), np.array([1, 0])
    want_masks, want_scores, want_logits = ref.predict(pts, lab, multimask_output=False)

    seg = _sam(path)
    seg_state = seg.set_image(image)
    got = seg.predict(seg_state, Prompt(pts.astype(np.float32), lab.astype(np.int32)))
    assert got.mask.shape == image.shape[:2] and got.mask.dtype == bool
    assert got.logits.shape == (1, 32, 32) and seg.low_res_size == 32
    np.testing.assert_allclose(got.logits, want_logits, atol=1e-5)
    assert np.array_equal(got.mask, want_masks[0])

    # Weights from another seed give other logits: the comparison above can fail.
    torch.manual_seed(1)
    ref2 = SamPredictor(tiny_sam())
    ref2.set_image(image)
    assert not np.allclose(ref2.predict(pts, lab, multimask_output=False)[2], want_logits, atol=1e-3)


def test_sam_single_click_picks_best_of_three_and_is_deterministic(sam_setup, image):
    from segment_anything import SamPredictor

    model, path = sam_setup
    ref = SamPredictor(model)
    ref.set_image(image)
    masks, scores, logits = ref.predict(np.array([[55.0, 45.0]]), np.array([1]), multimask_output=True)
    best = int(np.argmax(scores))

    seg = _sam(path)
    seg_state = seg.set_image(image)
    a = seg.predict(seg_state, Prompt.from_clicks([(55, 45, 1)]))
    b = seg.predict(seg_state, Prompt.from_clicks([(55, 45, 1)]))
    np.testing.assert_allclose(a.logits[0], logits[best], atol=1e-5)
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.logits, b.logits) and a.score == b.score
    assert 0.0 <= a.score <= 1.0


def test_sam_embeds_once_per_state_and_holds_no_image(sam_setup, image):
    _, path = sam_setup
    seg = _sam(path)
    seg.load()
    calls = []
    seg.model.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    state = seg.set_image(image)
    first = seg.predict(state, Prompt.from_clicks([(50, 40, 1)]))
    second = seg.predict(state, Prompt.from_clicks([(50, 40, 1), (100, 20, 0)]), mask_input=first.logits)
    assert len(calls) == 1 and second.mask.shape == image.shape[:2]
    # another frame prepared in between (another session's) does not change what this state answers
    other = seg.set_image(image[::-1].copy())
    assert len(calls) == 2
    seg.predict(other, Prompt.from_clicks([(50, 40, 1)]))
    again = seg.predict(state, Prompt.from_clicks([(50, 40, 1)]))
    assert np.array_equal(again.logits, first.logits)
    assert vars(seg).keys() == {"config", "checkpoint", "model_type", "model", "_predictor", "_device", "_load_lock"}
    with pytest.raises(BackendError, match="image state"):
        _sam(path).predict(state, Prompt.from_clicks([(50, 40, 1)]))  # a state is read by its maker only


def test_sam_box_negative_clicks_and_mask_input(sam_setup, image):
    _, path = sam_setup
    seg = _sam(path)
    seg_state = seg.set_image(image)
    r_box = seg.predict(seg_state, Prompt.from_clicks([(50, 40, 1), (10, 10, 0)], box=(25, 15, 85, 75)))
    r_mask = seg.predict(seg_state, Prompt.from_clicks([(50, 40, 1), (10, 10, 0)]), mask_input=r_box.mask)
    r_none = seg.predict(seg_state, Prompt.from_clicks([(50, 40, 1), (10, 10, 0)]))
    for r in (r_box, r_mask, r_none):
        assert r.mask.shape == (90, 140) and r.logits.shape == (1, 32, 32)
    # The previous mask is a real input: it changes the answer.
    assert not np.allclose(r_mask.logits, r_none.logits)
    with pytest.raises(BackendError, match="mask_input"):
        seg.predict(seg_state, Prompt.from_clicks([(50, 40, 1)]), mask_input=np.zeros((10, 10), bool))


def test_sam_checkpoint_errors_are_one_line(sam_setup, tmp_path, monkeypatch):
    model, path = sam_setup
    from tam.segment.sam import SamSegmenter

    with pytest.raises(BackendError) as err:
        SamSegmenter(checkpoint=tmp_path / "nope.pth")
    assert "\n" not in str(err.value) and "nope.pth" in str(err.value)

    monkeypatch.setenv(weights.ENV_DIR, str(tmp_path / "empty"))
    with pytest.raises(BackendError, match="python -m tam weights download sam-vit-b"):
        SamSegmenter()
    with pytest.raises(BackendError, match="python -m tam weights download sam-vit-l"):
        SamSegmenter(model_type="vit-l")
    assert not SamSegmenter.is_available()
    assert "python -m tam weights download" in SamSegmenter.unavailable_reason()
    assert not SEGMENTERS.is_available("sam")
    assert SamSegmenter.is_available(checkpoint=path)

    bad = tmp_path / "extra.pth"
    torch.save(dict(model.state_dict(), **{"mask_decoder.extra.weight": torch.zeros(3)}), bad)
    with pytest.raises(BackendError, match="unexpected keys mask_decoder.extra.weight") as err:
        _sam(bad).load()
    assert "\n" not in str(err.value)
    short = tmp_path / "missing.pth"
    torch.save({k: v for k, v in model.state_dict().items() if not k.startswith("mask_decoder.iou")}, short)
    with pytest.raises(BackendError, match="missing keys mask_decoder.iou"):
        _sam(short).load()
    # Without a model type, it is read from the checkpoint; a tiny one matches none.
    with pytest.raises(BackendError, match="pass model_type"):
        SamSegmenter(checkpoint=path).load()


# ------------------------------------------------------------------ SAM 2


@pytest.fixture(scope="module")
def sam2_setup(tmp_path_factory):
    pytest.importorskip("sam2", reason="sam2 is not installed")
    from sam2.build_sam import build_sam2

    torch.manual_seed(0)
    model = build_sam2(SAM2_CONFIG, None, device="cpu", hydra_overrides_extra=tiny_sam2_overrides())
    path = tmp_path_factory.mktemp("sam2") / "tiny_sam2.pt"
    torch.save({"model": model.state_dict()}, path)
    return model, path


def _sam2(path, **kw):
    from tam.segment.sam2 import Sam2Segmenter

    return Sam2Segmenter(checkpoint=path, config=SAM2_CONFIG, overrides=tiny_sam2_overrides(), device="cpu", **kw)


def _sam2_reference(model):
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    p = SAM2ImagePredictor(model)
    s = model.image_size
    p._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    return p


def test_sam2_round_trip_matches_the_package_predictor(sam2_setup, image):
    model, path = sam2_setup
    ref = _sam2_reference(model)
    ref.set_image(image)
    pts, lab = np.array([[50.0, 40.0], [120.0, 80.0]]), np.array([1, 0])
    want_masks, _, want_logits = ref.predict(pts, lab, box=np.array([20, 10, 90, 80]), multimask_output=False)

    seg = _sam2(path)
    seg_state = seg.set_image(image)
    got = seg.predict(seg_state, Prompt(pts.astype(np.float32), lab.astype(np.int32), box=(20, 10, 90, 80)))
    assert got.mask.shape == image.shape[:2] and got.mask.dtype == bool
    assert got.logits.shape == (1, 32, 32)
    np.testing.assert_allclose(got.logits, want_logits, atol=1e-4)
    assert np.array_equal(got.mask, want_masks[0] > 0)

    single = seg.predict(seg_state, Prompt.from_clicks([(60, 50, 1)]))
    masks, scores, logits = ref.predict(np.array([[60.0, 50.0]]), np.array([1]), multimask_output=True)
    np.testing.assert_allclose(single.logits[0], logits[int(np.argmax(scores))], atol=1e-4)
    assert 0.0 <= single.score <= 1.0
    again = seg.predict(seg_state, Prompt.from_clicks([(60, 50, 1)]))
    assert np.array_equal(again.logits, single.logits)

    # Another seed, other logits: the equality above means the weights made the trip.
    torch.manual_seed(1)
    from sam2.build_sam import build_sam2

    ref2 = _sam2_reference(build_sam2(SAM2_CONFIG, None, device="cpu", hydra_overrides_extra=tiny_sam2_overrides()))
    ref2.set_image(image)
    assert not np.allclose(ref2.predict(pts, lab, multimask_output=False)[2], want_logits, atol=1e-3)


def test_sam2_embeds_once_per_state_and_takes_mask_input(sam2_setup, image):
    _, path = sam2_setup
    seg = _sam2(path)
    seg.load()
    calls = []
    seg.model.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    seg_state = seg.set_image(image)
    first = seg.predict(seg_state, Prompt.from_clicks([(50, 40, 1)]))
    with_logits = seg.predict(seg_state, Prompt.from_clicks([(50, 40, 1), (130, 10, 0)]), mask_input=first.logits)
    with_mask = seg.predict(seg_state, Prompt.from_clicks([(50, 40, 1), (130, 10, 0)]), mask_input=first.mask)
    plain = seg.predict(seg_state, Prompt.from_clicks([(50, 40, 1), (130, 10, 0)]))
    assert len(calls) == 1
    assert not np.allclose(with_logits.logits, plain.logits)
    assert with_mask.mask.shape == image.shape[:2]


def test_sam2_checkpoint_errors_and_config_inference(sam2_setup, tmp_path, monkeypatch):
    model, path = sam2_setup
    from tam.segment.sam2 import Sam2Segmenter, infer_config, normalize_model

    bad = tmp_path / "extra.pt"
    torch.save({"model": dict(model.state_dict(), **{"bogus.weight": torch.zeros(1)})}, bad)
    with pytest.raises(BackendError, match="unexpected keys bogus.weight") as err:
        _sam2(bad).load()
    assert "\n" not in str(err.value)
    # The tiny checkpoint does not fit the full-size tiny config.
    with pytest.raises(BackendError, match="does not fit the model"):
        Sam2Segmenter(checkpoint=path, config=SAM2_CONFIG, device="cpu").load()
    with pytest.raises(BackendError, match="cannot build SAM 2 from config"):
        Sam2Segmenter(checkpoint=path, config="configs/nope.yaml", device="cpu").load()

    monkeypatch.setenv(weights.ENV_DIR, str(tmp_path / "empty"))
    with pytest.raises(BackendError, match="python -m tam weights download sam2.1-tiny"):
        Sam2Segmenter()
    with pytest.raises(BackendError, match="python -m tam weights download sam2.1-large"):
        Sam2Segmenter(model="large")
    assert not SEGMENTERS.is_available("sam2")
    assert "python -m tam weights download" in SEGMENTERS.unavailable_reason("sam2")

    assert [normalize_model(m) for m in ("t", "sam2.1-small", "b+", "base_plus", "L")] == [
        "sam2.1-tiny", "sam2.1-small", "sam2.1-base-plus", "sam2.1-base-plus", "sam2.1-large"]

    def fake(width, blocks):
        state = {"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(width, 3, 7, 7)}
        state.update({f"image_encoder.trunk.blocks.{i}.norm1.weight": torch.zeros(1) for i in range(blocks)})
        return state

    assert infer_config(fake(96, 12), "x").endswith("sam2.1_hiera_t.yaml")
    assert infer_config(fake(96, 16), "x").endswith("sam2.1_hiera_s.yaml")
    assert infer_config(fake(144, 48), "x").endswith("sam2.1_hiera_l.yaml")
    with pytest.raises(BackendError, match="pass its config"):
        infer_config(model.state_dict(), "tiny")


def test_backend_modules_import_without_torch():
    code = ("import sys, tam.segment.sam, tam.segment.sam2, tam.track.sam2, tam.weights, tam.neural; "
            "from tam.segment.base import SEGMENTERS; SEGMENTERS.names(); "
            "bad = [m for m in ('torch', 'segment_anything', 'sam2', 'hydra') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
