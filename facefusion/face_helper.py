"""Geometry shared by the face path: warp templates, similarity estimation, crops, paste-back, NMS and rotations.

The math (templates, similarity estimation, warp, paste-back) is FaceFusion 3.5.0's; the code is ours.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from facefusion.stage_timer import STAGE_TIMER
from facefusion.types import BoundingBox, Mask, Matrix, Points, VisionFrame

# Five points (image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner) in the
# unit square; multiplied by the crop size they say where each point lands in the crop.
WARP_TEMPLATES: Dict[str, np.ndarray] = {
	'arcface_112_v1': np.array([
		[0.35473214, 0.45658929],
		[0.64526786, 0.45658929],
		[0.50000000, 0.61154464],
		[0.37913393, 0.77687500],
		[0.62086607, 0.77687500]
	]),
	'arcface_112_v2': np.array([
		[0.34191607, 0.46157411],
		[0.65653393, 0.45983393],
		[0.50022500, 0.64050536],
		[0.37097589, 0.82469196],
		[0.63151696, 0.82325089]
	]),
	'arcface_128': np.array([
		[0.36167656, 0.40387734],
		[0.63696719, 0.40235469],
		[0.50019687, 0.56044219],
		[0.38710391, 0.72160547],
		[0.61507734, 0.72034453]
	]),
	'dfl_whole_face': np.array([
		[0.35342266, 0.39285716],
		[0.62797622, 0.39285716],
		[0.48660713, 0.54017860],
		[0.38839287, 0.68750011],
		[0.59821427, 0.68750011]
	]),
	'ffhq_512': np.array([
		[0.37691676, 0.46864664],
		[0.62285697, 0.46912813],
		[0.50123859, 0.61331904],
		[0.39308822, 0.72541100],
		[0.61150205, 0.72490465]
	]),
	'mtcnn_512': np.array([
		[0.36562865, 0.46733799],
		[0.63305391, 0.46585885],
		[0.50019127, 0.61942959],
		[0.39032951, 0.77598822],
		[0.61178945, 0.77476328]
	]),
	'styleganex_384': np.array([
		[0.42353745, 0.52289879],
		[0.57725008, 0.52319972],
		[0.50123859, 0.61331904],
		[0.43364461, 0.68337652],
		[0.57015325, 0.68306005]
	])
}

Template = Union[str, np.ndarray]
CropSize = Union[int, Sequence[float]]


def as_size(crop_size: CropSize) -> Tuple[int, int]:
	"""(w, h) from an int or a pair."""
	if isinstance(crop_size, (int, np.integer)):
		return int(crop_size), int(crop_size)
	return int(crop_size[0]), int(crop_size[1])


def scaled_template(template: Template, crop_size: CropSize) -> np.ndarray:
	"""The template's five points in crop pixels (a float crop size, e.g. (1, 1), gives unit-square points)."""
	points = WARP_TEMPLATES[template] if isinstance(template, str) else np.asarray(template, dtype=np.float64)
	if isinstance(crop_size, (int, float, np.integer, np.floating)):
		return points * float(crop_size)
	return points * np.asarray(crop_size[:2], dtype=np.float64)


def estimate_similarity_least_squares(source: np.ndarray, target: np.ndarray) -> Matrix:
	"""Closed-form 4-DOF similarity (least squares); only used when OpenCV's RANSAC gives up on degenerate points."""
	source_mean = source.mean(axis=0)
	target_mean = target.mean(axis=0)
	source_centred = source - source_mean
	target_centred = target - target_mean
	denominator = float((source_centred ** 2).sum())
	if denominator <= 1e-12:
		matrix = np.zeros((2, 3))
		matrix[:, 2] = target_mean - source_mean
		matrix[0, 0] = matrix[1, 1] = 1.0
		return matrix
	a = float((source_centred * target_centred).sum()) / denominator
	b = float((source_centred[:, 0] * target_centred[:, 1] - source_centred[:, 1] * target_centred[:, 0]).sum()) / denominator
	rotation_scale = np.array([[a, -b], [b, a]])
	translation = target_mean - rotation_scale @ source_mean
	return np.hstack([rotation_scale, translation[:, None]])


def estimate_matrix_by_face_landmark_5(landmark_5: Points, template: Template, crop_size: CropSize) -> Matrix:
	"""The similarity that maps the five points onto the template at crop size (RANSAC, threshold 100, as 3.5.0)."""
	source = np.asarray(landmark_5, dtype=np.float64).reshape(-1, 2)
	target = scaled_template(template, crop_size)
	matrix, _ = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=100)
	if matrix is None:
		matrix = estimate_similarity_least_squares(source, target)
	return matrix


