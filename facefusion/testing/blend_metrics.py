"""Measuring the looks of a paste: what tests/test_blending.py asserts and benchmarks/bench_blend.py reports.

A swap is recorded once (the swapped crops, masks and affines the swapper hands the compositor) and composited again
under every BlendSettings, so the modes are compared on exactly the same swap. The metrics work in frame pixels:

- seam step: along the 0.5 contour of the combined mask, the L*a*b* distance (ΔE76) between the local mean colour of a
  ring just inside and of a ring just outside (both RING_WIDTH px wide, means taken with a Gaussian of SEAM_SIGMA px,
  each over its own ring only); the mean over the contour. A patch that does not take its surroundings' light shows
  as a large step.
- gradient energy: the mean squared lightness gradient over a band of BAND_WIDTH px either side of the contour.
- colour fidelity: ΔE76 between the mean L*a*b* colour of the target face and of the composite over the face region
  (the mask's inside, RING_WIDTH px in from the contour).
- detail: the high-pass energy (lightness minus its Gaussian blur) of the composite inside the face, which the
  feather paste leaves equal to the swapped crop's.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from facefusion.face_helper import paste_box
from facefusion.gpu.blending import BlendSettings, bgr_to_lab, color_statistics
from facefusion.gpu.compositor import Compositor, PasteJob
from facefusion.gpu.kernels import paste_matrix_for, warp_affine_host

RING_WIDTH = 4
SEAM_SIGMA = 6.0
BAND_WIDTH = 2
DETAIL_SIGMA = 2.0


class RecordingCompositor(Compositor):
	"""A compositor that keeps a copy of every paste it is asked for (host arrays), then pastes as usual."""

	def __init__(self, *args: object, **kwargs: object) -> None:
		super().__init__(*args, **kwargs)
		self.recorded: List[PasteJob] = []

	def paste_all(self, frame: np.ndarray, jobs: Sequence[PasteJob], in_place: bool = False) -> np.ndarray:
		for job in jobs:
			self.recorded.append(PasteJob(np.array(job.crop, dtype=np.float32), [np.array(mask) for mask in job.masks], np.array(job.affine)))
		return super().paste_all(frame, jobs, in_place)


def target_statistics_for(frame: np.ndarray, job: PasteJob, with_histogram: bool) -> Optional[object]:
	"""The target face's colour under the job's own crop and mask (what the swapper computes for a single frame)."""
	size = (int(job.crop.shape[1]), int(job.crop.shape[0]))
	target_crop = cv2.warpAffine(frame, np.asarray(job.affine, dtype=np.float64), size, borderMode=cv2.BORDER_REPLICATE)
	return color_statistics(target_crop.astype(np.float32), job.combined_mask(), with_histogram)


def composite(frame: np.ndarray, jobs: Sequence[PasteJob], settings: BlendSettings, reference: bool = False) -> np.ndarray:
	"""The frame with the recorded jobs pasted under settings (targets from the frame itself)."""
	with_histogram = settings.color_match == 'histogram'
	prepared = [replace(job, target=target_statistics_for(frame, job, with_histogram) if settings.matches_color else None) for job in jobs]
	return Compositor(reference=reference, settings=settings).paste_all(frame, prepared)


def frame_mask(frame_shape: Tuple[int, ...], jobs: Sequence[PasteJob]) -> np.ndarray:
	"""The combined masks of all faces in frame pixels (their maximum), float32 0..1."""
	result = np.zeros(frame_shape[:2], dtype=np.float32)
	for job in jobs:
		box = paste_box(frame_shape, (int(job.crop.shape[1]), int(job.crop.shape[0])), job.affine)
		x1, y1, x2, y2 = box
		if x2 <= x1 or y2 <= y1:
			continue
		warped = warp_affine_host(np.ascontiguousarray(job.combined_mask(), dtype=np.float32), paste_matrix_for(job.affine, box), (x2 - x1, y2 - y1), 'constant', 0.0, False)
		result[y1:y2, x1:x2] = np.maximum(result[y1:y2, x1:x2], np.clip(warped, 0, 1))
	return result


def paste_boxes_mask(frame_shape: Tuple[int, ...], jobs: Sequence[PasteJob]) -> np.ndarray:
	"""True inside any paste box."""
	inside = np.zeros(frame_shape[:2], dtype=bool)
	for job in jobs:
		x1, y1, x2, y2 = paste_box(frame_shape, (int(job.crop.shape[1]), int(job.crop.shape[0])), job.affine)
		inside[y1:y2, x1:x2] = True
	return inside


@dataclass
class SeamRegions:
	inner_ring: np.ndarray
	outer_ring: np.ndarray
	contour: np.ndarray
	band: np.ndarray
	face: np.ndarray


def seam_regions(mask: np.ndarray) -> SeamRegions:
	inside = (mask >= 0.5).astype(np.uint8)
	distance_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
	distance_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
	inner_ring = (inside > 0) & (distance_in <= RING_WIDTH)
	outer_ring = (inside == 0) & (distance_out <= RING_WIDTH)
	contour = (inside > 0) & (distance_in <= 1.0)
	band = ((inside > 0) & (distance_in <= BAND_WIDTH)) | ((inside == 0) & (distance_out <= BAND_WIDTH))
	face = (inside > 0) & (distance_in > RING_WIDTH)
	return SeamRegions(inner_ring, outer_ring, contour, band, face)


def local_mean(lab: np.ndarray, region: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
	weights = region.astype(np.float32)
	total = cv2.GaussianBlur(weights, (0, 0), SEAM_SIGMA)
	summed = cv2.GaussianBlur(lab * weights[..., None], (0, 0), SEAM_SIGMA)
	return summed / np.maximum(total, 1e-6)[..., None], total


def seam_step(frame: np.ndarray, mask: np.ndarray) -> float:
	"""The mean ΔE76 across the mask's 0.5 contour (see the module notes)."""
	regions = seam_regions(mask)
	lab = bgr_to_lab(frame.astype(np.float32))
	inner_mean, inner_total = local_mean(lab, regions.inner_ring)
	outer_mean, outer_total = local_mean(lab, regions.outer_ring)
	usable = regions.contour & (inner_total > 1e-3) & (outer_total > 1e-3)
	if not usable.any():
		return float('nan')
	return float(np.linalg.norm(inner_mean[usable] - outer_mean[usable], axis=-1).mean())


