"""The face debugger on a real photo, with the face found by the real YuNet detector."""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import cv2
import numpy as np
import pytest

from facefusion.config import RunConfig
from facefusion.face_masker import FaceMasker
from facefusion.inference.manager import InferenceManager
from facefusion.processors.base import ProcessingContext
from facefusion.processors.modules.face_debugger import BOX_COLOR, BOX_TOP_COLOR, LANDMARK_COLORS, MASK_COLOR, FaceDebugger, line_thickness
from facefusion.testing.standin_models import FACE_LANDMARK_5_IN_BOX, mean_face_68_in_box, write_standin_models
from facefusion.types import Face, FaceLandmarkSet, FaceScoreSet, VisionFrame

DATA_DIR = Path(__file__).resolve().parent / 'data'
ARCFACE_128 = np.array([
	[0.36167656, 0.40387734], [0.63696719, 0.40235469], [0.50019687, 0.56044219],
	[0.38710391, 0.72160547], [0.61507734, 0.72034453]
])


def detect_with_yunet(frame: VisionFrame) -> List[Tuple[np.ndarray, float, np.ndarray]]:
	"""(box x1 y1 x2 y2, score, 5 points) per face: the frame is scaled into the 640 input, top-left aligned."""
	detector = cv2.FaceDetectorYN.create(str(DATA_DIR / 'yunet_2023_mar.onnx'), '', (640, 640), 0.6)
	height, width = frame.shape[:2]
	scale = 640 / max(height, width)
	resized = cv2.resize(frame, (int(width * scale), int(height * scale)))
	canvas = np.zeros((640, 640, 3), dtype=np.uint8)
	canvas[:resized.shape[0], :resized.shape[1]] = resized
	_, detections = detector.detect(canvas)
	faces = []
	for row in detections if detections is not None else []:
		x, y, w, h = row[:4] / scale
		faces.append((np.array([x, y, x + w, y + h], dtype=np.float32), float(row[14]), (row[4:14] / scale).reshape(5, 2)))
	return faces


def make_face(box: np.ndarray, score: float, landmark_5: np.ndarray, angle: int = 0) -> Face:
	# a plausible 68-point face carried onto the detected five points by a similarity
	matrix, _ = cv2.estimateAffinePartial2D(np.array(FACE_LANDMARK_5_IN_BOX, dtype=np.float32), landmark_5.astype(np.float32))
	landmark_68 = cv2.transform(mean_face_68_in_box().reshape(-1, 1, 2).astype(np.float32), matrix).reshape(68, 2)
	landmark_set = FaceLandmarkSet(
		five=landmark_5.astype(np.float32), five_68=landmark_5.astype(np.float32), sixty_eight=landmark_68,
		sixty_eight_5=landmark_68
	)
	return Face(bounding_box=box, score_set=FaceScoreSet(detector=score, landmarker=0.9), landmark_set=landmark_set, angle=angle)


@pytest.fixture(scope='module')
def obama() -> Tuple[VisionFrame, Face]:
	frame = cv2.imread(str(DATA_DIR / 'obama.jpg'))
	detections = detect_with_yunet(frame)
	assert len(detections) == 1
	return frame, make_face(*detections[0])


@pytest.fixture(scope='module')
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
	directory = tmp_path_factory.mktemp('models')
	write_standin_models(directory, ['xseg_1', 'bisenet_resnet_34'])
	return directory


def make_debugger(models_dir: Path, **changes: object) -> FaceDebugger:
	config = RunConfig(models_path=str(models_dir)).with_changes(**changes)
	inference = InferenceManager(config)
	context = ProcessingContext(config=config, inference=inference, analyser=None, masker=FaceMasker(config, inference))
	debugger = FaceDebugger(context)
	debugger.prepare()
	return debugger


def changed_pixels(before: VisionFrame, after: VisionFrame) -> Tuple[np.ndarray, np.ndarray]:
	return np.nonzero(np.any(before != after, axis=2))


def expanded_box(box: np.ndarray, margin: float) -> Tuple[float, float, float, float]:
	x1, y1, x2, y2 = box
	return x1 - margin, y1 - margin, x2 + margin, y2 + margin


def all_inside(ys: np.ndarray, xs: np.ndarray, region: Tuple[float, float, float, float]) -> bool:
	x1, y1, x2, y2 = region
	return bool(np.all((xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)))


def test_line_thickness_scales_with_frame() -> None:
	assert line_thickness((240, 320, 3)) == 2
	assert line_thickness((1137, 910, 3)) == 2
	assert line_thickness((1080, 1920, 3)) == 2
	assert line_thickness((2160, 3840, 3)) == 4