def warp_face_by_face_landmark_5(
	frame: VisionFrame,
	landmark_5: Points,
	template: Template,
	crop_size: CropSize,
	track_token: Optional[int] = None
) -> Tuple[VisionFrame, Matrix]:
	"""Aligned crop of a face. track_token is accepted for the tracker (per-track state will hang off it); unused here."""
	size = as_size(crop_size)
	matrix = estimate_matrix_by_face_landmark_5(landmark_5, template, size)
	# INTER_AREA is what 3.5.0 passes; warpAffine treats it as bilinear
	crop = cv2.warpAffine(frame, matrix, size, borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_AREA)
	return crop, matrix


def warp_face_by_translation(frame: VisionFrame, translation: Sequence[float], scale: float, crop_size: CropSize) -> Tuple[VisionFrame, Matrix]:
	"""Scale then shift (the landmarker crop); OpenCV's default flags as 3.5.0."""
	matrix = np.array([[scale, 0.0, translation[0]], [0.0, scale, translation[1]]], dtype=np.float64)
	crop = cv2.warpAffine(frame, matrix, as_size(crop_size))
	return crop, matrix


def transform_points(points: Points, matrix: Matrix) -> Points:
	"""Apply a 2x3 affine to N points (float32 / float64 kept, anything else becomes float64)."""
	array = np.asarray(points)
	if array.dtype not in (np.float32, np.float64):
		array = array.astype(np.float64)
	if array.size == 0:
		return array.reshape(-1, 2)
	return cv2.transform(array.reshape(-1, 1, 2), np.asarray(matrix, dtype=np.float64)).reshape(-1, 2)


def paste_box(frame_shape: Sequence[int], crop_size: CropSize, affine: Matrix) -> Tuple[int, int, int, int]:
	"""The frame region a crop lands in: the inverse-mapped crop corners rounded to the nearest pixel (half to
	even), clipped to the frame.

	Rounded, not floored and ceiled, because 3.5.0 maps integer corners through cv2.transform, which rounds its
	integer output. The box is not only a clip: the paste warps run in box coordinates, and OpenCV's 1/32-pixel
	fixed-point sampling depends on the box origin, so a box one pixel off changes sharp textures by several levels.
	"""
	frame_height, frame_width = int(frame_shape[0]), int(frame_shape[1])
	crop_width, crop_height = as_size(crop_size)
	inverse = cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))
	corners = np.array([[0, 0], [crop_width, 0], [crop_width, crop_height], [0, crop_height]], dtype=np.float64)
	mapped = np.rint(transform_points(corners, inverse))
	low = mapped.min(axis=0).astype(np.int64)
	high = mapped.max(axis=0).astype(np.int64)
	# plain int clamps: np.clip on a scalar costs as much as the rest of this function
	x1, x2 = (min(max(int(value), 0), frame_width) for value in (low[0], high[0]))
	y1, y2 = (min(max(int(value), 0), frame_height) for value in (low[1], high[1]))
	return x1, y1, x2, y2


def paste_back(
	frame: VisionFrame,
	crop: VisionFrame,
	crop_mask: Mask,
	affine: Matrix,
	track_token: Optional[int] = None
) -> VisionFrame:
	"""Blend a crop back into a copy of the frame through its mask; only the paste box is warped and touched.

	region' = region * (1 - mask') + crop' * mask' in the mask's float type, truncated back to the frame's dtype.
	"""
	with STAGE_TIMER.measure('paste'):
		return blend_into_box(frame, crop, crop_mask, affine)


def blend_into_box(frame: VisionFrame, crop: VisionFrame, crop_mask: Mask, affine: Matrix) -> VisionFrame:
	result = frame.copy()
	x1, y1, x2, y2 = paste_box(frame.shape, (crop.shape[1], crop.shape[0]), affine)
	if x2 <= x1 or y2 <= y1:
		return result
	paste_matrix = cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))
	paste_matrix[0, 2] -= x1
	paste_matrix[1, 2] -= y1
	box_size = (x2 - x1, y2 - y1)
	mask = crop_mask[:, :, 0] if crop_mask.ndim == 3 else crop_mask
	box_mask = cv2.warpAffine(mask, paste_matrix, box_size).clip(0, 1)[:, :, None]
	box_crop = cv2.warpAffine(crop, paste_matrix, box_size, borderMode=cv2.BORDER_REPLICATE)
	region = result[y1:y2, x1:x2]
	if box_crop.ndim == 2:
		box_crop = box_crop[:, :, None]
	# same float ops in the same order as the formula, with one temporary less; the unsafe cast truncates like astype
	blended = region * (1 - box_mask)
	blended += box_crop * box_mask
	np.copyto(region, blended, casting='unsafe')
	return result


