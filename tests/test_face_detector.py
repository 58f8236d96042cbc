"""Face detector: pre-processing, the three decoders on synthetic tensors (expected values computed here, cell by
cell), the model plumbing on fake sessions, and the real YuNet (fixed 640 and a dynamic-size copy) on real photos."""
from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import cv2
import numpy as np
import onnx
import pytest
import skimage.data

from facefusion.config import RunConfig
from facefusion.face_detector import decode_scrfd, decode_yolo_face, decode_yunet, detect_faces, detector_models, feature_grid, pad_margin, prepare_detect_frame, prepare_margin, restrict_frame
from facefusion.face_helper import apply_nms, bounding_box_iou, get_nms_threshold
from facefusion.inference.manager import InferenceManager

DATA = Path(__file__).parent / 'data'
STRIDES = (8, 16, 32)
# the three large faces of obama_and_biden.jpg found at 640 (x1, y1, x2, y2), best first
GROUP_FACES = [(1141, 359, 1326, 600), (765, 404, 935, 642), (1619, 1031, 1780, 1229)]
# tests/data/README.md: YuNet finds four faces at score >= 0.6 at full resolution; a small fourth one at top right
GROUP_FACES_FULL = GROUP_FACES + [(1861, 139, 1880, 163)]
GROUP_SCORES_FULL = [0.95, 0.95, 0.90, 0.63]
ASTRONAUT_BOX = (178, 63, 178 + 90, 63 + 113)


