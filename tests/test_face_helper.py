"""face_helper: templates, similarity estimation, warps, paste-back (bit-exact against 3.5.0's formula), NMS, rotations."""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np
import pytest

from facefusion.face_helper import (
	WARP_TEMPLATES,
	apply_nms,
	bounding_box_iou,
	convert_to_face_landmark_5,
	create_rotation_matrix_and_size,
	create_static_anchors,
	distance_to_bounding_box,
	distance_to_face_landmark_5,
	estimate_face_angle,
	estimate_matrix_by_face_landmark_5,
	get_nms_threshold,
	paste_back,
	paste_box,
	transform_points,
	warp_face_by_face_landmark_5,
	warp_face_by_translation,
)

# 3.5.0's templates, typed in again from the reference so a slip in either copy shows
TEMPLATE_TABLE = {
	'arcface_112_v1': [0.35473214, 0.45658929, 0.64526786, 0.45658929, 0.50000000, 0.61154464, 0.37913393, 0.77687500, 0.62086607, 0.77687500],
	'arcface_112_v2': [0.34191607, 0.46157411, 0.65653393, 0.45983393, 0.50022500, 0.64050536, 0.37097589, 0.82469196, 0.63151696, 0.82325089],
	'arcface_128': [0.36167656, 0.40387734, 0.63696719, 0.40235469, 0.50019687, 0.56044219, 0.38710391, 0.72160547, 0.61507734, 0.72034453],
	'dfl_whole_face': [0.35342266, 0.39285716, 0.62797622, 0.39285716, 0.48660713, 0.54017860, 0.38839287, 0.68750011, 0.59821427, 0.68750011],
	'ffhq_512': [0.37691676, 0.46864664, 0.62285697, 0.46912813, 0.50123859, 0.61331904, 0.39308822, 0.72541100, 0.61150205, 0.72490465],
	'mtcnn_512': [0.36562865, 0.46733799, 0.63305391, 0.46585885, 0.50019127, 0.61942959, 0.39032951, 0.77598822, 0.61178945, 0.77476328],
	'styleganex_384': [0.42353745, 0.52289879, 0.57725008, 0.52319972, 0.50123859, 0.61331904, 0.43364461, 0.68337652, 0.57015325, 0.68306005],
}


def similarity(angle_degrees: float, scale: float, shift: Tuple[float, float]) -> np.ndarray:
	theta = np.radians(angle_degrees)
	return np.array([
		[scale * np.cos(theta), -scale * np.sin(theta), shift[0]],
		[scale * np.sin(theta), scale * np.cos(theta), shift[1]]
	])


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
	return points @ matrix[:, :2].T + matrix[:, 2]


def test_templates_match_reference() -> None:
	assert set(WARP_TEMPLATES) == set(TEMPLATE_TABLE)
	for name, values in TEMPLATE_TABLE.items():
		np.testing.assert_array_equal(WARP_TEMPLATES[name], np.array(values).reshape(5, 2))


@pytest.mark.parametrize('template, crop_size', [('arcface_112_v2', 112), ('ffhq_512', (512, 512)), ('arcface_128', (128, 128)), ('dfl_whole_face', (256, 256))])
def test_own_landmarks_land_on_template(template: str, crop_size: object) -> None:
	rng = np.random.default_rng(3)
	size = np.array([crop_size, crop_size] if isinstance(crop_size, int) else crop_size, np.float64)
	target = WARP_TEMPLATES[template] * size
	for _ in range(5):
		forward = similarity(rng.uniform(-40, 40), rng.uniform(0.3, 3), rng.uniform(-50, 400, 2))
		landmarks = apply_affine(target, cv2.invertAffineTransform(forward)).astype(np.float32)
		matrix = estimate_matrix_by_face_landmark_5(landmarks, template, crop_size)
		np.testing.assert_allclose(transform_points(landmarks, matrix), target, atol=1e-2)
		# a 4-DOF similarity: equal scales, opposite shears
		assert matrix[0, 0] == pytest.approx(matrix[1, 1], rel=1e-6)
		assert matrix[0, 1] == pytest.approx(-matrix[1, 0], rel=1e-6, abs=1e-9)


