"""The Stable Diffusion tier, on a tiny random-weight model built and saved offline.

The model goes through the real ``save_pretrained`` / ``from_pretrained(local_files_only=True)``
path; its fills are noise, so the tests check the contract (shapes, untouched pixels,
determinism, errors), not the look of the fill.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inpaint.diffusion import (
    MODEL_ENV,
    DiffusionConfig,
    DiffusionInpainter,
    DiffusionKeyframeFiller,
    context_box,
    feathered_paste,
    model_dir_problem,
    weights_variant,
    working_shape,
)
from tam.errors import BackendError, MaskError

REPO = Path(__file__).resolve().parents[1]


# --- geometry, no torch -----------------------------------------------------------------------


def test_context_box_holds_the_hole_and_stays_inside():
    rng = np.random.default_rng(3)
    for _ in range(200):
        h, w = rng.integers(20, 300, size=2)
        hole = np.zeros((h, w), bool)
        y, x = rng.integers(0, h), rng.integers(0, w)
        hole[y:y + rng.integers(1, h), x:x + rng.integers(1, w)] = True
        context, min_side = float(rng.uniform(0, 1)), int(rng.integers(8, 200))
        y0, y1, x0, x1 = context_box(hole, context, min_side)
        assert 0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w
        assert hole[y0:y1, x0:x1].sum() == hole.sum()
        ys, xs = np.nonzero(hole)
        extent = max(np.ptp(ys), np.ptp(xs)) + 1
        want = max(int(round(extent * (1 + 2 * context))), min_side)
        assert y1 - y0 == min(max(want, np.ptp(ys) + 1), h)
        assert x1 - x0 == min(max(want, np.ptp(xs) + 1), w)


def test_working_shape_is_a_multiple_and_keeps_aspect():
    for (h, w) in [(100, 100), (37, 250), (480, 300), (9, 9)]:
        wh, ww = working_shape(h, w, 512, 64)
        assert wh % 64 == 0 and ww % 64 == 0 and max(wh, ww) == 512
        assert abs(wh / ww - h / w) < 64 / 512 + 1e-9 or min(wh, ww) == 64


def test_feathered_paste_touches_only_the_hole_and_hides_the_seam():
    yy, xx = np.mgrid[0:96, 0:128]
    original = np.stack([xx * 1.5, yy * 2.0, 80 + 0 * xx], -1).astype(np.uint8)
    hole = np.zeros((96, 128), bool)
    hole[30:70, 40:100] = True
    # a fill that is right in shape but 30 levels too bright, as after a VAE colour shift
    generated = np.clip(original.astype(int) + 30, 0, 255).astype(np.uint8)
    plain = feathered_paste(original, generated, hole, feather=0)
    soft = feathered_paste(original, generated, hole, feather=6)
    for out in (plain, soft):
        assert np.array_equal(out[~hole], original[~hole])
    edge = hole & ~np.pad(hole, 1)[2:, 1:-1]  # hole pixels whose lower neighbour is outside
    err_plain = np.abs(plain[edge].astype(int) - original[edge]).mean()
    err_soft = np.abs(soft[edge].astype(int) - original[edge]).mean()
    assert err_plain > 25 and err_soft < 0.5 * err_plain
    # deep inside the hole the fill is left as generated
    assert np.abs(soft[50, 70].astype(int) - generated[50, 70]).max() <= 3


# --- configuration and errors, no torch ------------------------------------------------------


def test_config_validation():
    for bad in (dict(steps=0), dict(guidance=-1), dict(seed=-2), dict(device="gpu"),
                dict(device="cuda:x"), dict(working_size=100), dict(context=-0.1), dict(feather=-1),
                dict(small_hole=-1)):
        with pytest.raises(ValueError):
            DiffusionConfig(**bad)
    assert DiffusionConfig(device="cuda:1").device == "cuda:1"


def test_missing_or_invalid_model_dir_is_a_one_line_backend_error(tmp_path, monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    with pytest.raises(BackendError) as err:
        DiffusionKeyframeFiller()
    assert MODEL_ENV in str(err.value) and "\n" not in str(err.value)
    assert model_dir_problem(None) and not DiffusionInpainter.is_available()
    assert MODEL_ENV in DiffusionInpainter.unavailable_reason() or "package" in DiffusionInpainter.unavailable_reason()

    with pytest.raises(BackendError, match="does not exist"):
        DiffusionKeyframeFiller(model_dir=str(tmp_path / "nowhere"))
    with pytest.raises(BackendError, match="model_index.json"):
        DiffusionKeyframeFiller(model_dir=str(tmp_path))
    # a text-to-image model (4-channel UNet) is refused before anything loads
    (tmp_path / "unet").mkdir()
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (tmp_path / "unet" / "config.json").write_text(json.dumps({"in_channels": 4}))
    with pytest.raises(BackendError, match="not an inpainting model") as err:
        DiffusionInpainter(model_dir=str(tmp_path))
    assert "\n" not in str(err.value)
    monkeypatch.setenv(MODEL_ENV, str(tmp_path))
    assert not DiffusionInpainter.is_available()
    assert "not an inpainting model" in model_dir_problem(None)


def test_fp16_only_weights_are_loaded_as_the_fp16_variant(tmp_path):
    (tmp_path / "unet").mkdir()
    assert weights_variant(tmp_path) is None
    (tmp_path / "unet" / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"")
    assert weights_variant(tmp_path) == "fp16"
    (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    assert weights_variant(tmp_path) is None


def test_importing_the_module_does_not_import_torch():
    code = "import sys, inpaint.diffusion; sys.exit('torch' in sys.modules or 'diffusers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# --- a tiny random Stable Diffusion inpainting model -----------------------------------------


def _write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """A hand-written byte-level BPE vocabulary: letters, letters ending a word, a few merges."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for ch in letters:
            vocab[ch + suffix] = len(vocab)
    merges = ["t h", "th e</w>", "s k", "sk y</w>", "o f</w>", "a n", "an d</w>"]
    for merge in merges:
        vocab[merge.replace(" ", "")] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder / "vocab.json", folder / "merges.txt"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    transformers = pytest.importorskip("transformers")

    root = tmp_path_factory.mktemp("tiny_sd_inpaint")
    vocab_file, merges_file = _write_tokenizer_files(root / "bpe")
    tokenizer = transformers.CLIPTokenizer.from_pretrained(str(vocab_file.parent), model_max_length=77)
    assert tokenizer("the sky").input_ids[1:-1] == [tokenizer.convert_tokens_to_ids("the</w>"),
                                                    tokenizer.convert_tokens_to_ids("sky</w>")]
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=16, in_channels=9, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
    )
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )
    torch.manual_seed(0)
    text_encoder = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=1000, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    pipe = diffusers.StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=diffusers.DDIMScheduler(steps_offset=1), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    model_dir = root / "model"
    pipe.save_pretrained(str(model_dir))
    # published Stable Diffusion folders ship the tokenizer as vocab.json + merges.txt
    (model_dir / "tokenizer" / "tokenizer.json").unlink()
    for source in (vocab_file, merges_file):
        shutil.copy(source, model_dir / "tokenizer" / source.name)
    return model_dir


