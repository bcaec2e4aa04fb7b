"""MTCNN (facenet-pytorch's weights and decision rules) computed faster, with the same boxes, on CPU.

``FastMTCNNDetector`` gives the boxes, scores and 5 points of ``src.face.detection.MTCNNDetector``
(facenet-pytorch's ``MTCNN.detect``) up to float rounding: the same image pyramid, P-Net candidates, NMS
steps, R-Net and O-Net crops and box regressions, with facenet-pytorch's own networks and box helpers. What
differs is how the pixels are produced:

- every image pyramid level and every 24×24 / 48×48 candidate crop is an *area* resampling (PyTorch's
  ``interpolate(mode="area")``, i.e. adaptive average pooling). Here they come from one integral image per
  frame: window sums of uint8 pixels are exact integers and ``(sum / rows) / cols`` in float32 is
  bit-identical to PyTorch's kernel, while costing a few gathers instead of a pass over the full frame per
  level and one ``interpolate`` call per candidate;
- the three networks run in channels-last layout (faster convolutions and max-pools on CPU; equal up to float
  rounding), R-/O-Net on small batches of candidates, P-Net on the small pyramid levels of several frames at
  once;
- ``detect_side``: the pyramid levels finer than those MTCNN would use on a copy of the frame scaled to that
  shorter side are skipped (``None``/0: none skipped). The first level kept is the one of the full-resolution
  ladder nearest to the copy's first level, so faces down to about ``min_face_size * shorter_side /
  detect_side`` pixels (±16 %; 40 px at 720p with 360) are still searched for. The levels kept are computed
  from the full-resolution frame exactly as MTCNN computes them, so a face is found with the box MTCNN gives
  on the full frame; what is lost are smaller faces and the rare effect of their candidates on a large face's
  box.

A candidate box entirely outside the frame (empty crop) is dropped; facenet-pytorch would misalign its
R-/O-Net inputs there.

Measured on one CPU thread (``detect_side=360``, faces pasted on photographs with sensor noise): ~33 ms per
854×480 frame and ~52 ms per 1280×720 frame, against ~200 ms for facenet-pytorch's MTCNN at 720p; largest box
difference from that MTCNN on the full frames 0.0002 px (``benchmarks/bench_data.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from src.face.detection import FaceDetection, FaceDetector

# P-Net inputs of several frames are batched while their total area stays below this (large levels run one by
# one: a big batch of large maps is slower per frame on CPU).
_PNET_BATCH_PIXELS = 1 << 17
# R-/O-Net candidates per call: small batches stay in cache (3× faster per candidate than batches of 512).
_REFINE_BATCH = {24: 64, 48: 32}


def integral_dtype(height: int, width: int) -> type:
    """int32 while a frame's pixel sum fits (frames up to ~8.4 Mpx, 4K included), else float64 (exact)."""
    return np.int32 if 255 * height * width < 2**31 else np.float64


