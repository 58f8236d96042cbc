"""Numbers for judging tracking and smoothing: landmark jitter, error against known landmarks, temporal PSNR.

- Jitter is the RMS of the second difference of a landmark series (x[t+1] - 2 x[t] + x[t-1]), per point as a 2-D
  length in pixels. The first difference would count steady motion (a pan) as jitter; the second difference of
  steady motion is zero, so what is left is shake.
- Error is the mean Euclidean distance between landmarks and the true ones, in pixels.
- Temporal PSNR (tPSNR) is the PSNR between consecutive frames inside the face region, optionally after warping the
  earlier frame by the known motion, so that only what changed beyond the motion (flicker, shaking crops) counts.
  ``aligned_crop_tpsnr`` applies it to the aligned face crops a swapper would be fed: with a steady alignment, the
  crops of a rigidly moving face are nearly the same from frame to frame.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from facefusion.types import BoundingBox, Matrix, Points, VisionFrame

Series = Sequence[Optional[Points]]


def as_series_array(series: Series, point_count: Optional[int] = None) -> np.ndarray:
	"""(T, N, 2) float64 with NaN where a frame has no landmarks."""
	count = point_count or next((len(np.asarray(points).reshape(-1, 2)) for points in series if points is not None), 0)
	array = np.full((len(series), count, 2), np.nan)
	for index, points in enumerate(series):
		if points is not None:
			array[index] = np.asarray(points, dtype=np.float64).reshape(-1, 2)
	return array


def second_differences(series: Series) -> np.ndarray:
	"""The per-point 2-D lengths of the second differences over every run of three consecutive present frames."""
	array = as_series_array(series)
	if len(array) < 3:
		return np.zeros(0)
	second = array[2:] - 2.0 * array[1:-1] + array[:-2]
	lengths = np.linalg.norm(second, axis=-1)
	return lengths[np.isfinite(lengths)]


def landmark_jitter(series: Series) -> float:
	"""RMS of the second difference (px) of one landmark series; NaN when no three consecutive frames exist."""
	lengths = second_differences(series)
	return float(np.sqrt(np.mean(lengths ** 2))) if len(lengths) else float('nan')


def pooled_jitter(all_series: Iterable[Series]) -> float:
	"""Jitter over several series (e.g. one per face) pooled: every second difference of every series counts once."""
	lengths = np.concatenate([second_differences(series) for series in all_series] or [np.zeros(0)])
	return float(np.sqrt(np.mean(lengths ** 2))) if len(lengths) else float('nan')


def point_errors(predicted: Series, truth: Series) -> np.ndarray:
	"""Per-point distances (px) where both are present."""
	predicted_array = as_series_array(predicted)
	truth_array = as_series_array(truth, predicted_array.shape[1] if predicted_array.size else None)
	if predicted_array.size == 0 or truth_array.size == 0:
		return np.zeros(0)
	lengths = np.linalg.norm(predicted_array - truth_array, axis=-1)
	return lengths[np.isfinite(lengths)]


def landmark_error(predicted: Series, truth: Series) -> float:
	"""Mean distance (px) between predicted and true landmarks over the frames where both exist."""
	errors = point_errors(predicted, truth)
	return float(np.mean(errors)) if len(errors) else float('nan')


def pooled_error(pairs: Iterable[Tuple[Series, Series]]) -> float:
	errors = np.concatenate([point_errors(predicted, truth) for predicted, truth in pairs] or [np.zeros(0)])
	return float(np.mean(errors)) if len(errors) else float('nan')


def psnr(first: np.ndarray, second: np.ndarray, mask: Optional[np.ndarray] = None, peak: float = 255.0) -> float:
	"""PSNR in dB over the pixels where mask is true (all when None); inf for identical pictures."""
	difference = (np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)) ** 2
	if mask is not None:
		# a 2-D mask over an H x W x C picture selects whole pixels
		difference = difference[np.asarray(mask, dtype=bool)]
	mse = float(np.mean(difference)) if difference.size else 0.0
	if mse <= 0:
		return float('inf')
	return 10.0 * math.log10(peak * peak / mse)


def box_mask(shape: Tuple[int, ...], box: BoundingBox) -> np.ndarray:
	height, width = shape[:2]
	x1, y1, x2, y2 = np.asarray(box, dtype=np.float64)[:4]
	mask = np.zeros((height, width), bool)
	mask[int(max(np.floor(y1), 0)):int(min(np.ceil(y2), height)), int(max(np.floor(x1), 0)):int(min(np.ceil(x2), width))] = True
	return mask


def temporal_psnr(previous: VisionFrame, current: VisionFrame, box: BoundingBox, motion: Optional[Matrix] = None) -> float:
	"""PSNR between consecutive frames inside the face box of the current frame. With motion (previous -> current
	pixel mapping, e.g. the camera path), the previous frame is warped onto the current one first."""
	if motion is not None:
		height, width = current.shape[:2]
		previous = cv2.warpAffine(previous, np.asarray(motion, dtype=np.float64), (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
	return psnr(previous, current, box_mask(current.shape, box))


def relative_motion(previous_transform: Matrix, current_transform: Matrix) -> Matrix:
	"""previous-frame pixel -> current-frame pixel, given both frames' photo -> frame transforms."""
	previous_full = np.vstack([np.asarray(previous_transform, dtype=np.float64), [0.0, 0.0, 1.0]])
	current_full = np.vstack([np.asarray(current_transform, dtype=np.float64), [0.0, 0.0, 1.0]])
	return (current_full @ np.linalg.inv(previous_full))[:2]


