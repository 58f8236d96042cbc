"""The per-frame figures of the quality monitor, each on a small region so the monitor stays cheap.

- PSNR / SSIM of the output against the input, inside a face box (how much the processors changed) and outside
  every paste box (which must be lossless: the processors own only their paste boxes).
- Temporal PSNR of one face region between consecutive frames with the camera motion undone: the earlier frame is
  warped onto the later one by a previous -> current similarity (the tracker's flow), then compared inside the
  later box. Only the box is warped, not the frame.
- Landmark jitter: the second difference of the points the aligner used (steady motion has none).
SSIM is Wang et al.'s, on the grey picture with an 11-tap Gaussian window (sigma 1.5); inside faces on the region
shrunk to at most SSIM_MAX_SIDE pixels.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from facefusion.types import Matrix, VisionFrame

Region = Tuple[int, int, int, int]
SSIM_C1 = (0.01 * 255.0) ** 2
SSIM_C2 = (0.03 * 255.0) ** 2
# face regions are shrunk to this longest side (px) for SSIM
SSIM_MAX_SIDE = 128
# a face region smaller than this (either side, px) gives no meaningful SSIM / tPSNR
MIN_REGION_SIDE = 8
# the fallback motion estimate (no tracker flow): corners and Lucas-Kanade on the input face region
MOTION_FEATURES = 60
MOTION_MIN_POINTS = 6


def clip_region(box: Sequence[float], shape: Tuple[int, ...]) -> Optional[Region]:
	"""(x1, y1, x2, y2) rounded outwards and clipped to the frame; None when too small to measure."""
	height, width = shape[:2]
	x1, y1, x2, y2 = (float(value) for value in list(box)[:4])
	left, top = int(max(math.floor(x1), 0)), int(max(math.floor(y1), 0))
	right, bottom = int(min(math.ceil(x2), width)), int(min(math.ceil(y2), height))
	if right - left < MIN_REGION_SIDE or bottom - top < MIN_REGION_SIDE:
		return None
	return left, top, right, bottom


def crop(frame: VisionFrame, region: Region) -> np.ndarray:
	left, top, right, bottom = region
	return frame[top:bottom, left:right]


def mse_to_psnr(mse: float, peak: float = 255.0) -> float:
	if mse <= 0.0:
		return float('inf')
	return 10.0 * math.log10(peak * peak / mse)


def psnr(first: np.ndarray, second: np.ndarray) -> float:
	# cv2.norm sums the squared differences without float copies of the pictures
	squared = cv2.norm(np.ascontiguousarray(first), np.ascontiguousarray(second), cv2.NORM_L2SQR)
	return mse_to_psnr(float(squared) / max(first.size, 1))


def gray(picture: np.ndarray) -> np.ndarray:
	return cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY) if picture.ndim == 3 else picture


def ssim_map(first: np.ndarray, second: np.ndarray) -> np.ndarray:
	"""The per-pixel SSIM of two grey pictures (float32)."""
	x = first.astype(np.float32)
	y = second.astype(np.float32)

	def blur(picture: np.ndarray) -> np.ndarray:
		return cv2.GaussianBlur(picture, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

	mean_x, mean_y = blur(x), blur(y)
	variance_x = blur(x * x) - mean_x * mean_x
	variance_y = blur(y * y) - mean_y * mean_y
	covariance = blur(x * y) - mean_x * mean_y
	numerator = (2.0 * mean_x * mean_y + SSIM_C1) * (2.0 * covariance + SSIM_C2)
	denominator = (mean_x * mean_x + mean_y * mean_y + SSIM_C1) * (variance_x + variance_y + SSIM_C2)
	return numerator / denominator


def ssim(first: np.ndarray, second: np.ndarray) -> float:
	if np.array_equal(first, second):
		return 1.0
	return float(np.mean(ssim_map(gray(first), gray(second))))


def region_psnr_ssim(output: VisionFrame, target: VisionFrame, region: Region) -> Tuple[float, float]:
	"""Output against input inside one region: PSNR at full resolution, SSIM on the region shrunk to at most
	SSIM_MAX_SIDE pixels (its cost grows with the area, and structure at a face's scale shows at that size)."""
	out_crop, in_crop = crop(output, region), crop(target, region)
	value = psnr(out_crop, in_crop)
	longest = max(out_crop.shape[:2])
	if longest > SSIM_MAX_SIDE:
		factor = SSIM_MAX_SIDE / float(longest)
		out_crop = cv2.resize(gray(out_crop), None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
		in_crop = cv2.resize(gray(in_crop), None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
	return value, ssim(out_crop, in_crop)


def outside_psnr_ssim(output: VisionFrame, target: VisionFrame, boxes: Sequence[Region]) -> Tuple[float, float, int]:
	"""Output against input outside every paste box: PSNR, SSIM and the count of changed pixels. The usual answer
	(nothing changed: inf, 1.0, 0) costs one absdiff over the frame; the SSIM is only computed when pixels changed."""
	difference = cv2.absdiff(output, target)
	for left, top, right, bottom in boxes:
		difference[top:bottom, left:right] = 0
	flat = difference.reshape(difference.shape[0], -1)
	if cv2.countNonZero(flat) == 0:
		return float('inf'), 1.0, 0
	changed = np.any(difference > 0, axis=2) if difference.ndim == 3 else difference > 0
	outside = np.ones(changed.shape, bool)
	for left, top, right, bottom in boxes:
		outside[top:bottom, left:right] = False
	squared = difference.astype(np.float32) ** 2
	mse = float(squared[outside].mean())
	score = float(ssim_map(gray(output), gray(target))[outside].mean())
	return mse_to_psnr(mse), score, int(changed.sum())


def warp_region(previous: VisionFrame, motion: Matrix, region: Region) -> np.ndarray:
	"""The earlier frame moved by motion (previous pixel -> current pixel), sampled on the current region only."""
	left, top, right, bottom = region
	matrix = np.asarray(motion, dtype=np.float64).copy()
	matrix[:, 2] -= (left, top)
	return cv2.warpAffine(previous, matrix, (right - left, bottom - top), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def temporal_psnr(previous: VisionFrame, current: VisionFrame, region: Region, motion: Optional[Matrix]) -> float:
	"""tPSNR of one region; without a motion the frames are compared as they are."""
	if motion is None:
		return psnr(crop(previous, region), crop(current, region))
	return psnr(warp_region(previous, motion, region), crop(current, region))


def estimate_motion(previous: VisionFrame, current: VisionFrame, region: Region) -> Optional[Matrix]:
	"""A previous -> current similarity of the picture around a face, for runs where the tracker has no flow
	(--face-tracker none --temporal-smoothing none): corners of the earlier input region followed by Lucas-Kanade."""
	left, top, right, bottom = region
	previous_gray = gray(crop(previous, region))
	current_gray = gray(crop(current, region))
	corners = cv2.goodFeaturesToTrack(previous_gray, MOTION_FEATURES, 0.01, max(2.0, (right - left) / 16.0), blockSize=5)
	if corners is None or len(corners) < MOTION_MIN_POINTS:
		return None
	moved, status, _ = cv2.calcOpticalFlowPyrLK(previous_gray, current_gray, corners, None, winSize=(15, 15), maxLevel=2)
	kept = status.ravel() == 1
	if kept.sum() < MOTION_MIN_POINTS:
		return None
	origin = np.array([left, top], np.float64)
	before = corners.reshape(-1, 2)[kept].astype(np.float64) + origin
	after = moved.reshape(-1, 2)[kept].astype(np.float64) + origin
	motion, _ = cv2.estimateAffinePartial2D(before, after, method=cv2.RANSAC, ransacReprojThreshold=1.0)
	return motion


def second_difference_rms(older: np.ndarray, middle: np.ndarray, newest: np.ndarray) -> float:
	"""RMS over the points of |x[t] - 2 x[t-1] + x[t-2]| (px)."""
	second = np.asarray(newest, np.float64) - 2.0 * np.asarray(middle, np.float64) + np.asarray(older, np.float64)
	return float(np.sqrt(np.mean(np.sum(second.reshape(-1, 2) ** 2, axis=1))))
