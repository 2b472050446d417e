"""Checkpoint manifest, cache, resumable download (against a local HTTP server), loading."""
from __future__ import annotations

import argparse
import hashlib
import http.server
import importlib.util
import re
import threading
from pathlib import Path

import pytest

from tam import weights
from tam.errors import BackendError

PAYLOAD = bytes((i * 7 + i // 251) % 256 for i in range(300_000))
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Server:
    """Serves PAYLOAD at /file with HTTP Range support; knobs break it on purpose."""

    def __init__(self):
        self.ranges: list[str | None] = []
        self.sent = 0
        self.ignore_range = False
        self.cut_after: int | None = None  # close the connection after this many body bytes
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/file":
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and not outer.ignore_range:
                    start = int(m.group(1))
                    if start >= len(PAYLOAD):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                else:
                    self.send_response(200)
                body = PAYLOAD[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut_after is not None:
                    body = body[: outer.cut_after]
                self.wfile.write(body)
                outer.sent += len(body)
                self.wfile.flush()
                if outer.cut_after is not None:
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with _Server() as s:
        yield s


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "weights"
    monkeypatch.setenv(weights.ENV_DIR, str(d))
    return d


def _entry(size=len(PAYLOAD), sha=PAYLOAD_SHA, name="test-ckpt"):
    return weights.Checkpoint(name, "sam", "test_ckpt.pth", "http://127.0.0.1:9/none", size, sha, "vit_b")


# ------------------------------------------------------------------ manifest and cache


def test_manifest_lists_the_official_checkpoints():
    assert set(weights.names("sam")) == {"sam-vit-b", "sam-vit-l", "sam-vit-h"}
    assert set(weights.names("sam2")) == {"sam2.1-tiny", "sam2.1-small", "sam2.1-base-plus", "sam2.1-large"}
    for entry in weights.MANIFEST.values():
        assert entry.url.endswith("/" + entry.filename)
        official = {"sam": "https://dl.fbaipublicfiles.com/segment_anything",
                    "sam2": "https://dl.fbaipublicfiles.com/segment_anything",
                    "cutie": "https://github.com/hkchengrex/Cutie/releases/download/"}[entry.family]
        assert entry.url.startswith(official)
        assert entry.size is None or entry.size > 100_000_000
        assert entry.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert entry.sha256 is not None or entry.md5 is not None  # every file can be checked
    assert weights.get("sam-vit-h").size == 2564550879
    cutie = weights.get("cutie-base-mega")
    assert weights.names("cutie") == ["cutie-base-mega"] and cutie.filename == "cutie-base-mega.pth"
    assert cutie.sha256 is None and cutie.md5 == "a6071de6136982e396851903ab4c083a"
    assert [weights.get(n).arch for n in ("sam-vit-b", "sam-vit-l", "sam-vit-h")] == ["vit_b", "vit_l", "vit_h"]
    with pytest.raises(BackendError, match="unknown checkpoint"):
        weights.get("sam-vit-x")


@pytest.mark.skipif(importlib.util.find_spec("sam2") is None, reason="sam2 is not installed")
def test_sam2_config_names_exist_in_the_package():
    root = Path(importlib.util.find_spec("sam2").submodule_search_locations[0])
    for name in weights.names("sam2"):
        assert (root / weights.get(name).arch).is_file(), weights.get(name).arch


def test_cache_dir_follows_env_and_path_names_the_command(cache):
    assert weights.weights_dir() == cache
    assert weights.local_path("sam-vit-b") == cache / "sam_vit_b_01ec64.pth"
    assert not weights.is_installed("sam-vit-b")
    with pytest.raises(BackendError) as err:
        weights.path("sam2.1-tiny")
    msg = str(err.value)
    assert "\n" not in msg and "python -m tam weights download sam2.1-tiny" in msg
    # A file of the wrong size is not "installed" either.
    cache.mkdir(parents=True)
    weights.local_path("sam-vit-b").write_bytes(b"x" * 10)
    assert not weights.is_installed("sam-vit-b")
    with pytest.raises(BackendError, match="wrong size"):
        weights.path("sam-vit-b")


# ------------------------------------------------------------------ download


def test_fetch_downloads_and_checks_sha(server, tmp_path):
    dest = tmp_path / "a" / "f.bin"
    out = weights.fetch(server.url, dest, size=len(PAYLOAD), sha256=PAYLOAD_SHA, progress=False)
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert not dest.with_name("f.bin.part").exists()
    assert server.ranges == [None]


def test_fetch_resumes_a_partial_download_with_range(server, tmp_path):
    dest = tmp_path / "f.bin"
    part = tmp_path / "f.bin.part"
    part.write_bytes(PAYLOAD[:123_456])
    weights.fetch(server.url, dest, size=len(PAYLOAD), sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=123456-"]
    assert server.sent == len(PAYLOAD) - 123_456  # only the missing tail crossed the wire


def test_fetch_restarts_when_the_server_ignores_range(server, tmp_path):
    server.ignore_range = True
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"\0" * 1000)  # garbage that must not be kept
    weights.fetch(server.url, dest, size=len(PAYLOAD), sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_interrupted_download_keeps_part_and_resumes(server, tmp_path):
    dest = tmp_path / "f.bin"
    server.cut_after = 100_000
    with pytest.raises(BackendError, match="again to resume"):
        weights.fetch(server.url, dest, size=len(PAYLOAD), sha256=PAYLOAD_SHA, progress=False)
    part = tmp_path / "f.bin.part"
    assert not dest.exists() and part.stat().st_size == 100_000
    server.cut_after = None
    weights.fetch(server.url, dest, size=len(PAYLOAD), sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD and server.ranges[-1] == "bytes=100000-"


def test_sha_mismatch_is_an_error_and_leaves_nothing(server, tmp_path):
    dest = tmp_path / "f.bin"
    with pytest.raises(BackendError, match="sha256") as err:
        weights.fetch(server.url, dest, size=len(PAYLOAD), sha256="0" * 64, progress=False)
    assert "\n" not in str(err.value)
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()


def test_unreachable_url_is_a_backend_error(tmp_path):
    with _Server() as s:
        url = s.url.replace("/file", "/missing")
        with pytest.raises(BackendError, match="HTTP 404"):
            weights.fetch(url, tmp_path / "f.bin", progress=False)


def test_download_by_name_uses_the_cache(server, cache):
    entry = _entry()
    out = weights.download(entry, url=server.url, progress=False)
    assert out == cache / "test_ckpt.pth" and out.read_bytes() == PAYLOAD
    assert weights.verify(entry) == (True, "sha256 ok")
    n = len(server.ranges)
    weights.download(entry, url=server.url, progress=False)  # already there: no request
    assert len(server.ranges) == n


# ------------------------------------------------------------------ local files (offline machines)


def test_install_local_copies_links_and_refuses_wrong_files(cache, tmp_path):
    src = tmp_path / "given.pth"
    src.write_bytes(PAYLOAD)
    entry = _entry()
    dest = weights.install_local(entry, src)
    assert dest.read_bytes() == PAYLOAD and not dest.is_symlink()
    dest.unlink()
    dest = weights.install_local(entry, src, link=True)
    assert dest.is_symlink() and dest.read_bytes() == PAYLOAD
    bad = tmp_path / "bad.pth"
    bad.write_bytes(PAYLOAD[:-1] + b"?")
    with pytest.raises(BackendError, match="sha256"):
        weights.install_local(entry, bad)
    short = tmp_path / "short.pth"
    short.write_bytes(PAYLOAD[:10])
    with pytest.raises(BackendError, match="size"):
        weights.install_local(entry, short)


def test_cli_list_download_from_verify_path(cache, tmp_path, capsys, monkeypatch):
    entry = _entry(name="sam-vit-b")
    monkeypatch.setitem(weights.MANIFEST, "sam-vit-b", entry)
    parser = argparse.ArgumentParser()
    weights.add_arguments(parser)

    def run(*argv):
        return weights.main(parser.parse_args(argv))

    assert run("list") == 0
    out = capsys.readouterr().out
    assert str(cache) in out and "sam2.1-large" in out and "installed" not in out
    with pytest.raises(BackendError, match="python -m tam weights download sam-vit-b"):
        run("path", "sam-vit-b")
    src = tmp_path / "x.pth"
    src.write_bytes(PAYLOAD)
    assert run("download", "sam-vit-b", "--from", str(src)) == 0
    assert capsys.readouterr().out.strip() == str(cache / "test_ckpt.pth")
    assert run("list") == 0
    assert re.search(r"sam-vit-b\s.*installed", capsys.readouterr().out)
    assert run("verify") == 0 and "ok" in capsys.readouterr().out
    assert run("path", "sam-vit-b") == 0
    assert capsys.readouterr().out.strip() == str(cache / "test_ckpt.pth")
    # Corrupt it in place, same size: verify fails with exit code 1.
    (cache / "test_ckpt.pth").write_bytes(PAYLOAD[:-1] + b"!")
    assert run("verify", "sam-vit-b") == 1 and "FAILED" in capsys.readouterr().out


# ------------------------------------------------------------------ loading (needs torch)


def test_load_strict_and_verify_without_sha(tmp_path, cache):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    good = tmp_path / "good.pt"
    torch.save({"model": model.state_dict()}, good)  # sam2-style wrapper is unwrapped
    other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    weights.load_into(other, good)
    assert torch.equal(other[0].weight, model[0].weight)

    extra = dict(model.state_dict(), **{"head.bias": torch.zeros(2)})
    with pytest.raises(BackendError, match="unexpected keys head.bias") as err:
        weights.load_into(other, extra, source="x.pt")
    assert "\n" not in str(err.value)
    missing = {k: v for k, v in model.state_dict().items() if k != "2.bias"}
    with pytest.raises(BackendError, match="missing keys 2.bias"):
        weights.load_into(other, missing)
    wrong = dict(model.state_dict(), **{"2.bias": torch.zeros(5)})
    with pytest.raises(BackendError, match="size mismatch"):
        weights.load_into(other, wrong)

    # Pickled objects other than tensors are refused by weights_only loading.
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "f": argparse.Namespace(a=1)}, evil)
    with pytest.raises(BackendError, match="cannot read checkpoint"):
        weights.load_state_dict(evil)

    # No sha256 known: verify checks size and that the file loads.
    entry = weights.Checkpoint("nosum", "sam2", "good.pt", "http://x/good.pt", good.stat().st_size, None, "cfg")
    weights.install_local(entry, good)
    ok, detail = weights.verify(entry)
    assert ok and "no sha256" in detail and "2 tensors" not in detail and "4 tensors" in detail
    (cache / "good.pt").write_bytes(b"not a checkpoint".ljust(good.stat().st_size, b"\0"))
    ok, detail = weights.verify(entry)
    assert not ok and "cannot read" in detail


def test_a_checkpoint_with_only_an_md5_is_checked_by_it(cache):
    entry = weights.Checkpoint("md5-only", "cutie", "m.pth", "http://127.0.0.1:9/m.pth", len(PAYLOAD), None,
                               "base", md5=hashlib.md5(PAYLOAD).hexdigest())
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "m.pth").write_bytes(PAYLOAD)
    assert weights.verify(entry) == (True, "md5 ok (no sha256 published)")
    (cache / "m.pth").write_bytes(PAYLOAD[:-1] + b"x")
    ok, detail = weights.verify(entry)
    assert not ok and detail.startswith("md5 ") and entry.md5 in detail
    with pytest.raises(ValueError, match="md5"):
        weights.Checkpoint("bad", "cutie", "b.pth", "http://x/b.pth", None, None, "base", md5="xyz")