def mean_finite(values: Iterable[float]) -> float:
	array = np.array([value for value in values if np.isfinite(value)], dtype=np.float64)
	return float(np.mean(array)) if len(array) else float('nan')


def aligned_crop_tpsnr(frames: Sequence[VisionFrame], landmarks: Series, template: str = 'arcface_128', crop_size: int = 128) -> float:
	"""Mean PSNR between consecutive aligned crops of one face (the crops a swapper would get), over the frames where
	the face has landmarks on both sides. Higher is steadier; shaky landmarks shake the crop."""
	from facefusion.face_helper import warp_face_by_face_landmark_5
	values: List[float] = []
	previous_crop: Optional[np.ndarray] = None
	for frame, points in zip(frames, landmarks):
		if points is None:
			previous_crop = None
			continue
		crop, _ = warp_face_by_face_landmark_5(frame, points, template, crop_size)
		if previous_crop is not None:
			values.append(psnr(previous_crop, crop))
		previous_crop = crop
	return mean_finite(values)


def match_faces_to_truth(truth: Dict[str, Points], faces_points: Sequence[Points], limit: float = 0.5) -> Dict[str, int]:
	"""Truth key -> index of the face whose five points lie closest (mean distance under `limit` eye distances);
	greedy, each face used once."""
	candidates = []
	for key, true_points in truth.items():
		true_array = np.asarray(true_points, dtype=np.float64).reshape(-1, 2)
		eye_distance = max(float(np.linalg.norm(true_array[1] - true_array[0])), 1.0)
		for index, points in enumerate(faces_points):
			distance = float(np.mean(np.linalg.norm(np.asarray(points, dtype=np.float64).reshape(-1, 2) - true_array, axis=1)))
			if distance < limit * eye_distance:
				candidates.append((distance, key, index))
	candidates.sort(key=lambda item: item[0])
	matches: Dict[str, int] = {}
	used = set()
	for _, key, index in candidates:
		if key in matches or index in used:
			continue
		matches[key] = index
		used.add(index)
	return matches


def feathered_mask(crop_size: int, feather: float = 0.15) -> np.ndarray:
	"""A box mask with soft edges (feather as a share of the crop), like a swapper's default box mask."""
	border = max(int(crop_size * feather / 2), 1)
	mask = np.zeros((crop_size, crop_size), np.float32)
	mask[border:-border, border:-border] = 1.0
	return cv2.GaussianBlur(mask, (0, 0), border * 0.5)


def paste_constant_face(frames: Sequence[VisionFrame], landmarks: Series, template: str = 'arcface_128', crop_size: int = 128) -> List[VisionFrame]:
	"""A stand-in for a swap whose result never changes: one fixed face picture (the first aligned crop, mirrored
	so it differs from the target) pasted onto every frame through that frame's alignment. How steady the pasted
	face sits on the moving target is then down to the landmarks alone -- what tracking and smoothing change."""
	from facefusion.face_helper import paste_back, warp_face_by_face_landmark_5
	mask = feathered_mask(crop_size)
	face: Optional[np.ndarray] = None
	results = []
	for frame, points in zip(frames, landmarks):
		if points is None:
			results.append(frame.copy())
			continue
		crop, matrix = warp_face_by_face_landmark_5(frame, points, template, crop_size)
		if face is None:
			face = np.ascontiguousarray(crop[:, ::-1])
		results.append(paste_back(frame, face, mask, matrix))
	return results


def motion_compensated_tpsnr(frames: Sequence[VisionFrame], boxes: Sequence[Optional[BoundingBox]], motions: Sequence[Optional[Matrix]]) -> float:
	"""Mean tPSNR over consecutive frames (t-1, t) where boxes[t] and motions[t] (frame t-1 -> frame t) are given."""
	values = []
	for index in range(1, len(frames)):
		if boxes[index] is None or motions[index] is None:
			continue
		values.append(temporal_psnr(frames[index - 1], frames[index], boxes[index], motions[index]))
	return mean_finite(values)
