"""Per-frame preparation: superpixels, a colour palette, edges and the superpixel graph.

``prepare_frame`` does, once per frame, everything the clicks later reuse. All
arrays are at the working resolution (the frame downscaled so that its longer
side is at most ``max_side``); superpixel arrays are indexed by superpixel id.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from tam.segment.classical.config import ClassicalSegmenterConfig
from tam.segment.classical.kmeans import kmeans, nearest
from tam.segment.classical.motion import Motion, displacement_field, motion_edges, motion_model

EDGE_BLUR = 1.0  # Gaussian sigma (pixels) before the edge gradient
EDGE_PERCENTILE = 95  # the gradient magnitude at this percentile counts as a full-strength edge
SLIC_ITERATIONS = 10
SLIC_MIN_ELEMENT = 25  # percent of the region size below which a superpixel piece is merged
PALETTE_SAMPLE = 12000  # pixels sampled to fit the palette
CHUNK = 65536  # pixels per block when assigning palette colours
GEO_STEP_FLOOR = 1e-3  # smallest geodesic step cost


@dataclass
class PreparedFrame:
    """Everything a prompt needs about one prepared frame (working resolution; n superpixels, K colours)."""

    shape: tuple[int, int]  # original H, W
    rgb: np.ndarray  # h x w x 3 uint8 working image
    scale: float  # working / original
    lab: np.ndarray  # h x w x 3 float32
    edges: np.ndarray  # h x w float32 in [0, 1]
    labels: np.ndarray  # h x w int32 superpixel ids
    n: int
    size: np.ndarray  # n pixel counts
    mean: np.ndarray  # n x 3 mean Lab
    hist: np.ndarray  # n x K palette histograms (rows sum to 1)
    pix_palette: np.ndarray  # h x w palette index
    palette: np.ndarray  # K x 3 Lab
    kernel: np.ndarray  # K x K palette smoothing (rows sum to 1)
    ei: np.ndarray  # adjacency pairs (ei < ej)
    ej: np.ndarray
    blen: np.ndarray  # shared boundary length (pixels)
    bedge: np.ndarray  # mean edge strength along the boundary, [0, 1]
    dcol: np.ndarray  # Lab distance of the means
    geo_cost: np.ndarray  # geodesic step cost per pair
    border: np.ndarray  # bool n: superpixel touches the image border
    geo_unit: float  # distance scale for geodesic terms
    graph: object  # sparse n x n matrix of geodesic step costs
    motion: Motion | None = None  # motion towards the neighbouring frames (None for a still image)

    def distances(self, sources) -> np.ndarray:
        """Geodesic distance (n,) from the nearest of the superpixels ``sources``; inf where none is given."""
        sources = np.asarray(sources, np.int64).reshape(-1)
        if not len(sources):
            return np.full(self.n, np.inf)
        return dijkstra(self.graph, directed=False, indices=sources, min_only=True)

    def superpixels_at(self, pts: np.ndarray) -> np.ndarray:
        """The distinct superpixel ids under working-size points ``pts`` (N, 2) x, y."""
        return np.unique(self.labels[pts[:, 1], pts[:, 0]])


def looks_like(f: PreparedFrame, cfg: ClassicalSegmenterConfig, sp: int) -> np.ndarray:
    """(n,) bool: superpixels of the same surface as superpixel ``sp``: mean colour within ``alike_lab`` Lab
    units and, with neighbouring frames, moving within ``motion_edge`` pixels of it."""
    alike = np.linalg.norm(f.mean - f.mean[sp], axis=1) < cfg.alike_lab
    if f.motion is not None:
        k = np.sqrt(max(1, f.motion.mean.shape[1] // 2))
        alike &= np.linalg.norm(f.motion.mean - f.motion.mean[sp], axis=1) / k < cfg.motion_edge
    return alike


def to_lab(image: np.ndarray) -> np.ndarray:
    """RGB uint8 to float32 CIELab (L in 0..100)."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def working_image(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """(the frame downscaled so its longer side is at most ``max_side``, the scale applied)."""
    H, W = image.shape[:2]
    scale = min(1.0, max_side / max(H, W))
    if scale == 1.0:
        return image, scale
    size = (max(1, round(W * scale)), max(1, round(H * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def edge_map(lab: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the lightly smoothed Lab image, robustly normalised to [0, 1]."""
    sm = cv2.GaussianBlur(lab, (0, 0), EDGE_BLUR)
    gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt((gx * gx + gy * gy).sum(2))
    return np.clip(mag / (np.percentile(mag, EDGE_PERCENTILE) + 1e-6), 0, 1).astype(np.float32)


def superpixels(rgb: np.ndarray, count: int) -> np.ndarray:
    """SLICO superpixel ids (h x w int32, consecutive from 0), about ``count`` of them."""
    h, w = rgb.shape[:2]
    region = max(4, int(round(np.sqrt(h * w / count))))
    lab8 = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    slic = cv2.ximgproc.createSuperpixelSLIC(lab8, algorithm=cv2.ximgproc.SLICO, region_size=region)
    slic.iterate(SLIC_ITERATIONS)
    slic.enforceLabelConnectivity(SLIC_MIN_ELEMENT)
    _, labels = np.unique(slic.getLabels().astype(np.int32).ravel(), return_inverse=True)
    return labels.reshape(h, w).astype(np.int32)


