"""Face detection: retinaface, scrfd, yolo_face, yunet and 'many', every angle, margin, before NMS.

Pre-processing and decoding follow FaceFusion 3.5.0. Decoders are pure functions of the raw outputs so they can be
tested with synthetic tensors. One 3.5.0 quirk is deliberately not reproduced: its decoders guard with
``any(keep_indices)``, which drops a lone candidate at index 0; here every candidate above the threshold counts.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from facefusion.config import RunConfig
from facefusion.face_helper import create_rotation_matrix_and_size, create_static_anchors, distance_to_bounding_box, distance_to_face_landmark_5, transform_points
from facefusion.inference.manager import InferenceManager
from facefusion.inference.session import ModelSession
from facefusion.types import VisionFrame

Detections = Tuple[np.ndarray, np.ndarray, np.ndarray]
Ratio = Tuple[float, float]

FEATURE_STRIDES: Tuple[int, ...] = (8, 16, 32)
# which sessions each --face-detector-model runs; yunet is not part of 'many' in 3.5.0
DETECTOR_MODELS: Dict[str, Tuple[str, ...]] = {
	'many': ('retinaface', 'scrfd', 'yolo_face'),
	'retinaface': ('retinaface',),
	'scrfd': ('scrfd',),
	'yolo_face': ('yolo_face',),
	'yunet': ('yunet',),
}
# input normalisation per model (channel order stays BGR for all four)
NORMALISATIONS: Dict[str, str] = {
	'retinaface': 'symmetric',
	'scrfd': 'symmetric',
	'yolo_face': 'unit',
	'yunet': 'raw',
}
# YuNet's feature maps need the input padded to a multiple of its largest stride
YUNET_DIVISOR = 32


def detector_models(face_detector_model: str) -> List[str]:
	"""The model keys one --face-detector-model value runs."""
	if face_detector_model not in DETECTOR_MODELS:
		raise ValueError('unknown face detector model ' + repr(face_detector_model))
	return list(DETECTOR_MODELS[face_detector_model])


def empty_detections() -> Detections:
	return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)


def concatenate_detections(parts: Sequence[Detections]) -> Detections:
	parts = [part for part in parts if len(part[1])]
	if not parts:
		return empty_detections()
	return (
		np.concatenate([part[0] for part in parts]).astype(np.float32),
		np.concatenate([part[1] for part in parts]).astype(np.float32),
		np.concatenate([part[2] for part in parts]).astype(np.float32)
	)


# ---------------------------------------------------------------- pre-processing


def unpack_size(size: str) -> Tuple[int, int]:
	"""'640x640' -> (640, 640) as (w, h)."""
	width, height = size.lower().split('x')
	return int(width), int(height)


def prepare_margin(frame_shape: Sequence[int], margin: Sequence[int]) -> Tuple[int, int, int, int]:
	"""Margin in pixels (top, right, bottom, left): percent 0..100 maps onto 0..half the side."""
	height, width = int(frame_shape[0]), int(frame_shape[1])
	top, right, bottom, left = (float(np.interp(value, [0, 100], [0, 0.5])) for value in margin)
	return int(height * top), int(width * right), int(height * bottom), int(width * left)


def pad_margin(frame: VisionFrame, margins: Sequence[int]) -> VisionFrame:
	top, right, bottom, left = margins
	if not any(margins):
		return frame
	return np.pad(frame, ((top, bottom), (left, right), (0, 0)))


def restrict_frame(frame: VisionFrame, size: Tuple[int, int]) -> VisionFrame:
	"""Shrink (aspect kept, truncated sizes) to fit (w, h); never enlarge."""
	height, width = frame.shape[:2]
	limit_width, limit_height = size
	if height > limit_height or width > limit_width:
		scale = min(limit_height / height, limit_width / width)
		return cv2.resize(frame, (int(width * scale), int(height * scale)))
	return frame


def prepare_detect_frame(frame: VisionFrame, size: Tuple[int, int], normalisation: str) -> np.ndarray:
	"""Paste top-left into a zero (h, w) canvas, normalise (padding included, as 3.5.0), NCHW float32."""
	width, height = size
	canvas = np.zeros((height, width, 3), dtype=np.float32)
	canvas[:frame.shape[0], :frame.shape[1]] = frame[:height, :width]
	if normalisation == 'symmetric':
		canvas -= 127.5
		canvas /= 128.0
	elif normalisation == 'unit':
		canvas /= 255.0
	return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None])


def static_input_size(session: ModelSession) -> Optional[Tuple[int, int]]:
	"""(w, h) when the session's image input has fixed integer height and width, else None."""
	shapes = getattr(session, 'input_shapes', None)
	if not shapes or len(shapes[0]) != 4:
		return None
	height, width = shapes[0][2], shapes[0][3]
	if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
		return width, height
	return None