def test_warp_puts_marked_points_on_template() -> None:
	"""Dots painted at a face's five points come out of the crop at the template positions."""
	frame = np.zeros((480, 640, 3), np.uint8)
	template = WARP_TEMPLATES['arcface_112_v2'] * 224
	landmarks = apply_affine(template, similarity(12, 1.4, (150, 90)))
	for x, y in landmarks:
		cv2.circle(frame, (int(round(x * 16)), int(round(y * 16))), 40, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
	crop, matrix = warp_face_by_face_landmark_5(frame, landmarks, 'arcface_112_v2', (224, 224))
	assert crop.shape == (224, 224, 3)
	gray = crop[:, :, 0].astype(np.float64)
	for x, y in template:
		window = gray[int(y) - 6:int(y) + 7, int(x) - 6:int(x) + 7]
		rows, cols = np.mgrid[int(y) - 6:int(y) + 7, int(x) - 6:int(x) + 7]
		centre = np.array([(window * cols).sum(), (window * rows).sum()]) / window.sum()
		np.testing.assert_allclose(centre, [x, y], atol=0.6)
	# INTER_AREA under warpAffine is bilinear, border replicated (3.5.0's flags)
	expected = cv2.warpAffine(frame, matrix, (224, 224), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
	np.testing.assert_array_equal(crop, expected)
	again, _ = warp_face_by_face_landmark_5(frame, landmarks, 'arcface_112_v2', 224, track_token=5)
	np.testing.assert_array_equal(again, crop)


def test_warp_by_translation() -> None:
	frame = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
	crop, matrix = warp_face_by_translation(frame, (-20.0, 10.0), 0.5, (64, 64))
	np.testing.assert_array_equal(matrix, [[0.5, 0, -20.0], [0, 0.5, 10.0]])
	np.testing.assert_array_equal(crop, cv2.warpAffine(frame, matrix, (64, 64)))


def literal_paste_back(frame: np.ndarray, crop: np.ndarray, mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
	"""written out step by step, independently of face_helper."""
	frame_height, frame_width = frame.shape[:2]
	crop_height, crop_width = crop.shape[:2]
	inverse = cv2.invertAffineTransform(affine)
	# integer corners: cv2.transform then gives integer (rounded) frame corners, as in 3.5.0
	corners = np.array([[0, 0], [crop_width, 0], [crop_width, crop_height], [0, crop_height]], np.int64)
	mapped = cv2.transform(corners.reshape(-1, 1, 2), inverse).reshape(-1, 2)
	x1, y1 = np.clip(mapped.min(axis=0).astype(int), 0, [frame_width, frame_height])
	x2, y2 = np.clip(mapped.max(axis=0).astype(int), 0, [frame_width, frame_height])
	output = frame.copy()
	if x2 <= x1 or y2 <= y1:
		return output
	paste_matrix = inverse.copy()
	paste_matrix[0, 2] -= x1
	paste_matrix[1, 2] -= y1
	warped_mask = cv2.warpAffine(mask, paste_matrix, (int(x2 - x1), int(y2 - y1))).clip(0, 1)
	warped_crop = cv2.warpAffine(crop, paste_matrix, (int(x2 - x1), int(y2 - y1)), borderMode=cv2.BORDER_REPLICATE)
	warped_mask = warped_mask[:, :, np.newaxis]
	region = output[y1:y2, x1:x2]
	output[y1:y2, x1:x2] = (region * (1 - warped_mask) + warped_crop * warped_mask).astype(np.uint8)
	return output


@pytest.mark.parametrize('seed', range(6))
def test_paste_back_bit_exact(seed: int) -> None:
	rng = np.random.default_rng(seed)
	frame = rng.integers(0, 256, (rng.integers(200, 400), rng.integers(200, 500), 3), dtype=np.uint8)
	crop_size = int(rng.choice([96, 128, 256]))
	crop = rng.integers(0, 256, (crop_size, crop_size, 3), dtype=np.uint8)
	mask = rng.uniform(-0.2, 1.2, (crop_size, crop_size)).astype(np.float32)
	# crops that sit inside, straddle an edge, or hang far off the frame
	shift = rng.uniform(-200, frame.shape[1], 2)
	affine = cv2.invertAffineTransform(similarity(rng.uniform(-180, 180), rng.uniform(0.4, 2.5), tuple(shift)))
	original = frame.copy()
	result = paste_back(frame, crop, mask, affine)
	np.testing.assert_array_equal(result, literal_paste_back(frame, crop, mask, affine))
	np.testing.assert_array_equal(frame, original)
	x1, y1, x2, y2 = paste_box(frame.shape, (crop_size, crop_size), affine)
	outside = np.ones(frame.shape[:2], bool)
	outside[y1:y2, x1:x2] = False
	np.testing.assert_array_equal(result[outside], original[outside])


def test_paste_back_loses_nothing_outside_the_box() -> None:
	"""Warping over the whole frame (the older 3.x way) puts little mask weight outside the box: the box rounds
	the crop's corners (as 3.5.0's does), so what lies outside it is less than half a pixel of the crop's edge plus
	what OpenCV's 1/32-pixel fixed-point sampling leaks past it; real masks are zero there."""
	rng = np.random.default_rng(11)
	frame = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
	crop = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
	mask = np.ones((128, 128), np.float32)
	affine = cv2.invertAffineTransform(similarity(25, 1.3, (120, 60)))
	full_mask = cv2.warpAffine(mask, cv2.invertAffineTransform(affine), (400, 300))
	x1, y1, x2, y2 = paste_box(frame.shape, (128, 128), affine)
	full_mask[y1:y2, x1:x2] = 0
	assert full_mask.max() <= 0.5 + 1 / 32
	result = paste_back(frame, crop, mask, affine)
	assert (result != frame).any()


def test_paste_back_simple_values() -> None:
	frame = np.zeros((100, 100, 3), np.uint8)
	crop = np.full((20, 20, 3), 200, np.uint8)
	affine = np.array([[1.0, 0.0, -30.0], [0.0, 1.0, -40.0]])
	result = paste_back(frame, crop, np.ones((20, 20), np.float32), affine)
	assert result[40:60, 30:50].min() == 200 and result.sum() == 20 * 20 * 3 * 200
	assert paste_back(frame, crop, np.full((20, 20), 0.5, np.float32), affine)[50, 40].tolist() == [100, 100, 100]
	# the mask is clipped to 1 and a crop off the frame changes nothing
	assert paste_back(frame, crop, np.full((20, 20), 2.0, np.float32), affine)[50, 40].tolist() == [200, 200, 200]
	far = np.array([[1.0, 0.0, 500.0], [0.0, 1.0, 500.0]])
	np.testing.assert_array_equal(paste_back(frame, crop, np.ones((20, 20), np.float32), far), frame)


def test_paste_box_cases() -> None:
	shape = (100, 100, 3)
	assert paste_box(shape, (20, 20), np.array([[1.0, 0, -30.0], [0, 1.0, -40.0]])) == (30, 40, 50, 60)
	assert paste_box(shape, (20, 20), np.array([[1.0, 0, 10.0], [0, 1.0, 5.0]])) == (0, 0, 10, 15)
	assert paste_box(shape, (20, 20), np.array([[1.0, 0, -90.0], [0, 1.0, -95.0]])) == (90, 95, 100, 100)
	# corners at 15.25 / 25.25 and 20.25 / 30.25 round to the nearest pixel, halves to even
	assert paste_box(shape, (20, 20), np.array([[2.0, 0, -30.5], [0, 2.0, -40.5]])) == (15, 20, 25, 30)
	assert paste_box(shape, (20, 20), np.array([[1.0, 0, -30.5], [0, 1.0, -41.5]])) == (30, 42, 50, 62)


def test_points_and_boxes() -> None:
	matrix = similarity(30, 2.0, (5, -3))
	points = np.random.default_rng(1).uniform(0, 100, (7, 2))
	np.testing.assert_allclose(transform_points(points, matrix), apply_affine(points, matrix))
	assert transform_points(points.astype(np.float32), matrix).dtype == np.float32
	assert bounding_box_iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10])) == pytest.approx(1 / 3)


