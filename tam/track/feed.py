"""Frames for the neural trackers: read ahead on a thread, preprocessed on the model's device.

A tracker walks a clip in a known order (``start``, ``start + step``, ...). While the
model works on one frame, a :class:`FrameFeed` thread reads the next few from the
:class:`~tam.frames.FrameSequence` (decoding, proxy cache) and wraps them as uint8
tensors, pinned in page-locked memory when the device is a GPU, so the upload is one
asynchronous copy of a quarter of the bytes a float frame would take. Resizing and
normalising then run on the device (:func:`square_normalised`, :func:`unit_float`).

Memory is bounded by ``depth`` frames ahead. Reads go through one lock, so a frame
asked for out of order (a keyframe, say) is read on the calling thread safely.

torch is imported inside functions: importing this module costs nothing.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

import numpy as np

READ_AHEAD = 4  # frames read ahead of the model: enough to hide a decode, a few MB at 1080p
_POLL_S = 0.1  # how often a blocked reader checks whether it was closed


def frame_array(frames, index: int) -> np.ndarray:
    frame = np.asarray(frames[index])
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame {index} is not an RGB uint8 HxWx3 array")
    return np.ascontiguousarray(frame)


class FrameFeed:
    """Frames of ``frames`` as uint8 HxWx3 tensors on ``device``, read ahead in ``order``.

    ``get(i)`` returns frame ``i``; when ``i`` is the next frame of ``order`` it comes
    from the read-ahead queue, otherwise it is read on the calling thread. Use as a
    context manager (or call :meth:`close`) so the reader thread stops.
    """

    def __init__(self, frames, order: Sequence[int], device, depth: int = READ_AHEAD):
        import torch

        self.frames = frames
        self.device = torch.device(device)
        self._pin = self.device.type == "cuda"
        self._order = list(order)
        self._where = {index: pos for pos, index in enumerate(self._order)}
        self._pos = 0  # position in _order of the next frame the queue will hand out
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_ahead, name="tam-frame-feed", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public

    def get(self, index: int):
        """Frame ``index`` as a uint8 HxWx3 tensor on the device (upload queued, not awaited)."""
        host = self._from_queue(index)
        if host is None:
            host = self._host_tensor(index)
        return host.to(self.device, non_blocking=self._pin)

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a reader waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()

    def __enter__(self) -> FrameFeed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _host_tensor(self, index: int):
        import torch

        with self._lock:
            array = frame_array(self.frames, index)
        if self._pin:  # one copy, straight into page-locked memory
            tensor = torch.empty(array.shape, dtype=torch.uint8, pin_memory=True)
            tensor.numpy()[...] = array
            return tensor
        # torch wants writable memory; cached frames are often read-only views
        return torch.from_numpy(array if array.flags.writeable else array.copy())

    def _read_ahead(self) -> None:
        for index in self._order:
            if self._stop.is_set():
                return
            try:
                item = (index, self._host_tensor(index), None)
            except Exception as exc:  # handed to the consumer, raised where the frame is asked for
                item = (index, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=_POLL_S)
                    break
                except queue.Full:
                    continue

    def _from_queue(self, index: int):
        """The queued tensor of ``index`` when it is still ahead in the order, else None."""
        if self._where.get(index, -1) < self._pos:
            return None
        while self._pos < len(self._order):
            got, tensor, error = self._queue.get()
            self._pos += 1
            if got == index:
                if error is not None:
                    raise error
                return tensor
        return None


def unit_float(frame):
    """uint8 HxWx3 tensor to float32 3xHxW in [0, 1] on the same device."""
    return frame.permute(2, 0, 1).float().div_(255.0)


def channel_constants(values, device):
    """Per-channel constants as a 1x3x1x1 float32 tensor on ``device``. Make them once per
    clip: creating a tensor from Python values on a GPU waits for the GPU's queue."""
    import torch

    return torch.tensor(values, dtype=torch.float32).view(1, 3, 1, 1).to(device)


def square_normalised(frame, size: int, mean, std):
    """uint8 HxWx3 tensor to float32 3xSxS: resized like PIL's bicubic (antialiased) and
    normalised with per-channel ``mean`` and ``std`` (1x3x1x1 tensors on the frame's
    device, of values in [0, 1]: see :func:`channel_constants`)."""
    import torch.nn.functional as F

    x = unit_float(frame)[None]
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
        x = x.clamp_(0.0, 1.0)
    return ((x - mean) / std)[0]


class HostLabels:
    """A label map computed on the device, copied to the host without waiting for it.

    On a GPU the copy goes to page-locked memory behind an event, so the caller can
    queue the next frame's work before :meth:`result` waits; on the CPU it is a view.
    """

    def __init__(self, labels):
        import torch

        if labels.device.type == "cuda":
            self._host = torch.empty(labels.shape, dtype=labels.dtype, pin_memory=True)
            self._host.copy_(labels, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host, self._event = labels, None

    def result(self) -> np.ndarray:
        """The labels as a uint8 numpy array of the host (a private copy)."""
        if self._event is not None:
            self._event.synchronize()
        return self._host.numpy().astype(np.uint8, copy=True)