def integral_images(frames: list[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    """``[N, H + 1, W + 1, C]`` summed-area tables of equal-size uint8 frames (``cv2.integral``; exact).

    ``out``: a buffer of that shape and ``integral_dtype`` to fill (reusing one avoids faulting in fresh pages
    for every video).
    """
    import cv2

    height, width, channels = frames[0].shape
    dtype = integral_dtype(height, width)
    shape = (len(frames), height + 1, width + 1, channels)
    if out is None or out.shape != shape or out.dtype != dtype:
        out = np.empty(shape, dtype=dtype)
    depth = cv2.CV_32S if dtype == np.int32 else cv2.CV_64F
    for position, frame in enumerate(frames):
        cv2.integral(np.ascontiguousarray(frame), out[position], depth)
    return out


def area_bounds(size_in: int | np.ndarray, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) input index of every output cell of adaptive average pooling.

    ``size_in`` may be an array (one input length per row): returns ``[..., size_out]`` arrays.
    """
    size_in = np.asarray(size_in, dtype=np.int64)[..., None]
    j = np.arange(size_out, dtype=np.int64)
    return (j * size_in) // size_out, ((j + 1) * size_in + size_out - 1) // size_out


def _finish_means(sums: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``(sum / rows) / cols`` in float32 (PyTorch's area interpolation on uint8 values; sums exact below
    2^24).

    ``sums``: ``[B, h, w, C]`` integers; ``rows``: ``[B, h]``; ``cols``: ``[B, w]``. Returns ``[B, C, h, w]``.
    """
    means = (sums.astype(np.float32) / rows.astype(np.float32)[:, :, None, None]) / cols.astype(np.float32)[
        :, None, :, None
    ]
    return np.ascontiguousarray(means.transpose(0, 3, 1, 2))


def area_resize_frames(table: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Every frame of ``table`` (stacked integral images) resized to ``size = (h, w)`` by area: ``[N, C, h,
    w]``."""
    count, height, width = table.shape[0], table.shape[1] - 1, table.shape[2] - 1
    y0, y1 = area_bounds(height, size[0])
    x0, x1 = area_bounds(width, size[1])
    strips = np.take(table, y1, axis=1) - np.take(table, y0, axis=1)  # row-window sums: [N, h, W + 1, C]
    sums = np.take(strips, x1, axis=2) - np.take(strips, x0, axis=2)
    return _finish_means(sums, np.tile(y1 - y0, (count, 1)), np.tile(x1 - x0, (count, 1)))


def area_resize_crops(
    table: np.ndarray,
    index: np.ndarray,
    top: np.ndarray,
    bottom: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    size: int,
) -> np.ndarray:
    """Crops ``[top, bottom) × [left, right)`` of frames ``index`` resized to ``size²`` by area: ``[B, C, s,
    s]``."""
    y0, y1 = area_bounds(bottom - top, size)
    x0, x1 = area_bounds(right - left, size)
    y0, y1, x0, x1 = y0 + top[:, None], y1 + top[:, None], x0 + left[:, None], x1 + left[:, None]
    height, width = table.shape[1], table.shape[2]
    flat = table.reshape(-1, table.shape[3])
    base = index.astype(np.int64)[:, None, None] * (height * width)

    def corner(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.take(flat, base + rows[:, :, None] * width + cols[:, None, :], axis=0)

    sums = corner(y1, x1) - corner(y0, x1) - corner(y1, x0) + corner(y0, x0)
    return _finish_means(sums, y1 - y0, x1 - x0)


def pyramid_scales(
    height: int, width: int, min_face_size: float, factor: float, detect_side: int | None = None
) -> list[float]:
    """MTCNN's pyramid scales (facenet-pytorch's loop) less the levels finer than on a ``detect_side`` copy.

    The copy's first level, scale ``m = 12 / min_face_size`` of the copy, is scale ``s = m * detect_side /
    shorter side`` of the frame; the frame's levels above ``s / sqrt(factor)`` (half a ladder step finer) are
    skipped, so the first level kept is the ladder level nearest to ``s``.
    """
    m = 12.0 / min_face_size
    minl = min(height, width) * m
    scale, scales = m, []
    while minl >= 12:
        scales.append(scale)
        scale = scale * factor
        minl = minl * factor
    if detect_side and detect_side < min(height, width):
        finest = m * detect_side / min(height, width) / math.sqrt(factor)
        scales = [s for s in scales if s <= finest]
    return scales


class FastMTCNNDetector(FaceDetector):
    """facenet-pytorch's MTCNN with the boxes of ``MTCNNDetector``, faster (see the module docstring).

    ``detect_side``: skip the pyramid levels finer than those of MTCNN on a copy with that shorter side
    (``None``: all, identical to ``MTCNNDetector`` up to float rounding). ``chunk_pixels`` bounds the frames
    processed together (their integral images are held at once). Thread count is the caller's
    (``torch.set_num_threads``).
    """

    name = "mtcnn"

    def __init__(
        self,
        min_score: float = 0.9,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        detect_side: int | None = None,
        chunk_pixels: int = 8 * 1280 * 720,
    ) -> None:
        super().__init__(min_score)
        from facenet_pytorch import MTCNN

        mtcnn = MTCNN(keep_all=True, device="cpu", post_process=False, select_largest=False)
        self.pnet = mtcnn.pnet.eval().to(memory_format=torch.channels_last)
        self.rnet = mtcnn.rnet.eval().to(memory_format=torch.channels_last)
        self.onet = mtcnn.onet.eval().to(memory_format=torch.channels_last)
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.detect_side = int(detect_side) if detect_side else None
        self.chunk_pixels = int(chunk_pixels)
        self._buffer: np.ndarray | None = None  # integral images, reused from chunk to chunk

    def _detect_many(self, images: list[np.ndarray]) -> list[list[FaceDetection]]:
        results: list[list[FaceDetection]] = [[] for _ in images]
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(image.shape, []).append(index)
        for indices in groups.values():
            height, width = images[indices[0]].shape[:2]
            chunk = max(1, self.chunk_pixels // (height * width))
            for start in range(0, len(indices), chunk):
                part = indices[start : start + chunk]
                with torch.inference_mode():
                    found = self._detect_equal([images[i] for i in part])
                for index, dets in zip(part, found, strict=True):
                    results[index] = dets
        return results

    # ------------------------------------------------------------------------------------------------ stages

    def _detect_equal(self, frames: list[np.ndarray]) -> list[list[FaceDetection]]:
        """MTCNN's three stages on equal-size frames (facenet-pytorch's ``detect_face`` decisions)."""
        from facenet_pytorch.models.utils.detect_face import batched_nms_numpy, bbreg, rerec
        from torchvision.ops.boxes import batched_nms

        height, width = frames[0].shape[:2]
        shape = (len(frames), height + 1, width + 1, 3)
        dtype, elements = integral_dtype(height, width), int(np.prod(shape))
        if self._buffer is None or self._buffer.dtype != dtype or self._buffer.size < elements:
            self._buffer = np.empty(elements, dtype=dtype)
        table = integral_images(frames, self._buffer[:elements].reshape(shape))
        boxes, image_inds = self._stage_one(table, height, width)
        if len(boxes):
            boxes, image_inds, out = self._refine(table, boxes, image_inds, 24, self.rnet, height, width)
            score = out[1][:, 1]
            keep = score > self.thresholds[1]
            boxes = torch.cat((boxes[keep, :4], score[keep].unsqueeze(1)), dim=1)
            image_inds, reg = image_inds[keep], out[0][keep]
            pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
            boxes, image_inds, reg = boxes[pick], image_inds[pick], reg[pick]
            boxes = rerec(bbreg(boxes, reg))
        points = torch.zeros(0, 5, 2)
        if len(boxes):
            boxes, image_inds, out = self._refine(table, boxes, image_inds, 48, self.onet, height, width)
            reg, marks, score = out[0], out[1].permute(1, 0), out[2][:, 1]
            keep = score > self.thresholds[2]
            marks = marks[:, keep]
            boxes = torch.cat((boxes[keep, :4], score[keep].unsqueeze(1)), dim=1)
            image_inds, reg = image_inds[keep], reg[keep]
            w_i = boxes[:, 2] - boxes[:, 0] + 1
            h_i = boxes[:, 3] - boxes[:, 1] + 1
            points_x = w_i.repeat(5, 1) * marks[:5, :] + boxes[:, 0].repeat(5, 1) - 1
            points_y = h_i.repeat(5, 1) * marks[5:10, :] + boxes[:, 1].repeat(5, 1) - 1
            points = torch.stack((points_x, points_y)).permute(2, 1, 0)
            boxes = bbreg(boxes, reg)
            pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
            boxes, image_inds, points = boxes[pick], image_inds[pick], points[pick]
        boxes_np = boxes.numpy().astype(np.float64)
        points_np = points.numpy().astype(np.float64)
        inds = image_inds.numpy() if len(image_inds) else np.zeros(0, dtype=np.int64)
        out_lists: list[list[FaceDetection]] = [[] for _ in frames]
        for position, frame_index in enumerate(inds.tolist()):
            out_lists[frame_index].append(
                FaceDetection(
                    box=boxes_np[position, :4].copy(),
                    score=float(boxes_np[position, 4]),
                    landmarks=points_np[position].copy(),
                    source="mtcnn",
                )
            )
        return out_lists

    def _stage_one(self, table: np.ndarray, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net over the pyramid: candidate boxes (with regressions) and their frame indices, after both
        NMS."""
        from facenet_pytorch.models.utils.detect_face import generateBoundingBox, rerec
        from torchvision.ops.boxes import batched_nms

        count = table.shape[0]
        scales = pyramid_scales(height, width, self.min_face_size, self.factor, self.detect_side)
        boxes, image_inds, picks, offset = [], [], [], 0
        for scale in scales:
            size = (int(height * scale + 1), int(width * scale + 1))
            per_call = max(1, _PNET_BATCH_PIXELS // (size[0] * size[1]))
            level_boxes, level_inds = [], []
            for start in range(0, count, per_call):
                level = area_resize_frames(table[start : start + per_call], size)
                data = (torch.from_numpy(level) - 127.5) * 0.0078125
                reg, probs = self.pnet(data.contiguous(memory_format=torch.channels_last))
                found, inds = generateBoundingBox(
                    reg.contiguous(), probs[:, 1].contiguous(), scale, self.thresholds[0]
                )
                level_boxes.append(found)
                level_inds.append(inds + start)
            found, inds = torch.cat(level_boxes), torch.cat(level_inds)
            pick = batched_nms(found[:, :4], found[:, 4], inds, 0.5)
            boxes.append(found)
            image_inds.append(inds)
            picks.append(pick + offset)
            offset += found.shape[0]
        if not boxes:
            return torch.zeros(0, 5), torch.zeros(0, dtype=torch.int64)
        all_boxes, all_inds = torch.cat(boxes)[torch.cat(picks)], torch.cat(image_inds)[torch.cat(picks)]
        pick = batched_nms(all_boxes[:, :4], all_boxes[:, 4], all_inds, 0.7)
        all_boxes, all_inds = all_boxes[pick], all_inds[pick]
        regw = all_boxes[:, 2] - all_boxes[:, 0]
        regh = all_boxes[:, 3] - all_boxes[:, 1]
        qq1 = all_boxes[:, 0] + all_boxes[:, 5] * regw
        qq2 = all_boxes[:, 1] + all_boxes[:, 6] * regh
        qq3 = all_boxes[:, 2] + all_boxes[:, 7] * regw
        qq4 = all_boxes[:, 3] + all_boxes[:, 8] * regh
        all_boxes = torch.stack([qq1, qq2, qq3, qq4, all_boxes[:, 4]]).permute(1, 0)
        return rerec(all_boxes), all_inds

    def _refine(
        self,
        table: np.ndarray,
        boxes: torch.Tensor,
        image_inds: torch.Tensor,
        size: int,
        net,
        height: int,
        width: int,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """Run R-Net (24) or O-Net (48) on the area-resized crops of ``boxes`` (facenet-pytorch's ``pad``
        clipping).

        Returns the boxes and frame indices kept (non-empty crops) and the network outputs.
        """
        from facenet_pytorch.models.utils.detect_face import pad

        y, ey, x, ex = pad(boxes, width, height)
        valid = (ey > y - 1) & (ex > x - 1)
        if not valid.all():
            keep = torch.from_numpy(np.flatnonzero(valid))
            boxes, image_inds = boxes[keep], image_inds[keep]
            y, ey, x, ex = y[valid], ey[valid], x[valid], ex[valid]
        if not len(boxes):  # (the networks cannot run on an empty batch)
            widths = (4, 2) if size == 24 else (4, 10, 2)
            return boxes, image_inds, tuple(torch.zeros(0, n) for n in widths)
        crops = area_resize_crops(
            table,
            image_inds.numpy(),
            y.astype(np.int64) - 1,
            ey.astype(np.int64),
            x.astype(np.int64) - 1,
            ex.astype(np.int64),
            size,
        )
        data = ((torch.from_numpy(crops) - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)
        step = _REFINE_BATCH[size]
        outs = [net(data[i : i + step]) for i in range(0, len(data), step)]
        return boxes, image_inds, tuple(torch.cat(parts) for parts in zip(*outs, strict=True))
