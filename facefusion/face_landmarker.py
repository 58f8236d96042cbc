"""68-point landmarks: 2dfan4, peppa_wutz, 'many', and fan_68_5 (68 points estimated from the detector's 5).

Every function takes all faces of a frame at once and feeds them through one ``run_batch`` call per model.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import cv2
import numpy as np

from facefusion.config import RunConfig
from facefusion.face_helper import create_rotation_matrix_and_size, estimate_matrix_by_face_landmark_5, transform_points, warp_face_by_translation
from facefusion.inference.manager import InferenceManager
from facefusion.types import BoundingBox, Matrix, Points, VisionFrame

LANDMARKER_SIZE = 256
# 2dfan4 and peppa_wutz both predict on a 64 x 64 grid
HEATMAP_SIZE = 64
# the face box's longer side is scaled to this many pixels of the 256 crop
BOX_SCALE = 195.0
# mean Lab lightness below which the crop gets CLAHE before the landmarker sees it
DARK_LIGHTNESS = 30


def landmarker_models(face_landmarker_model: str) -> List[str]:
	"""The 68-point models one --face-landmarker-model value runs (fan_68_5 is always needed besides)."""
	if face_landmarker_model == 'many':
		return ['2dfan4', 'peppa_wutz']
	if face_landmarker_model in ('2dfan4', 'peppa_wutz'):
		return [face_landmarker_model]
	raise ValueError('unknown face landmarker model ' + repr(face_landmarker_model))


def conditional_optimize_contrast(crop: VisionFrame) -> VisionFrame:
	"""CLAHE on the lightness of dark crops. The Lab round trip (treating BGR as RGB) always happens, as in 3.5.0,
	because it is lossy and the models saw its output."""
	lab = cv2.cvtColor(crop, cv2.COLOR_RGB2Lab)
	if np.mean(lab[:, :, 0]) < DARK_LIGHTNESS:
		lab[:, :, 0] = cv2.createCLAHE(clipLimit=2).apply(lab[:, :, 0])
	return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)


def prepare_landmarker_crop(frame: VisionFrame, bounding_box: BoundingBox, angle: int) -> Tuple[np.ndarray, Matrix, Matrix]:
	"""The 256 crop (CHW float32 in 0..1, BGR) around a box, rotated upright; with the crop and rotation matrices."""
	box = np.asarray(bounding_box, dtype=np.float64)[:4]
	scale = BOX_SCALE / max(float((box[2:] - box[:2]).max()), 1.0)
	translation = (LANDMARKER_SIZE - (box[2:] + box[:2]) * scale) * 0.5
	rotation_matrix, rotation_size = create_rotation_matrix_and_size(angle, (LANDMARKER_SIZE, LANDMARKER_SIZE))
	crop, crop_matrix = warp_face_by_translation(frame, translation, scale, (LANDMARKER_SIZE, LANDMARKER_SIZE))
	# an upright face needs no rotation (the identity warp would copy the crop bit for bit)
	if angle % 360:
		crop = cv2.warpAffine(crop, rotation_matrix, rotation_size)
	crop = conditional_optimize_contrast(crop)
	tensor = crop.transpose(2, 0, 1).astype(np.float32) / 255.0
	return tensor, crop_matrix, rotation_matrix


def crop_points_to_frame(points: np.ndarray, crop_matrix: Matrix, rotation_matrix: Matrix) -> Points:
	"""64-grid predictions back to frame pixels: to the 256 crop, undo the rotation, undo the crop."""
	points = np.asarray(points, dtype=np.float32) / HEATMAP_SIZE * LANDMARKER_SIZE
	points = transform_points(points, cv2.invertAffineTransform(rotation_matrix))
	return transform_points(points, cv2.invertAffineTransform(crop_matrix))


def score_2dfan4(heatmaps: np.ndarray) -> float:
	"""Mean of each heat-map's maximum, mapped [0, 0.9] -> [0, 1] (clamped)."""
	peak = float(np.mean(np.amax(heatmaps.reshape(heatmaps.shape[0], -1), axis=1)))
	return float(np.interp(peak, [0, 0.9], [0, 1]))


def score_peppa_wutz(prediction: np.ndarray) -> float:
	"""Mean of the third column mapped [0, 0.95] -> [0, 1] (clamped)."""
	return float(np.interp(float(prediction.reshape(-1, 3)[:, 2].mean()), [0, 0.95], [0, 1]))


def detect_face_landmarks_68(
	frame: VisionFrame,
	bounding_boxes: Sequence[BoundingBox],
	angles: Sequence[int],
	config: RunConfig,
	inference: InferenceManager
) -> Tuple[List[Points], List[float]]:
	"""68 points and landmarker score for every box of one frame (one batched call per model)."""
	if not len(bounding_boxes):
		return [], []
	prepared = [prepare_landmarker_crop(frame, box, int(angle)) for box, angle in zip(bounding_boxes, angles)]
	batch = np.stack([item[0] for item in prepared])
	results = {}
	for model_name in landmarker_models(config.face_landmarker_model):
		session = inference.get(model_name)
		outputs = session.run_batch({session.input_names[0]: batch})
		landmarks_list = []
		scores = []
		for index, (_, crop_matrix, rotation_matrix) in enumerate(prepared):
			# both models give 68 x (x, y, confidence) first; 2dfan4 scores its heat-maps, peppa_wutz its confidences
			grid_points = outputs[0][index].reshape(-1, 3)[:, :2]
			scores.append(score_2dfan4(outputs[1][index]) if model_name == '2dfan4' else score_peppa_wutz(outputs[0][index]))
			landmarks_list.append(crop_points_to_frame(grid_points, crop_matrix, rotation_matrix).astype(np.float32))
		results[model_name] = (landmarks_list, scores)
	if len(results) == 1:
		return next(iter(results.values()))
	return choose_many(results['2dfan4'], results['peppa_wutz'])


def choose_many(fan: Tuple[List[Points], List[float]], peppa: Tuple[List[Points], List[float]]) -> Tuple[List[Points], List[float]]:
	"""Per face: 2dfan4 wins when its score beats peppa_wutz's minus 0.2."""
	landmarks_list = []
	scores = []
	for fan_points, fan_score, peppa_points, peppa_score in zip(fan[0], fan[1], peppa[0], peppa[1]):
		if fan_score > peppa_score - 0.2:
			landmarks_list.append(fan_points)
			scores.append(fan_score)
		else:
			landmarks_list.append(peppa_points)
			scores.append(peppa_score)
	return landmarks_list, scores


def estimate_face_landmarks_68_5(landmarks_5: Sequence[Points], inference: InferenceManager) -> List[Points]:
	"""fan_68_5 for several faces: each 5-point set goes to ffhq_512's unit square, through the model, and back."""
	if not len(landmarks_5):
		return []
	matrices = [estimate_matrix_by_face_landmark_5(points, 'ffhq_512', (1, 1)) for points in landmarks_5]
	unit_points = np.stack([
		transform_points(np.asarray(points, dtype=np.float32).reshape(-1, 2), matrix)
		for points, matrix in zip(landmarks_5, matrices)
	]).astype(np.float32)
	session = inference.get('fan_68_5')
	outputs = session.run_batch({session.input_names[0]: unit_points})[0]
	return [
		transform_points(np.asarray(output, dtype=np.float32).reshape(-1, 2), cv2.invertAffineTransform(matrix)).astype(np.float32)
		for output, matrix in zip(outputs, matrices)
	]