@lru_cache(maxsize=64)
def create_static_anchors(feature_stride: int, anchor_count: int, grid_width: int, grid_height: int) -> np.ndarray:
	"""Anchor centres (col * stride, row * stride) in row-major order, each repeated anchor_count times in a row.

	No half-pixel offset: that is how the SCRFD / YuNet heads were trained. Cached (read-only) per grid.
	"""
	rows, cols = np.mgrid[:grid_height, :grid_width]
	centres = np.stack([cols, rows], axis=-1).reshape(-1, 2).astype(np.float64) * feature_stride
	anchors = np.repeat(centres, anchor_count, axis=0)
	anchors.setflags(write=False)
	return anchors


def distance_to_bounding_box(points: np.ndarray, distance: np.ndarray) -> np.ndarray:
	"""Boxes from anchor centres and (left, top, right, bottom) distances."""
	return np.stack([
		points[:, 0] - distance[:, 0],
		points[:, 1] - distance[:, 1],
		points[:, 0] + distance[:, 2],
		points[:, 1] + distance[:, 3]
	], axis=-1)


def distance_to_face_landmark_5(points: np.ndarray, distance: np.ndarray) -> np.ndarray:
	"""Five points per anchor from (dx, dy) offsets: (N, 10) -> (N, 5, 2)."""
	offsets = distance.reshape(-1, 5, 2)
	return offsets + points[:, None, :2]


def create_rotation_matrix_and_size(angle: float, size: Sequence[int]) -> Tuple[Matrix, Tuple[int, int]]:
	"""Rotation about the centre of a (w, h) image onto a canvas big enough to hold the whole rotated image."""
	width, height = float(size[0]), float(size[1])
	matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1)
	rotated = np.abs(matrix[:, :2]) @ np.array([width, height])
	matrix[:, 2] += (rotated - np.array([width, height])) * 0.5
	return matrix, (int(rotated[0]), int(rotated[1]))


def estimate_face_angle(landmark_68: Points) -> int:
	"""Direction from jaw point 0 to jaw point 16, snapped to the nearest of 0 / 90 / 180 / 270 degrees."""
	delta = np.asarray(landmark_68[16], dtype=np.float64) - np.asarray(landmark_68[0], dtype=np.float64)
	theta = np.degrees(np.arctan2(delta[1], delta[0])) % 360
	candidates = np.array([0.0, 90.0, 180.0, 270.0, 360.0])
	return int(candidates[int(np.argmin(np.abs(candidates - theta)))] % 360)


def convert_to_face_landmark_5(landmark_68: Points) -> Points:
	"""Eye centres (means of 36-41 and 42-47), nose tip 30, mouth corners 48 and 54."""
	points = np.asarray(landmark_68)
	return np.stack([
		points[36:42].mean(axis=0),
		points[42:48].mean(axis=0),
		points[30],
		points[48],
		points[54]
	]).astype(points.dtype if points.dtype in (np.float32, np.float64) else np.float64)


def apply_nms(bounding_boxes: np.ndarray, scores: np.ndarray, score_threshold: float, nms_threshold: float) -> List[int]:
	"""Indices kept by OpenCV's NMS on (x, y, w, h) boxes, best score first; scores must exceed score_threshold."""
	boxes = np.asarray(bounding_boxes, dtype=np.float64).reshape(-1, 4)
	if len(boxes) == 0:
		return []
	rects = [(float(x1), float(y1), float(x2 - x1), float(y2 - y1)) for x1, y1, x2, y2 in boxes]
	keep = cv2.dnn.NMSBoxes(rects, [float(score) for score in np.asarray(scores).ravel()], float(score_threshold), float(nms_threshold))
	return [int(index) for index in np.asarray(keep).ravel()]


def get_nms_threshold(face_detector_model: str, face_detector_angles: Sequence[int]) -> float:
	"""Stricter overlap limit the more angles are pooled (the same face is found once per angle)."""
	if face_detector_model == 'many':
		return 0.1
	return {2: 0.3, 3: 0.2, 4: 0.1}.get(len(face_detector_angles), 0.4)


def bounding_box_area(bounding_box: BoundingBox) -> float:
	return float((bounding_box[2] - bounding_box[0]) * (bounding_box[3] - bounding_box[1]))


def bounding_box_iou(box_a: BoundingBox, box_b: BoundingBox) -> float:
	"""Intersection over union of two (x1, y1, x2, y2) boxes (for trackers and tests)."""
	inter_w = max(0.0, float(min(box_a[2], box_b[2]) - max(box_a[0], box_b[0])))
	inter_h = max(0.0, float(min(box_a[3], box_b[3]) - max(box_a[1], box_b[1])))
	intersection = inter_w * inter_h
	union = bounding_box_area(box_a) + bounding_box_area(box_b) - intersection
	return intersection / union if union > 0 else 0.0