def gradient_energy(frame: np.ndarray, mask: np.ndarray) -> float:
	"""Mean squared lightness gradient in the band across the contour."""
	lightness = bgr_to_lab(frame.astype(np.float32))[..., 0]
	gradient_x = cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3) / 8
	gradient_y = cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3) / 8
	band = seam_regions(mask).band
	return float((gradient_x[band] ** 2 + gradient_y[band] ** 2).mean())


def color_fidelity(target: np.ndarray, result: np.ndarray, mask: np.ndarray) -> float:
	"""ΔE76 between the mean colours of the target face and the composited face (lower = the target's light)."""
	face = seam_regions(mask).face
	target_mean = bgr_to_lab(target.astype(np.float32))[face].mean(axis=0)
	result_mean = bgr_to_lab(result.astype(np.float32))[face].mean(axis=0)
	return float(np.linalg.norm(target_mean - result_mean))


def detail_energy(frame: np.ndarray, mask: np.ndarray) -> float:
	"""High-pass energy of the lightness inside the face."""
	lightness = bgr_to_lab(frame.astype(np.float32))[..., 0]
	high_pass = lightness - cv2.GaussianBlur(lightness, (0, 0), DETAIL_SIGMA)
	return float((high_pass[seam_regions(mask).face] ** 2).mean())


@dataclass
class LooksReport:
	seam_step: float
	gradient_energy: float
	color_fidelity: float
	detail_energy: float


def measure(target: np.ndarray, result: np.ndarray, mask: np.ndarray) -> LooksReport:
	return LooksReport(seam_step(result, mask), gradient_energy(result, mask), color_fidelity(target, result, mask), detail_energy(result, mask))


def tint(crop: np.ndarray, bgr_gain: Sequence[float], offset: float = 0.0) -> np.ndarray:
	"""A swap tinted on purpose: per-channel gain and an offset, 0..255 float32."""
	return np.clip(crop.astype(np.float32) * np.asarray(bgr_gain, dtype=np.float32) + np.float32(offset), 0, 255).astype(np.float32)