def resolve_input_size(session: ModelSession, model_name: str, config: RunConfig) -> Tuple[int, int]:
	"""A fixed export dictates its size (the real yoloface / yunet are 640); a dynamic one takes --face-detector-size."""
	size = static_input_size(session)
	if size is not None:
		return size
	width, height = unpack_size(config.face_detector_size)
	if model_name == 'yunet':
		width = math.ceil(width / YUNET_DIVISOR) * YUNET_DIVISOR
		height = math.ceil(height / YUNET_DIVISOR) * YUNET_DIVISOR
	return width, height


# ---------------------------------------------------------------- decoders (pure)


def feature_grid(count: int, anchor_count: int, stride: int, input_size: Tuple[int, int]) -> Tuple[int, int]:
	"""(grid_w, grid_h) of one stride's feature map, derived from the output length rather than assumed.

	Works for the fixed 640 exports and for dynamic ones fed any size (floor or ceil division, as the export pads).
	"""
	cells = count // anchor_count
	width, height = input_size
	for grid_width in dict.fromkeys([width // stride, math.ceil(width / stride)]):
		if grid_width > 0 and cells % grid_width == 0 and cells // grid_width in (height // stride, math.ceil(height / stride)):
			return grid_width, cells // grid_width
	side = math.isqrt(cells)
	if side * side == cells:
		return side, side
	raise ValueError('cannot derive the stride ' + str(stride) + ' grid from ' + str(count) + ' outputs at input ' + str(input_size))


def decode_yolo_face(output: np.ndarray, score_threshold: float, ratio: Ratio = (1.0, 1.0)) -> Detections:
	"""YOLOv8 face head [1, 20, N]: (cx, cy, w, h, score, 5 x (x, y, visibility)); keep score > threshold."""
	detection = np.asarray(output)
	detection = detection.reshape(detection.shape[-2], detection.shape[-1])
	if detection.shape[0] == 20 and detection.shape[1] != 20:
		detection = detection.T
	keep = np.flatnonzero(detection[:, 4] > score_threshold)
	if keep.size == 0:
		return empty_detections()
	candidates = detection[keep]
	ratio_width, ratio_height = ratio
	centre_x, centre_y, box_width, box_height = (candidates[:, index] for index in range(4))
	boxes = np.stack([
		(centre_x - box_width / 2) * ratio_width,
		(centre_y - box_height / 2) * ratio_height,
		(centre_x + box_width / 2) * ratio_width,
		(centre_y + box_height / 2) * ratio_height
	], axis=-1)
	landmarks = candidates[:, 5:20].reshape(-1, 5, 3)[:, :, :2] * np.array([ratio_width, ratio_height])
	return boxes.astype(np.float32), candidates[:, 4].astype(np.float32), landmarks.astype(np.float32)


def decode_scrfd(
	outputs: Sequence[np.ndarray],
	input_size: Tuple[int, int],
	score_threshold: float,
	ratio: Ratio = (1.0, 1.0),
	anchor_count: int = 2
) -> Detections:
	"""retinaface / scrfd: nine outputs (scores, box distances, landmark distances for strides 8, 16, 32)."""
	ratio_width, ratio_height = ratio
	parts: List[Detections] = []
	for index, stride in enumerate(FEATURE_STRIDES):
		scores = np.asarray(outputs[index]).reshape(-1)
		keep = np.flatnonzero(scores >= score_threshold)
		if keep.size == 0:
			continue
		grid_width, grid_height = feature_grid(len(scores), anchor_count, stride, input_size)
		anchors = create_static_anchors(stride, anchor_count, grid_width, grid_height)[keep]
		box_distances = np.asarray(outputs[index + 3]).reshape(-1, 4)[keep] * stride
		landmark_distances = np.asarray(outputs[index + 6]).reshape(-1, 10)[keep] * stride
		boxes = distance_to_bounding_box(anchors, box_distances) * np.array([ratio_width, ratio_height, ratio_width, ratio_height])
		landmarks = distance_to_face_landmark_5(anchors, landmark_distances) * np.array([ratio_width, ratio_height])
		parts.append((boxes, scores[keep], landmarks))
	return concatenate_detections(parts)


def decode_yunet(
	outputs: Sequence[np.ndarray],
	input_size: Tuple[int, int],
	score_threshold: float,
	ratio: Ratio = (1.0, 1.0)
) -> Detections:
	"""YuNet: twelve outputs (cls, obj, bbox, kps for strides 8, 16, 32); score = cls * obj, one anchor per cell."""
	ratio_width, ratio_height = ratio
	parts: List[Detections] = []
	for index, stride in enumerate(FEATURE_STRIDES):
		scores = np.asarray(outputs[index]).reshape(-1) * np.asarray(outputs[index + 3]).reshape(-1)
		keep = np.flatnonzero(scores >= score_threshold)
		if keep.size == 0:
			continue
		grid_width, grid_height = feature_grid(len(scores), 1, stride, input_size)
		anchors = create_static_anchors(stride, 1, grid_width, grid_height)[keep]
		box_raw = np.asarray(outputs[index + 6]).reshape(-1, 4)[keep]
		centres = box_raw[:, :2] * stride + anchors
		sizes = np.exp(box_raw[:, 2:4]) * stride
		boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=-1)
		boxes = boxes * np.array([ratio_width, ratio_height, ratio_width, ratio_height])
		keypoints = np.asarray(outputs[index + 9]).reshape(-1, 5, 2)[keep]
		landmarks = (keypoints * stride + anchors[:, None, :]) * np.array([ratio_width, ratio_height])
		parts.append((boxes, scores[keep], landmarks))
	return concatenate_detections(parts)


# ---------------------------------------------------------------- running the models


def detect_with_model(frame: VisionFrame, model_name: str, config: RunConfig, inference: InferenceManager) -> Detections:
	"""One detector on one (already margin-padded) frame; results in that frame's coordinates."""
	session = inference.get(model_name)
	input_size = resolve_input_size(session, model_name, config)
	temp_frame = restrict_frame(frame, input_size)
	ratio = (frame.shape[1] / temp_frame.shape[1], frame.shape[0] / temp_frame.shape[0])
	tensor = prepare_detect_frame(temp_frame, input_size, NORMALISATIONS[model_name])
	input_name = session.input_names[0] if session.input_names else 'input'
	outputs = session.run({input_name: tensor})
	score_threshold = config.face_detector_score
	if model_name == 'yolo_face':
		return decode_yolo_face(outputs[0], score_threshold, ratio)
	if model_name == 'yunet':
		return decode_yunet(outputs, input_size, score_threshold, ratio)
	return decode_scrfd(outputs, input_size, score_threshold, ratio)


def detect_upright(frame: VisionFrame, config: RunConfig, inference: InferenceManager) -> Detections:
	"""Margin, every model of the chosen detector, margin removed again."""
	margins = prepare_margin(frame.shape, config.face_detector_margin)
	padded = pad_margin(frame, margins)
	parts = [detect_with_model(padded, model_name, config, inference) for model_name in detector_models(config.face_detector_model)]
	boxes, scores, landmarks = concatenate_detections(parts)
	top, _, _, left = margins
	if top or left:
		boxes = boxes - np.array([left, top, left, top], dtype=np.float32)
		landmarks = landmarks - np.array([left, top], dtype=np.float32)
	return boxes, scores, landmarks


def detect_at_angle(frame: VisionFrame, angle: int, config: RunConfig, inference: InferenceManager) -> Detections:
	"""Rotate onto an enlarged canvas, detect upright, map boxes and points back with the inverse rotation."""
	if angle % 360 == 0:
		return detect_upright(frame, config, inference)
	matrix, size = create_rotation_matrix_and_size(angle, (frame.shape[1], frame.shape[0]))
	rotated = cv2.warpAffine(frame, matrix, size)
	boxes, scores, landmarks = detect_upright(rotated, config, inference)
	if not len(scores):
		return boxes, scores, landmarks
	inverse = cv2.invertAffineTransform(matrix)
	corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 2)
	corners = transform_points(corners.astype(np.float64), inverse).reshape(-1, 4, 2)
	boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=-1)
	landmarks = transform_points(landmarks.reshape(-1, 2).astype(np.float64), inverse).reshape(-1, 5, 2)
	return boxes.astype(np.float32), scores, landmarks.astype(np.float32)


def detect_faces(frame: VisionFrame, config: RunConfig, inference: InferenceManager) -> Detections:
	"""Candidates of every configured angle pooled: boxes (N, 4) x1y1x2y2, scores (N,), landmarks_5 (N, 5, 2), all
	float32 in frame coordinates, above --face-detector-score, before NMS."""
	parts = [detect_at_angle(frame, int(angle), config, inference) for angle in config.face_detector_angles]
	return concatenate_detections(parts)