def sort_by_score(detections: Tuple[np.ndarray, np.ndarray, np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
	order = np.argsort(-detections[1], kind='stable')
	return detections[0][order], detections[1][order], detections[2][order]


# ---------------------------------------------------------------- pre-processing


def test_margin_and_padding() -> None:
	assert prepare_margin((100, 200, 3), (10, 20, 0, 100)) == (5, 20, 0, 100)
	assert prepare_margin((101, 203, 3), (0, 0, 0, 0)) == (0, 0, 0, 0)
	frame = np.full((10, 20, 3), 7, np.uint8)
	padded = pad_margin(frame, (1, 2, 3, 4))
	assert padded.shape == (14, 26, 3)
	np.testing.assert_array_equal(padded[1:11, 4:24], frame)
	assert padded.sum() == frame.sum()
	assert pad_margin(frame, (0, 0, 0, 0)) is frame


def test_restrict_frame() -> None:
	frame = np.zeros((720, 1280, 3), np.uint8)
	assert restrict_frame(frame, (640, 640)).shape == (360, 640, 3)
	assert restrict_frame(np.zeros((1428, 2000, 3), np.uint8), (640, 640)).shape == (456, 640, 3)
	small = np.zeros((300, 500, 3), np.uint8)
	assert restrict_frame(small, (640, 640)) is small


def test_prepare_detect_frame() -> None:
	frame = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
	raw = prepare_detect_frame(frame, (64, 40), 'raw')
	assert raw.shape == (1, 3, 40, 64) and raw.dtype == np.float32
	np.testing.assert_array_equal(raw[0, :, :30, :50], frame.transpose(2, 0, 1))
	assert raw[0, :, 30:, :].max() == 0 and raw[0, :, :, 50:].max() == 0
	symmetric = prepare_detect_frame(frame, (64, 40), 'symmetric')
	np.testing.assert_allclose(symmetric[0, :, :30, :50], (frame.transpose(2, 0, 1) - 127.5) / 128.0, rtol=1e-6)
	# the zero padding is normalised too, as 3.5.0 does
	assert symmetric[0, 0, 39, 63] == pytest.approx(-127.5 / 128)
	unit = prepare_detect_frame(frame, (64, 40), 'unit')
	np.testing.assert_allclose(unit[0, :, :30, :50], frame.transpose(2, 0, 1) / 255.0, rtol=1e-6)


def test_detector_models() -> None:
	assert detector_models('many') == ['retinaface', 'scrfd', 'yolo_face']
	assert detector_models('yunet') == ['yunet']
	with pytest.raises(ValueError):
		detector_models('mtcnn')


def test_feature_grid() -> None:
	assert feature_grid(12800, 2, 8, (640, 640)) == (80, 80)
	assert feature_grid(400, 1, 32, (640, 640)) == (20, 20)
	assert feature_grid(100, 1, 32, (320, 320)) == (10, 10)
	assert feature_grid(80, 1, 32, (320, 256)) == (10, 8)
	# an export that pads to the next multiple of the stride
	assert feature_grid(10 * 8, 1, 32, (300, 250)) == (10, 8)
	# a square grid whose input size is not known
	assert feature_grid(1600, 1, 16, (0, 0)) == (40, 40)
	with pytest.raises(ValueError):
		feature_grid(77, 1, 32, (320, 256))


# ---------------------------------------------------------------- decoders on synthetic tensors


def test_decode_yolo_face() -> None:
	rng = np.random.default_rng(1)
	output = rng.uniform(0, 0.4, (1, 20, 8400)).astype(np.float32)
	output[0, :4] = rng.uniform(10, 600, (4, 8400))
	candidates = {0: 0.9, 4000: 0.7, 8399: 0.5, 17: 0.51}
	for index, score in candidates.items():
		output[0, 4, index] = score
	ratio = (2.0, 1.5)
	boxes, scores, landmarks = sort_by_score(decode_yolo_face(output, 0.5, ratio))
	# strict '>': the candidate at exactly 0.5 is out, the lone one at index 0 is in
	expected_indices = [0, 4000, 17]
	np.testing.assert_allclose(scores, [candidates[index] for index in expected_indices])
	for row, index in enumerate(expected_indices):
		cx, cy, w, h = (float(value) for value in output[0, :4, index])
		np.testing.assert_allclose(boxes[row], [(cx - w / 2) * 2.0, (cy - h / 2) * 1.5, (cx + w / 2) * 2.0, (cy + h / 2) * 1.5], rtol=1e-5)
		for point in range(5):
			x, y = output[0, 5 + point * 3, index], output[0, 6 + point * 3, index]
			np.testing.assert_allclose(landmarks[row, point], [x * 2.0, y * 1.5], rtol=1e-5)
	assert decode_yolo_face(np.zeros((1, 20, 8400), np.float32), 0.5)[1].shape == (0,)


def scrfd_outputs(width: int, height: int, rng: np.random.Generator, with_batch: bool = False) -> List[np.ndarray]:
	scores, boxes, landmarks = [], [], []
	for stride in STRIDES:
		count = (width // stride) * (height // stride) * 2
		scores.append(rng.uniform(0, 0.3, (count, 1)).astype(np.float32))
		boxes.append(rng.uniform(0, 4, (count, 4)).astype(np.float32))
		landmarks.append(rng.uniform(-3, 3, (count, 10)).astype(np.float32))
	outputs = scores + boxes + landmarks
	return [output[None] for output in outputs] if with_batch else outputs


def expected_scrfd(outputs: Sequence[np.ndarray], stride_index: int, index: int, width: int, ratio: Tuple[float, float]) -> Tuple[np.ndarray, np.ndarray]:
	"""Anchor of a flat index: two anchors per cell, cells row-major, centre (col * stride, row * stride)."""
	stride = STRIDES[stride_index]
	cell = index // 2
	columns = width // stride
	anchor_x, anchor_y = (cell % columns) * stride, (cell // columns) * stride
	distance = np.asarray(outputs[stride_index + 3]).reshape(-1, 4)[index].astype(np.float64) * stride
	offsets = np.asarray(outputs[stride_index + 6]).reshape(-1, 10)[index].astype(np.float64) * stride
	box = np.array([anchor_x - distance[0], anchor_y - distance[1], anchor_x + distance[2], anchor_y + distance[3]]) * [ratio[0], ratio[1], ratio[0], ratio[1]]
	points = np.array([[anchor_x + offsets[2 * point], anchor_y + offsets[2 * point + 1]] for point in range(5)]) * ratio
	return box, points


@pytest.mark.parametrize('size', [640, 320, 160])
@pytest.mark.parametrize('with_batch', [False, True])
def test_decode_scrfd(size: int, with_batch: bool) -> None:
	rng = np.random.default_rng(size)
	outputs = scrfd_outputs(size, size, rng, with_batch)
	last_32 = (size // 32) ** 2 * 2 - 1
	# (stride index, flat index, score): index 0 alone at stride 8, an odd (second anchor) index, the last cell
	candidates = [(0, 0, 0.95), (1, 2 * (size // 16) + 7, 0.8), (2, last_32, 0.5)]
	for stride_index, index, score in candidates:
		outputs[stride_index].reshape(-1)[index] = score
	ratio = (1.25, 1.25)
	boxes, scores, landmarks = decode_scrfd(outputs, (size, size), 0.5, ratio)
	# '>=' here: the candidate at exactly 0.5 counts; output order follows the strides
	np.testing.assert_allclose(scores, [score for _, _, score in candidates])
	for row, (stride_index, index, _) in enumerate(candidates):
		box, points = expected_scrfd(outputs, stride_index, index, size, ratio)
		np.testing.assert_allclose(boxes[row], box, rtol=1e-5, atol=1e-3)
		np.testing.assert_allclose(landmarks[row], points, rtol=1e-5, atol=1e-3)


def yunet_outputs(width: int, height: int, rng: np.random.Generator, with_batch: bool = True) -> List[np.ndarray]:
	cls, obj, bbox, kps = [], [], [], []
	for stride in STRIDES:
		count = math.ceil(width / stride) * math.ceil(height / stride)
		cls.append(rng.uniform(0, 0.5, (count, 1)).astype(np.float32))
		obj.append(rng.uniform(0, 0.5, (count, 1)).astype(np.float32))
		bbox.append(rng.uniform(-1, 1, (count, 4)).astype(np.float32))
		kps.append(rng.uniform(-2, 2, (count, 10)).astype(np.float32))
	outputs = cls + obj + bbox + kps
	return [output[None] for output in outputs] if with_batch else outputs


def expected_yunet(outputs: Sequence[np.ndarray], stride_index: int, index: int, width: int, ratio: Tuple[float, float]) -> Tuple[float, np.ndarray, np.ndarray]:
	stride = STRIDES[stride_index]
	columns = math.ceil(width / stride)
	anchor = np.array([(index % columns) * stride, (index // columns) * stride], np.float64)
	score = float(np.asarray(outputs[stride_index]).reshape(-1)[index]) * float(np.asarray(outputs[stride_index + 3]).reshape(-1)[index])
	raw = np.asarray(outputs[stride_index + 6]).reshape(-1, 4)[index].astype(np.float64)
	centre = raw[:2] * stride + anchor
	size = np.exp(raw[2:]) * stride
	box = np.concatenate([centre - size / 2, centre + size / 2]) * [ratio[0], ratio[1], ratio[0], ratio[1]]
	offsets = np.asarray(outputs[stride_index + 9]).reshape(-1, 10)[index].astype(np.float64)
	points = (offsets.reshape(5, 2) * stride + anchor) * ratio
	return score, box, points


@pytest.mark.parametrize('width, height', [(640, 640), (320, 320), (320, 256), (2016, 1440)])
@pytest.mark.parametrize('with_batch', [True, False])
def test_decode_yunet(width: int, height: int, with_batch: bool) -> None:
	"""The fixed 640 export and the grids a dynamic-size export produces (square, non-square, large)."""
	rng = np.random.default_rng(width + height)
	outputs = yunet_outputs(width, height, rng, with_batch)
	last_16 = math.ceil(width / 16) * math.ceil(height / 16) - 1
	candidates = [(0, 0, 0.9, 1.0), (1, last_16, 0.8, 0.9), (2, math.ceil(width / 32) + 3, 0.6, 0.99)]
	for stride_index, index, cls, obj in candidates:
		outputs[stride_index].reshape(-1)[index] = cls
		outputs[stride_index + 3].reshape(-1)[index] = obj
	ratio = (3.125, 3.0)
	boxes, scores, landmarks = decode_yunet(outputs, (width, height), 0.5, ratio)
	assert len(scores) == len(candidates)
	for row, (stride_index, index, _, _) in enumerate(candidates):
		score, box, points = expected_yunet(outputs, stride_index, index, width, ratio)
		assert scores[row] == pytest.approx(score, rel=1e-6)
		np.testing.assert_allclose(boxes[row], box, rtol=1e-5, atol=1e-3)
		np.testing.assert_allclose(landmarks[row], points, rtol=1e-5, atol=1e-3)


# ---------------------------------------------------------------- model plumbing on fake sessions


class FakeSession:
	def __init__(self, input_shape: List[Any], respond: Callable[[np.ndarray], List[np.ndarray]]) -> None:
		self.input_names = ['input']
		self.input_shapes = [input_shape]
		self.respond = respond
		self.fed: List[np.ndarray] = []

	def run(self, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
		tensor = feed['input']
		self.fed.append(tensor)
		return self.respond(tensor)


class FakeInference:
	def __init__(self, sessions: Dict[str, FakeSession]) -> None:
		self.sessions = sessions

	def get(self, model_name: str) -> FakeSession:
		return self.sessions[model_name]


def yolo_answer(tensor: np.ndarray) -> List[np.ndarray]:
	"""One face: centre (100, 50), size 40 x 60 on the detector canvas, points at the centre."""
	output = np.zeros((1, 20, 8400), np.float32)
	output[0, :5, 123] = [100, 50, 40, 60, 0.9]
	output[0, 5:20, 123] = [100, 50, 1] * 5
	return [output]


def scrfd_answer(tensor: np.ndarray) -> List[np.ndarray]:
	"""One face at the stride-16 anchor (row 2, col 3) = (48, 32), distances of 1 stride."""
	width = tensor.shape[3]
	outputs = [np.zeros(((width // stride) ** 2 * 2, channels), np.float32) for channels in (1, 4, 10) for stride in STRIDES]
	index = (2 * (width // 16) + 3) * 2
	outputs[1][index] = 0.8
	outputs[4][index] = [1, 1, 1, 1]
	return outputs


def yunet_answer(tensor: np.ndarray) -> List[np.ndarray]:
	"""One face at stride-32 cell (row 1, col 2) = (64, 32): centre offset 0, size exp(0) strides."""
	height, width = tensor.shape[2:]
	outputs = []
	for channels in (1, 1, 4, 10):
		for stride in STRIDES:
			outputs.append(np.zeros((1, math.ceil(width / stride) * math.ceil(height / stride), channels), np.float32))
	index = math.ceil(width / 32) + 2
	outputs[2][0, index] = 0.9
	outputs[5][0, index] = 1.0
	return outputs


def test_many_runs_three_models_with_their_normalisation() -> None:
	sessions = {
		'retinaface': FakeSession([1, 3, '?', '?'], scrfd_answer),
		'scrfd': FakeSession([1, 3, '?', '?'], scrfd_answer),
		'yolo_face': FakeSession([1, 3, 640, 640], yolo_answer),
	}
	frame = np.full((720, 1280, 3), 255, np.uint8)
	config = RunConfig(face_detector_model='many', face_detector_score=0.5)
	boxes, scores, landmarks = detect_faces(frame, config, FakeInference(sessions))
	for name in ('retinaface', 'scrfd'):
		tensor = sessions[name].fed[0]
		assert tensor.shape == (1, 3, 640, 640)
		assert tensor[0, 0, 0, 0] == pytest.approx(127.5 / 128) and tensor[0, 0, 639, 639] == pytest.approx(-127.5 / 128)
	assert sessions['yolo_face'].fed[0][0, 0, 0, 0] == 1.0 and sessions['yolo_face'].fed[0][0, 0, 639, 639] == 0.0
	np.testing.assert_allclose(scores, [0.8, 0.8, 0.9])
	# the 1280 x 720 frame was shrunk to 640 x 360: everything doubles on the way back
	np.testing.assert_allclose(boxes[0], [(48 - 16) * 2, (32 - 16) * 2, (48 + 16) * 2, (32 + 16) * 2])
	np.testing.assert_allclose(boxes[2], [160, 40, 240, 160])
	np.testing.assert_allclose(landmarks[2], [[200, 100]] * 5)
	assert boxes.dtype == np.float32 and landmarks.shape == (3, 5, 2)


@pytest.mark.parametrize('size, fed', [('320x320', (320, 320)), ('300x200', (320, 224)), ('640x640', (640, 640))])
def test_dynamic_yunet_takes_configured_size(size: str, fed: Tuple[int, int]) -> None:
	session = FakeSession([1, 3, 'height', 'width'], yunet_answer)
	frame = np.full((100, 150, 3), 9, np.uint8)
	config = RunConfig(face_detector_model='yunet', face_detector_size=size)
	boxes, scores, _ = detect_faces(frame, config, FakeInference({'yunet': session}))
	assert session.fed[0].shape == (1, 3, fed[1], fed[0])
	# raw pixel values, frame pasted top-left
	assert session.fed[0][0, 0, 0, 0] == 9 and session.fed[0][0, 0, fed[1] - 1, fed[0] - 1] == 0
	np.testing.assert_allclose(scores, [0.9])
	np.testing.assert_allclose(boxes[0], [64 - 16, 32 - 16, 64 + 16, 32 + 16])


def test_fixed_export_ignores_configured_size_and_margin_is_removed() -> None:
	session = FakeSession([1, 3, 640, 640], yunet_answer)
	frame = np.full((400, 400, 3), 9, np.uint8)
	config = RunConfig(face_detector_model='yunet', face_detector_size='320x320', face_detector_margin=(10, 0, 0, 20))
	boxes, _, landmarks = detect_faces(frame, config, FakeInference({'yunet': session}))
	assert session.fed[0].shape == (1, 3, 640, 640)
	# margin top 400 * 0.05 = 20, left 400 * 0.1 = 40: the padded frame had the face there, the result is shifted back
	np.testing.assert_allclose(boxes[0], [48 - 40, 16 - 20, 80 - 40, 48 - 20])
	np.testing.assert_allclose(landmarks[0], [[64 - 40, 32 - 20]] * 5)


def test_no_candidates() -> None:
	session = FakeSession([1, 3, 640, 640], lambda tensor: [np.zeros_like(output) for output in yunet_answer(tensor)])
	boxes, scores, landmarks = detect_faces(np.ones((50, 50, 3), np.uint8), RunConfig(face_detector_model='yunet'), FakeInference({'yunet': session}))
	assert boxes.shape == (0, 4) and scores.shape == (0,) and landmarks.shape == (0, 5, 2)


# ---------------------------------------------------------------- the real YuNet on real photos


@pytest.fixture(scope='module')
def yunet_fixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
	directory = tmp_path_factory.mktemp('yunet_fixed')
	shutil.copy(DATA / 'yunet_2023_mar.onnx', directory / 'yunet_2023_mar.onnx')
	return directory


@pytest.fixture(scope='module')
def yunet_dynamic(tmp_path_factory: pytest.TempPathFactory) -> Path:
	"""The same network with symbolic height / width: YuNet is fully convolutional and its reshapes use -1."""
	directory = tmp_path_factory.mktemp('yunet_dynamic')
	model = onnx.load(str(DATA / 'yunet_2023_mar.onnx'))
	dims = model.graph.input[0].type.tensor_type.shape.dim
	for dim, name in ((dims[2], 'height'), (dims[3], 'width')):
		dim.ClearField('dim_value')
		dim.dim_param = name
	del model.graph.value_info[:]
	for output in model.graph.output:
		count = output.type.tensor_type.shape.dim[1]
		count.ClearField('dim_value')
		count.dim_param = output.name + '_count'
	onnx.save(model, str(directory / 'yunet_2023_mar.onnx'))
	return directory


@pytest.fixture(scope='module')
def photos() -> Dict[str, np.ndarray]:
	frames = {name: cv2.imread(str(DATA / (name + '.jpg'))) for name in ('obama', 'biden', 'obama_and_biden')}
	frames['astronaut'] = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
	return frames


def detect_and_nms(frame: np.ndarray, models_path: Path, **changes: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
	config = RunConfig(models_path=str(models_path), face_detector_model='yunet', **changes)
	boxes, scores, landmarks = detect_faces(frame, config, InferenceManager(config))
	keep = apply_nms(boxes, scores, config.face_detector_score, get_nms_threshold('yunet', config.face_detector_angles))
	return boxes[keep], scores[keep], landmarks[keep]


@pytest.mark.parametrize('name, documented', [('obama', 0.95), ('biden', 0.93)])
def test_real_portraits(yunet_fixed: Path, photos: Dict[str, np.ndarray], name: str, documented: float) -> None:
	boxes, scores, landmarks = detect_and_nms(photos[name], yunet_fixed)
	assert len(scores) == 1
	# 3.5.0 scores cls * obj; the documented numbers are OpenCV's sqrt(cls * obj)
	assert math.sqrt(scores[0]) == pytest.approx(documented, abs=0.01)
	left_eye, right_eye, nose, left_mouth, right_mouth = landmarks[0]
	x1, y1, x2, y2 = boxes[0]
	assert x1 < left_eye[0] < right_eye[0] < x2 and y1 < left_eye[1] < nose[1] < left_mouth[1] < y2
	assert left_mouth[0] < right_mouth[0]


def test_real_group_photo_at_640(yunet_fixed: Path, photos: Dict[str, np.ndarray]) -> None:
	"""At 640 (3.5.0's only size for yunet) the three large faces pass the default 0.5; the tiny fourth does not."""
	boxes, scores, _ = detect_and_nms(photos['obama_and_biden'], yunet_fixed)
	assert len(scores) == 3
	for box, expected in zip(boxes, GROUP_FACES):
		assert bounding_box_iou(box, expected) > 0.9
	np.testing.assert_allclose(np.sqrt(scores), GROUP_SCORES_FULL[:3], atol=0.025)


def test_real_group_photo_dynamic_full_size(yunet_dynamic: Path, photos: Dict[str, np.ndarray]) -> None:
	"""A dynamic-size export at the photo's own size finds exactly the four documented faces at sqrt score >= 0.6."""
	boxes, scores, _ = detect_and_nms(photos['obama_and_biden'], yunet_dynamic, face_detector_size='2000x1428', face_detector_score=0.36)
	assert len(scores) == 4
	np.testing.assert_allclose(np.sqrt(scores), GROUP_SCORES_FULL, atol=0.01)
	for box, expected in zip(boxes, GROUP_FACES_FULL):
		assert bounding_box_iou(box, expected) > 0.7


def test_real_astronaut(yunet_fixed: Path, photos: Dict[str, np.ndarray]) -> None:
	boxes, scores, landmarks = detect_and_nms(photos['astronaut'], yunet_fixed)
	assert len(scores) == 1
	assert math.sqrt(scores[0]) == pytest.approx(0.93, abs=0.01)
	np.testing.assert_allclose(boxes[0], ASTRONAUT_BOX, atol=2)
	np.testing.assert_allclose(landmarks[0][:2], [[200, 102], [247, 103]], atol=2)


def test_real_rotated_frame_found_by_angles(yunet_fixed: Path, photos: Dict[str, np.ndarray]) -> None:
	"""The astronaut turned 90 degrees clockwise is found by the angle sweep and mapped back onto the turned frame."""
	frame = photos['astronaut']
	turned = np.ascontiguousarray(np.rot90(frame, k=-1))
	# clockwise quarter turn of a 512 x 512 image: (x, y) -> (511 - y, x)
	x1, y1, x2, y2 = ASTRONAUT_BOX
	expected = (511 - y2, x1, 511 - y1, x2)
	sideways_score = detect_and_nms(turned, yunet_fixed)[1].max()
	boxes, scores, landmarks = detect_and_nms(turned, yunet_fixed, face_detector_angles=[0, 90, 180, 270])
	assert len(scores) == 1
	# the 90 degree pass sees the face upright and scores it as the upright photo does (0.87), above the sideways 0.72
	assert scores[0] > sideways_score + 0.1
	assert math.sqrt(scores[0]) == pytest.approx(0.93, abs=0.01)
	assert bounding_box_iou(boxes[0], expected) > 0.8
	np.testing.assert_allclose(landmarks[0][0], [511 - 102, 200], atol=3)


def test_real_margin(yunet_fixed: Path, photos: Dict[str, np.ndarray]) -> None:
	boxes, scores, _ = detect_and_nms(photos['astronaut'], yunet_fixed, face_detector_margin=(20, 20, 20, 20))
	assert len(scores) == 1
	np.testing.assert_allclose(boxes[0], ASTRONAUT_BOX, atol=4)