def _scene(height: int, width: int, shift: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    xx = xx + shift
    r = 120 + 60 * np.sin(xx / 7.0)
    g = 110 + 50 * np.cos(yy / 5.0 + xx / 11.0)
    b = 90 + 40 * np.sin((xx + yy) / 9.0)
    return np.stack([r, g, b], -1).astype(np.uint8)


FAST = dict(steps=2, guidance=3.0, min_context=32, prompt="the sky", negative_prompt="and of")


def test_filler_changes_only_the_hole_and_is_deterministic(tiny_model_dir):
    rgb = _scene(72, 96)
    hole = np.zeros((72, 96), bool)
    hole[20:44, 50:70] = True
    hole[44:50, 60:62] = True  # a thin part must be filled too

    import torch

    filler = DiffusionKeyframeFiller(model_dir=str(tiny_model_dir), seed=0, **FAST)
    first = filler(rgb, hole)
    # device "auto": the GPU in half precision where there is one, else the CPU in float32
    on_gpu = torch.cuda.is_available()
    assert filler.device == ("cuda" if on_gpu else "cpu")
    assert filler._pipe.unet.dtype == (torch.float16 if on_gpu else torch.float32)
    assert first.shape == rgb.shape and first.dtype == np.uint8
    assert np.array_equal(first[~hole], rgb[~hole])
    changed = np.any(first != rgb, axis=-1)
    assert changed[hole].mean() > 0.9
    assert np.array_equal(filler(rgb, hole), first)  # same seed, same call: same fill

    other = DiffusionKeyframeFiller(model_dir=str(tiny_model_dir), seed=1, **FAST)
    second = other(rgb, hole)
    assert np.array_equal(second[~hole], rgb[~hole])
    assert np.abs(second[hole].astype(int) - first[hole]).mean() > 2.0

    assert np.array_equal(filler(rgb, np.zeros_like(hole)), rgb)  # nothing to fill: no model call
    speck = np.zeros_like(hole)
    speck[5:8, 5:9] = True  # 12 pixels: filled by Telea, the model is not even loaded
    fresh = DiffusionKeyframeFiller(model_dir=str(tiny_model_dir), **FAST)
    filled = fresh(rgb, speck)
    assert fresh.device == "" and np.array_equal(filled[~speck], rgb[~speck])
    with pytest.raises(MaskError):
        filler(rgb, hole[:-1])


def test_unreadable_weights_are_a_one_line_backend_error(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a tensor file")
    filler = DiffusionKeyframeFiller(model_dir=str(broken), **FAST)  # the folder looks right
    with pytest.raises(BackendError, match="cannot load the inpainting model") as err:
        filler.load()
    assert "\n" not in str(err.value)


def test_cuda_runs_in_half_precision(tiny_model_dir):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    rgb = _scene(72, 96)
    hole = np.zeros((72, 96), bool)
    hole[10:30, 20:60] = True
    filler = DiffusionKeyframeFiller(model_dir=str(tiny_model_dir), **FAST)
    first = filler(rgb, hole)
    assert filler.device == "cuda" and filler._pipe.unet.dtype == torch.float16
    assert np.array_equal(first[~hole], rgb[~hole]) and np.any(first[hole] != rgb[hole])
    assert np.array_equal(filler(rgb, hole), first)


def test_registry_creates_the_backend_from_the_environment(tiny_model_dir, monkeypatch):
    from inpaint.base import INPAINTERS

    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert not INPAINTERS.is_available("diffusion")
    assert MODEL_ENV in INPAINTERS.unavailable_reason("diffusion")
    assert DiffusionInpainter.is_available(model_dir=str(tiny_model_dir))
    assert DiffusionInpainter.unavailable_reason(model_dir=str(tiny_model_dir)) == ""
    monkeypatch.setenv(MODEL_ENV, str(tiny_model_dir))
    assert INPAINTERS.is_available("diffusion")
    backend = INPAINTERS.create("diffusion", radius=4, **FAST)
    assert isinstance(backend, DiffusionInpainter) and backend.name == "diffusion"
    assert backend.keyframe_filler.model_dir == tiny_model_dir
    assert backend.config.steps == 2 and backend.flow_config.radius == 4
    with pytest.raises(TypeError, match="colour"):
        DiffusionInpainter(colour="red")


def test_video_fill_calls_the_model_on_keyframes_only(tiny_model_dir, monkeypatch):
    """A static camera and a static object: the background behind it is never seen,
    so the model invents it once and the flow carries that fill through the clip."""
    from tam.frames import ArrayFrames

    calls: list[int] = []
    real_call = DiffusionKeyframeFiller.__call__

    def counting(self, rgb, hole):
        calls.append(int(hole.sum()))
        return real_call(self, rgb, hole)

    monkeypatch.setattr(DiffusionKeyframeFiller, "__call__", counting)
    n, h, w = 8, 64, 80
    rng = np.random.default_rng(5)
    hole = np.zeros((h, w), bool)
    hole[22:42, 30:52] = True
    frames, masks = [], []
    for _ in range(n):
        frame = np.clip(_scene(h, w).astype(int) + rng.integers(-2, 3, (h, w, 3)), 0, 255).astype(np.uint8)
        frame[hole] = (255, 0, 255)  # the object to remove
        frames.append(frame)
        masks.append(hole.copy())

    backend = DiffusionInpainter(model_dir=str(tiny_model_dir), radius=3, flow_preset="ultrafast",
                                 **{**FAST, "guidance": 1.0})  # 1.0: no classifier-free guidance pass
    out = dict(backend.inpaint(ArrayFrames(frames), ArrayFrames(masks)))
    assert sorted(out) == list(range(n))
    assert 1 <= len(calls) <= 2 and calls[0] == hole.sum()  # keyframes only, not once per frame
    for i in range(n):
        assert out[i].shape == frames[i].shape
        assert np.array_equal(out[i][~hole], frames[i][~hole])
        magenta = np.all(out[i][hole] == (255, 0, 255), axis=-1)
        assert magenta.mean() < 0.01
    # the invented background is carried, not re-invented: consecutive frames agree inside
    # the hole far better than two independent fills of this texture would (about its std)
    texture = out[0][hole].astype(float).std()
    steps = [np.abs(out[i + 1][hole].astype(int) - out[i][hole]).mean() for i in range(n - 1)]
    assert texture > 10 and max(steps) < 0.3 * texture, (texture, steps)