def test_required_models_follow_mask_types() -> None:
	config = RunConfig()
	assert FaceDebugger.required_models(config) == []
	assert FaceDebugger.required_models(config.with_changes(face_mask_types=['box', 'occlusion', 'region'])) == [
		'xseg_1', 'bisenet_resnet_34'
	]
	assert FaceDebugger.required_models(config.with_changes(
		face_mask_types=['occlusion'], face_debugger_items=['bounding-box']
	)) == []


def test_bounding_box_is_drawn_on_the_box_edges(obama: Tuple[VisionFrame, Face], models_dir: Path) -> None:
	frame, face = obama
	original = frame.copy()
	debugger = make_debugger(models_dir, face_debugger_items=['bounding-box'])
	output = debugger.process_frame(frame, [face], frame)
	# the inputs are left alone
	np.testing.assert_array_equal(frame, original)
	ys, xs = changed_pixels(frame, output)
	assert ys.size > 0
	thickness = line_thickness(frame.shape)
	assert all_inside(ys, xs, expanded_box(face.bounding_box, thickness + 2))
	# nothing inside the box beyond the line width
	x1, y1, x2, y2 = face.bounding_box
	inner = (xs > x1 + thickness + 2) & (xs < x2 - thickness - 2) & (ys > y1 + thickness + 2) & (ys < y2 - thickness - 2)
	assert not np.any(inner)
	# the face's top (angle 0) is the lighter edge, the bottom is the box colour
	top_y = int(round(float(y1)))
	bottom_y = int(round(float(y2)))
	centre_x = int((x1 + x2) / 2)
	assert tuple(int(value) for value in output[top_y, centre_x]) == BOX_TOP_COLOR
	assert tuple(int(value) for value in output[bottom_y, centre_x]) == BOX_COLOR


def test_rotated_face_marks_its_top_edge(obama: Tuple[VisionFrame, Face], models_dir: Path) -> None:
	frame, face = obama
	rotated = Face(bounding_box=face.bounding_box, score_set=face.score_set, landmark_set=face.landmark_set, angle=90)
	output = make_debugger(models_dir, face_debugger_items=['bounding-box']).process_frame(frame, [rotated], frame)
	x1, y1, x2, y2 = [int(round(float(value))) for value in face.bounding_box]
	middle_y = (y1 + y2) // 2
	assert tuple(int(value) for value in output[middle_y, x2]) == BOX_TOP_COLOR
	assert tuple(int(value) for value in output[middle_y, x1]) == BOX_COLOR


@pytest.mark.parametrize('item, kind', [
	('face-landmark-5', '5'), ('face-landmark-5/68', '5/68'), ('face-landmark-68', '68'), ('face-landmark-68/5', '68/5')
])
def test_landmarks_are_drawn_at_their_points(obama: Tuple[VisionFrame, Face], models_dir: Path, item: str, kind: str) -> None:
	frame, face = obama
	output = make_debugger(models_dir, face_debugger_items=[item]).process_frame(frame, [face], frame)
	ys, xs = changed_pixels(frame, output)
	points = face.landmark_set.get(kind)
	radius = line_thickness(frame.shape) + 2
	distances = np.min(np.hypot(xs[:, None] - points[None, :, 0], ys[:, None] - points[None, :, 1]), axis=1)
	assert ys.size > 0 and float(distances.max()) <= radius + 1
	for x, y in points.astype(int):
		assert tuple(int(value) for value in output[y, x]) == LANDMARK_COLORS[kind]


def test_low_landmarker_score_shows_fallback_colour(obama: Tuple[VisionFrame, Face], models_dir: Path) -> None:
	frame, face = obama
	fallback = Face(
		bounding_box=face.bounding_box, score_set=FaceScoreSet(detector=0.9, landmarker=0.1), landmark_set=face.landmark_set
	)
	output = make_debugger(models_dir, face_debugger_items=['face-landmark-5/68']).process_frame(frame, [fallback], frame)
	x, y = face.landmark_set.get('5/68')[0].astype(int)
	assert tuple(int(value) for value in output[y, x]) == LANDMARK_COLORS['68/5']


