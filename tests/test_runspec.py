"""BackendSpec and RunContext: what a task carries to a worker, and how a run is followed and stopped."""
import pickle

import pytest

from tam.cli import _spec, build_parser
from tam.errors import Cancelled, TamError
from tam.runspec import BackendSpec, RunContext


def test_a_spec_survives_pickling_and_builds_the_backend():
    spec = BackendSpec.of("inpainter", "flow", {"radius": 4, "passes": 1})
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec and hash(again) == hash(spec)
    inpainter = again.create()
    assert inpainter.name == "flow" and inpainter.config.radius == 4 and inpainter.config.passes == 1
    assert spec.with_options(radius=6).options_dict == {"radius": 6, "passes": 1}
    assert BackendSpec.of("tracker").name == "classical" and not BackendSpec.of("tracker").neural


def test_device_and_checkpoint_reach_the_constructor_only_with_other_options():
    assert BackendSpec.of("segmenter", "sam", device="cuda").constructor_options() == {}
    spec = BackendSpec.of("segmenter", "sam", device="cuda", checkpoint="w.pt")
    assert spec.constructor_options() == {"checkpoint": "w.pt", "device": "cuda"}
    with pytest.raises(TamError, match="device"):
        BackendSpec.of("segmenter", "sam", device="tpu")
    with pytest.raises(TamError, match="kind"):
        BackendSpec("painter", "x")


def test_the_cli_builds_specs_from_its_options():
    args = build_parser().parse_args(["remove", "in.mp4", "--masks", "m", "--out", "o.mp4", "--backend",
                                      "diffusion", "--seed", "3", "--device", "cpu", "--workers", "2"])
    spec = _spec(args, "inpainter", args.backend)
    assert spec == BackendSpec.of("inpainter", "diffusion", {"seed": 3}, "cpu")
    args = build_parser().parse_args(["track", "in.mp4", "--init-mask", "m.png", "--out", "o",
                                      "--backend", "sam2", "--checkpoint", "c.pt"])
    assert _spec(args, "tracker", args.backend).checkpoint == "c.pt"
    assert _spec(args, "segmenter", args.segmenter).checkpoint is None


def test_a_run_context_reports_progress_and_cancels():
    seen = []
    ctx = RunContext(on_progress=lambda d, t: seen.append((d, t)))
    ctx.progress(1, 4)
    ctx.check()
    ctx.cancel()
    with pytest.raises(Cancelled, match="render cancelled"):
        ctx.check("render")
    assert seen == [(1, 4)]
    assert RunContext(should_stop=lambda: True).cancelled()