def palette_histograms(lab, labels, n, cfg: ClassicalSegmenterConfig):
    """(palette K x 3, per-pixel palette index h x w, per-superpixel histograms n x K, K x K smoothing kernel)."""
    h, w = labels.shape
    rng = np.random.RandomState(cfg.seed)
    px = lab.reshape(-1, 3)
    sample = px[rng.choice(len(px), min(len(px), PALETTE_SAMPLE), replace=False)]
    palette = kmeans(sample, cfg.palette, rng)
    pix_palette = np.concatenate([nearest(px[i:i + CHUNK], palette) for i in range(0, len(px), CHUNK)]).reshape(h, w)
    K = cfg.palette
    hist = np.bincount(labels.ravel() * K + pix_palette.ravel(), minlength=n * K).reshape(n, K).astype(np.float64)
    hist /= hist.sum(1, keepdims=True)
    pd2 = ((palette[:, None, :] - palette[None, :, :]) ** 2).sum(2)
    kernel = np.exp(-pd2 / (2 * cfg.palette_sigma ** 2))
    kernel /= kernel.sum(1, keepdims=True)
    return palette, pix_palette, hist, kernel


def adjacency(labels: np.ndarray, edges: np.ndarray, n: int):
    """(ei, ej, boundary length, mean edge strength along the boundary) for every pair of touching superpixels."""
    pairs, strength = [], []
    for a, b, ea, eb in ((labels[:, :-1], labels[:, 1:], edges[:, :-1], edges[:, 1:]),
                         (labels[:-1, :], labels[1:, :], edges[:-1, :], edges[1:, :])):
        diff = a != b
        lo = np.minimum(a[diff], b[diff]).astype(np.int64)
        hi = np.maximum(a[diff], b[diff]).astype(np.int64)
        pairs.append(lo * n + hi)
        strength.append(np.maximum(ea[diff], eb[diff]))
    key = np.concatenate(pairs)
    strength = np.concatenate(strength)
    uniq, inv = np.unique(key, return_inverse=True)
    blen = np.bincount(inv).astype(np.float64)
    bedge = np.bincount(inv, strength).astype(np.float64) / blen
    return (uniq // n).astype(np.int64), (uniq % n).astype(np.int64), blen, bedge


def prepare_frame(image: np.ndarray, cfg: ClassicalSegmenterConfig, neighbours=()) -> PreparedFrame:
    """Prepare one RGB uint8 H x W x 3 frame for prompts; ``neighbours`` are frames of the same size near it
    in time (none for a still image). With neighbours, a boundary between superpixels that move apart counts
    as an edge (``motion_edge`` pixels of displacement difference: a full-strength one)."""
    H, W = image.shape[:2]
    work, scale = working_image(image, cfg.max_side)
    h, w = work.shape[:2]
    lab = to_lab(work)
    edges = edge_map(lab)
    labels = superpixels(work, cfg.superpixels)
    n = int(labels.max()) + 1
    flat = labels.ravel()
    size = np.bincount(flat, minlength=n).astype(np.float64)
    mean = np.stack([np.bincount(flat, lab[..., c].ravel(), n) for c in range(3)], 1) / size[:, None]
    palette, pix_palette, hist, kernel = palette_histograms(lab, labels, n, cfg)
    ei, ej, blen, bedge = adjacency(labels, edges, n)
    dcol = np.linalg.norm(mean[ei] - mean[ej], axis=1)
    motion, medge = None, 0.0
    if len(neighbours):
        motion = motion_model(displacement_field(work, neighbours, scale), labels, n, cfg.motion_sigma, cfg.seed,
                              residual=cfg.w_motion_prior > 0)
        medge = motion_edges(motion, ei, ej, cfg.motion_edge, cfg.motion_relative)
        bedge = np.maximum(bedge, medge)
    geo_cost = dcol + cfg.geo_edge * bedge + cfg.geo_motion * medge + GEO_STEP_FLOOR
    border = np.zeros(n, bool)
    border[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    graph = coo_matrix((np.concatenate([geo_cost, geo_cost]),
                        (np.concatenate([ei, ej]), np.concatenate([ej, ei]))), shape=(n, n)).tocsr()
    # distance unit: typical geodesic spread of this image (median distance from the centre node)
    spread = dijkstra(graph, directed=False, indices=[int(labels[h // 2, w // 2])])[0]
    geo_unit = float(np.median(spread[np.isfinite(spread)])) * cfg.geo_scale + 1e-6
    return PreparedFrame((H, W), np.ascontiguousarray(work), scale, lab, edges, labels, n, size, mean, hist,
                         pix_palette, palette, kernel, ei, ej, blen, bedge, dcol, geo_cost, border, geo_unit, graph,
                         motion)