@pytest.mark.parametrize('direction, angle', [((10, 0), 0), ((0, 10), 90), ((-10, 0), 180), ((0, -10), 270), ((10, 8), 0), ((8, 10), 90), ((10, -1), 0), ((-10, 1), 180), ((-1, -10), 270)])
def test_estimate_face_angle(direction: Tuple[float, float], angle: int) -> None:
	points = np.zeros((68, 2))
	points[0] = (50, 50)
	points[16] = (50 + direction[0], 50 + direction[1])
	assert estimate_face_angle(points) == angle


def test_convert_to_face_landmark_5() -> None:
	points = np.random.default_rng(2).uniform(0, 100, (68, 2)).astype(np.float32)
	five = convert_to_face_landmark_5(points)
	assert five.shape == (5, 2) and five.dtype == np.float32
	np.testing.assert_allclose(five[0], points[36:42].mean(axis=0), rtol=1e-6)
	np.testing.assert_allclose(five[1], points[42:48].mean(axis=0), rtol=1e-6)
	np.testing.assert_array_equal(five[2:], points[[30, 48, 54]])


def test_apply_nms() -> None:
	boxes = np.array([[0, 0, 100, 100], [5, 5, 105, 105], [200, 200, 250, 260], [0, 0, 100, 100]], np.float32)
	scores = np.array([0.8, 0.9, 0.6, 0.4], np.float32)
	assert apply_nms(boxes, scores, 0.5, 0.4) == [1, 2]
	assert apply_nms(boxes, scores, 0.6, 0.4) == [1]
	assert apply_nms(boxes, scores, 0.5, 0.99) == [1, 0, 2]
	# a lone candidate at index 0 counts
	assert apply_nms(boxes[:1], scores[:1], 0.5, 0.4) == [0]
	assert apply_nms(np.zeros((0, 4)), np.zeros(0), 0.5, 0.4) == []
	assert [get_nms_threshold('yunet', angles) for angles in ([0], [0, 90], [0, 90, 180], [0, 90, 180, 270])] == [0.4, 0.3, 0.2, 0.1]
	assert get_nms_threshold('many', [0]) == 0.1