def crop_paste_box(face: Face, frame_shape: Tuple[int, ...]) -> Tuple[float, float, float, float]:
	"""Where the 512 arcface_128 crop of the face lies in the frame, computed here from the template."""
	matrix, _ = cv2.estimateAffinePartial2D(
		face.landmark_set.get('5/68').astype(np.float64), ARCFACE_128 * 512, method=cv2.RANSAC, ransacReprojThreshold=100
	)
	inverse = cv2.invertAffineTransform(matrix)
	corners = np.array([[0, 0], [512, 0], [512, 512], [0, 512]], dtype=np.float64)
	mapped = corners @ inverse[:, :2].T + inverse[:, 2]
	x1, y1 = np.maximum(mapped.min(axis=0), 0)
	x2, y2 = np.minimum(mapped.max(axis=0), (frame_shape[1], frame_shape[0]))
	return float(x1), float(y1), float(x2), float(y2)


def test_face_mask_outline_surrounds_the_face(obama: Tuple[VisionFrame, Face], models_dir: Path) -> None:
	frame, face = obama
	output = make_debugger(models_dir, face_debugger_items=['face-mask'], face_mask_types=['box']).process_frame(
		frame, [face], frame
	)
	ys, xs = changed_pixels(frame, output)
	assert ys.size > 0
	thickness = line_thickness(frame.shape)
	assert all_inside(ys, xs, expanded_box(np.array(crop_paste_box(face, frame.shape)), thickness))
	assert np.all(output[ys, xs] == MASK_COLOR)
	# a closed outline: it passes left of, right of, above and below the face centre
	centre_x = float(face.bounding_box[0] + face.bounding_box[2]) / 2
	centre_y = float(face.bounding_box[1] + face.bounding_box[3]) / 2
	row = np.abs(ys - centre_y) < 3
	column = np.abs(xs - centre_x) < 3
	assert np.any(row & (xs < face.bounding_box[0])) and np.any(row & (xs > face.bounding_box[2]))
	assert np.any(column & (ys < centre_y)) and np.any(column & (ys > centre_y))


def test_every_item_with_model_masks_stays_near_the_face(obama: Tuple[VisionFrame, Face], models_dir: Path) -> None:
	frame, face = obama
	debugger = make_debugger(
		models_dir,
		face_debugger_items=[
			'bounding-box', 'face-landmark-5', 'face-landmark-5/68', 'face-landmark-68', 'face-landmark-68/5', 'face-mask'
		],
		face_mask_types=['box', 'occlusion', 'area', 'region']
	)
	# a later processor's picture: the debugger draws on it, not on the untouched target
	output_frame = frame.copy()
	output_frame[:40] = 255
	output = debugger.process_frame(frame, [face], output_frame)
	assert output is not output_frame
	assert output_frame[:40].min() == 255 and np.array_equal(output[:40], output_frame[:40])
	ys, xs = changed_pixels(output_frame, output)
	assert ys.size > 0
	x1, y1, x2, y2 = face.bounding_box
	assert all_inside(ys, xs, expanded_box(face.bounding_box, float(max(x2 - x1, y2 - y1))))
	assert np.any(np.all(output[ys, xs] == MASK_COLOR, axis=1))
	# 68/5 is drawn last (over 68, which shares its points here)
	assert np.any(np.all(output[ys, xs] == LANDMARK_COLORS['68/5'], axis=1))


def test_label_when_classified(obama: Tuple[VisionFrame, Face], models_dir: Path) -> None:
	frame, face = obama
	debugger = make_debugger(models_dir, face_debugger_items=['bounding-box'])
	plain = debugger.process_frame(frame, [face], frame)
	classified = Face(
		bounding_box=face.bounding_box, score_set=face.score_set, landmark_set=face.landmark_set,
		gender='male', age=range(50, 60), race='black'
	)
	labelled = debugger.process_frame(frame, [classified], frame)
	ys, xs = changed_pixels(plain, labelled)
	assert ys.size > 0
	x1, y1, x2, y2 = face.bounding_box
	# the text sits just above the box, about as wide as it
	assert all_inside(ys, xs, (x1 - 2, y1 - (y2 - y1) * 0.5, x2 + (x2 - x1) * 0.25, y1))


def test_no_faces_returns_an_unchanged_copy(obama: Tuple[VisionFrame, Face], models_dir: Path) -> None:
	frame, _ = obama
	output = make_debugger(models_dir).process_frame(frame, [], frame)
	assert output is not frame
	np.testing.assert_array_equal(output, frame)


def test_registry_builds_the_debugger(models_dir: Path) -> None:
	from facefusion.processors.registry import create_processors
	config = RunConfig(models_path=str(models_dir), processors=['face_debugger'])
	inference = InferenceManager(config)
	context = ProcessingContext(config=config, inference=inference, analyser=None, masker=FaceMasker(config, inference))
	processors = create_processors(['face_debugger'], context)
	assert isinstance(processors[0], FaceDebugger) and processors[0].name == 'face_debugger'