@pytest.mark.parametrize('angle', [90, 180, 270])
def test_rotation_matrix_and_size(angle: int) -> None:
	matrix, size = create_rotation_matrix_and_size(angle, (400, 300))
	assert size == ((300, 400) if angle in (90, 270) else (400, 300))
	corners = np.array([[0, 0], [400, 0], [400, 300], [0, 300]], np.float64)
	mapped = apply_affine(corners, matrix)
	np.testing.assert_allclose(mapped.min(axis=0), [0, 0], atol=1e-9)
	np.testing.assert_allclose(mapped.max(axis=0), size, atol=1e-9)
	back = transform_points(transform_points(np.array([[10.0, 20.0]]), matrix), cv2.invertAffineTransform(matrix))
	np.testing.assert_allclose(back, [[10.0, 20.0]], atol=1e-9)


def test_anchors_and_distances() -> None:
	anchors = create_static_anchors(16, 2, 3, 2)
	expected = []
	for row in range(2):
		for col in range(3):
			expected += [[col * 16, row * 16]] * 2
	np.testing.assert_array_equal(anchors, expected)
	points = np.array([[10.0, 20.0], [0.0, 0.0]])
	np.testing.assert_array_equal(distance_to_bounding_box(points, np.array([[1, 2, 3, 4], [1, 1, 1, 1]], np.float64)), [[9, 18, 13, 24], [-1, -1, 1, 1]])
	offsets = np.arange(20, dtype=np.float64).reshape(2, 10)
	landmarks = distance_to_face_landmark_5(points, offsets)
	assert landmarks.shape == (2, 5, 2)
	np.testing.assert_array_equal(landmarks[0, 1], [10 + 2, 20 + 3])
	np.testing.assert_array_equal(landmarks[1, 4], [18, 19])
