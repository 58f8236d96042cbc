"""Face analysis end to end: the real YuNet detector on real photos, tiny hand-built ONNX models with the real
signatures for the landmarkers, recognizer and classifier, and the selector on constructed faces."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import onnx
import pytest
import skimage.data
from onnx import TensorProto, helper, numpy_helper

from facefusion.config import RunConfig
from facefusion.errors import ProcessingError
from facefusion.face_analyser import FaceAnalyser, needs_classification, pick_face
from facefusion.face_classifier import categorize_age, categorize_gender, categorize_race, classify_faces
from facefusion.face_helper import WARP_TEMPLATES, bounding_box_iou, convert_to_face_landmark_5, estimate_matrix_by_face_landmark_5
from facefusion.face_landmarker import choose_many, detect_face_landmarks_68, estimate_face_landmarks_68_5
from facefusion.face_recognizer import calculate_face_embeddings
from facefusion.face_selector import calculate_face_distance, filter_faces, find_match_faces, get_reference_faces, select_faces, sort_faces
from facefusion.inference.manager import InferenceManager
from facefusion.types import Face, FaceLandmarkSet, FaceScoreSet

DATA = Path(__file__).parent / 'data'
OPSET = [helper.make_opsetid('', 13)]
# the three large faces of obama_and_biden.jpg that the fixed 640 YuNet finds (x1, y1, x2, y2), best score first
GROUP_FACES = [(1141, 359, 1326, 600), (765, 404, 935, 642), (1619, 1031, 1780, 1229)]
# stand-in classifier answers: race 3 (asian), gender 1 (female), age 4 (30-39)
CLASS_IDS = (3, 1, 4)


# ---------------------------------------------------------------- tiny models with the real signatures


def save_model(graph: onnx.GraphProto, path: Path) -> None:
	model = helper.make_model(graph, opset_imports=OPSET, producer_name='facefusion-tests')
	model.ir_version = 8
	onnx.checker.check_model(model)
	onnx.save(model, str(path))


def image_input(size: int) -> onnx.ValueInfoProto:
	return helper.make_tensor_value_info('input', TensorProto.FLOAT, ['batch', 3, size, size])


def batch_zeros_nodes(rank: int) -> List[onnx.NodeProto]:
	"""Nodes giving a float zero of shape [N, 1, ..., 1] (rank dims) from the image input, to broadcast constants."""
	return [
		helper.make_node('ReduceMean', ['input'], ['mean'], axes=[1, 2, 3], keepdims=0),
		helper.make_node('Mul', ['mean', 'zero'], ['zeros']),
		helper.make_node('Unsqueeze', ['zeros', 'unsqueeze_axes'], ['batch_zeros'])
	] if rank > 1 else [
		helper.make_node('ReduceMean', ['input'], ['mean'], axes=[1, 2, 3], keepdims=0),
		helper.make_node('Mul', ['mean', 'zero'], ['batch_zeros'])
	]


def fan_68_5_weights() -> np.ndarray:
	"""68 x 5 mixing: jaw 0..16 sweeps from the left eye/mouth midpoint to the right one (so upright faces get angle
	0), and 36-41, 42-47, 30, 48, 54 are exactly the five points (so the 68 -> 5 reduction gives them back)."""
	weights = np.zeros((68, 5), np.float32)
	weights[:, 2] = 1.0
	for index in range(17):
		share = index / 16
		weights[index] = [0.5 * (1 - share), 0.5 * share, 0, 0.5 * (1 - share), 0.5 * share]
	weights[36:42] = [1, 0, 0, 0, 0]
	weights[42:48] = [0, 1, 0, 0, 0]
	weights[48] = [0, 0, 0, 1, 0]
	weights[54] = [0, 0, 0, 0, 1]
	return weights


def write_fan_68_5(path: Path) -> None:
	graph = helper.make_graph(
		[helper.make_node('MatMul', ['weights', 'input'], ['output'])],
		'fan_68_5',
		[helper.make_tensor_value_info('input', TensorProto.FLOAT, ['batch', 5, 2])],
		[helper.make_tensor_value_info('output', TensorProto.FLOAT, ['batch', 68, 2])],
		[numpy_helper.from_array(fan_68_5_weights(), 'weights')]
	)
	save_model(graph, path)


def write_2dfan4(path: Path, grid_points: np.ndarray, heat: float) -> None:
	"""Constant answer: 68 points on the 64 grid, every heat-map peaking at heat."""
	landmarks = np.concatenate([grid_points, np.ones((68, 1))], axis=1).astype(np.float32)
	heatmaps = np.zeros((68, 64, 64), np.float32)
	heatmaps[:, 10, 10] = heat
	graph = helper.make_graph(
		batch_zeros_nodes(3) + [
			helper.make_node('Unsqueeze', ['zeros', 'unsqueeze_axes_4'], ['batch_zeros_4']),
			helper.make_node('Add', ['batch_zeros', 'landmarks'], ['landmarks_out']),
			helper.make_node('Add', ['batch_zeros_4', 'heatmaps'], ['heatmaps_out'])
		],
		'2dfan4',
		[image_input(256)],
		[
			helper.make_tensor_value_info('landmarks_out', TensorProto.FLOAT, ['batch', 68, 3]),
			helper.make_tensor_value_info('heatmaps_out', TensorProto.FLOAT, ['batch', 68, 64, 64])
		],
		[
			numpy_helper.from_array(np.zeros((), np.float32), 'zero'),
			numpy_helper.from_array(np.array([1, 2], np.int64), 'unsqueeze_axes'),
			numpy_helper.from_array(np.array([1, 2, 3], np.int64), 'unsqueeze_axes_4'),
			numpy_helper.from_array(landmarks, 'landmarks'),
			numpy_helper.from_array(heatmaps, 'heatmaps')
		]
	)
	save_model(graph, path)


def write_peppa_wutz(path: Path, grid_points: np.ndarray, confidence: float) -> None:
	landmarks = np.concatenate([grid_points, np.full((68, 1), confidence)], axis=1).astype(np.float32)
	graph = helper.make_graph(
		batch_zeros_nodes(3) + [helper.make_node('Add', ['batch_zeros', 'landmarks'], ['output'])],
		'peppa_wutz',
		[image_input(256)],
		[helper.make_tensor_value_info('output', TensorProto.FLOAT, ['batch', 68, 3])],
		[
			numpy_helper.from_array(np.zeros((), np.float32), 'zero'),
			numpy_helper.from_array(np.array([1, 2], np.int64), 'unsqueeze_axes'),
			numpy_helper.from_array(landmarks, 'landmarks')
		]
	)
	save_model(graph, path)


def write_arcface(path: Path) -> None:
	"""A crude but content-dependent embedding: 14 x 14 average pooling, mean removed, random projection to 512."""
	weights = np.random.default_rng(7).standard_normal((192, 512)).astype(np.float32)
	graph = helper.make_graph(
		[
			helper.make_node('AveragePool', ['input'], ['pooled'], kernel_shape=[14, 14], strides=[14, 14]),
			helper.make_node('Flatten', ['pooled'], ['flat'], axis=1),
			helper.make_node('ReduceMean', ['flat'], ['flat_mean'], axes=[1], keepdims=1),
			helper.make_node('Sub', ['flat', 'flat_mean'], ['centred']),
			helper.make_node('MatMul', ['centred', 'weights'], ['output'])
		],
		'arcface',
		[image_input(112)],
		[helper.make_tensor_value_info('output', TensorProto.FLOAT, ['batch', 512])],
		[numpy_helper.from_array(weights, 'weights')]
	)
	save_model(graph, path)


def write_fairface(path: Path, class_ids: Tuple[int, int, int] = CLASS_IDS) -> None:
	nodes = batch_zeros_nodes(1) + [helper.make_node('Cast', ['batch_zeros'], ['int_zeros'], to=TensorProto.INT64)]
	outputs = []
	initializers = [numpy_helper.from_array(np.zeros((), np.float32), 'zero')]
	for name, class_id in zip(('race_id', 'gender_id', 'age_id'), class_ids):
		initializers.append(numpy_helper.from_array(np.array(class_id, np.int64), name + '_value'))
		nodes.append(helper.make_node('Add', ['int_zeros', name + '_value'], [name]))
		outputs.append(helper.make_tensor_value_info(name, TensorProto.INT64, ['batch']))
	save_model(helper.make_graph(nodes, 'fairface', [image_input(224)], outputs, initializers), path)


def grid_points_for(frame_points: np.ndarray, box: Sequence[float]) -> np.ndarray:
	"""Where a landmarker (angle 0) must put frame points on its 64 grid for the given face box."""
	box = np.asarray(box, np.float64)
	scale = 195 / max(float((box[2:] - box[:2]).max()), 1.0)
	translation = (256 - (box[2:] + box[:2]) * scale) * 0.5
	return (frame_points * scale + translation) / 256 * 64


def build_models(directory: Path, heat: float = 0.2, peppa_confidence: float = 0.1, grid_points: Optional[np.ndarray] = None) -> Path:
	directory.mkdir(parents=True, exist_ok=True)
	shutil.copy(DATA / 'yunet_2023_mar.onnx', directory / 'yunet_2023_mar.onnx')
	if grid_points is None:
		grid_points = np.tile(np.array([[32.0, 32.0]]), (68, 1))
	write_fan_68_5(directory / 'fan_68_5.onnx')
	write_2dfan4(directory / '2dfan4.onnx', grid_points, heat)
	write_peppa_wutz(directory / 'peppa_wutz.onnx', grid_points + 1.0, peppa_confidence)
	write_arcface(directory / 'arcface_w600k_r50.onnx')
	write_fairface(directory / 'fairface.onnx')
	return directory


class CountingInference:
	"""Wraps an InferenceManager and counts the model calls per model name."""

	def __init__(self, manager: InferenceManager) -> None:
		self.manager = manager
		self.calls: Dict[str, int] = {}

	def get(self, model_name: str) -> Any:
		session = self.manager.get(model_name)
		counter = self

		class Counted:
			input_names = session.input_names
			input_shapes = session.input_shapes

			def run(self, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
				counter.calls[model_name] = counter.calls.get(model_name, 0) + 1
				return session.run(feed)

			def run_batch(self, feed: Dict[str, Any]) -> List[np.ndarray]:
				counter.calls[model_name] = counter.calls.get(model_name, 0) + 1
				return session.run_batch(feed)

		return Counted()


@pytest.fixture(scope='module')
def models_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
	return build_models(tmp_path_factory.mktemp('models'))


@pytest.fixture(scope='module')
def photos() -> Dict[str, np.ndarray]:
	frames = {name: cv2.imread(str(DATA / (name + '.jpg'))) for name in ('obama', 'biden', 'obama_and_biden')}
	frames['astronaut'] = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
	return frames


def make_config(models_path: Path, **changes: Any) -> RunConfig:
	return RunConfig(models_path=str(models_path), face_detector_model='yunet', **changes)


def make_analyser(models_path: Path, **changes: Any) -> Tuple[FaceAnalyser, CountingInference, RunConfig]:
	config = make_config(models_path, **changes)
	inference = CountingInference(InferenceManager(config))
	return FaceAnalyser(config, inference), inference, config


# ---------------------------------------------------------------- analyser on real photos


def test_group_photo_faces_and_landmark_sets(models_path: Path, photos: Dict[str, np.ndarray]) -> None:
	analyser, inference, _ = make_analyser(models_path)
	faces = analyser.get_many_faces(photos['obama_and_biden'])
	assert len(faces) == 3
	scores = [face.score_set.detector for face in faces]
	assert scores == sorted(scores, reverse=True)
	for face, expected in zip(faces, GROUP_FACES):
		assert bounding_box_iou(face.bounding_box, expected) > 0.9
		assert face.angle == 0
		assert face.bounding_box.dtype == np.float32
		assert face.landmark_set.five.shape == (5, 2)
		assert face.landmark_set.sixty_eight.shape == (68, 2)
		assert face.landmark_set.sixty_eight_5.shape == (68, 2)
		# the stand-in 2dfan4 scores 0.2 / 0.9 < 0.5: 5/68 stays the detector's five and 68 is its own answer
		assert face.score_set.landmarker == pytest.approx(0.2 / 0.9, abs=1e-6)
		np.testing.assert_array_equal(face.landmark_set.five_68, face.landmark_set.five)
		# the stand-in fan_68_5 reproduces the five points at 36-41 / 42-47 / 30 / 48 / 54 through the unit square
		np.testing.assert_allclose(convert_to_face_landmark_5(face.landmark_set.sixty_eight_5), face.landmark_set.five, atol=0.05)
		assert face.embedding is None and face.gender is None
	# one batched call per model for all three faces
	assert inference.calls == {'yunet': 1, 'fan_68_5': 1, '2dfan4': 1}


def test_landmarker_score_zero_skips_landmarker(models_path: Path, photos: Dict[str, np.ndarray]) -> None:
	analyser, inference, _ = make_analyser(models_path, face_landmarker_score=0.0)
	faces = analyser.get_many_faces(photos['obama'])
	assert len(faces) == 1
	assert '2dfan4' not in inference.calls
	np.testing.assert_array_equal(faces[0].landmark_set.sixty_eight, faces[0].landmark_set.sixty_eight_5)
	assert faces[0].score_set.landmarker == 0.0


def test_detector_score_zero_gives_no_faces(models_path: Path, photos: Dict[str, np.ndarray]) -> None:
	analyser, _, _ = make_analyser(models_path, face_detector_score=0.0)
	assert analyser.get_many_faces(photos['obama']) == []
	analyser, _, _ = make_analyser(models_path)
	assert analyser.get_many_faces(np.zeros((200, 200, 3), np.uint8)) == []


def test_confident_landmarker_drives_five_68(tmp_path: Path, photos: Dict[str, np.ndarray]) -> None:
	"""A 2dfan4 that puts its points exactly where the detector put the face's points, at full confidence."""
	frame = photos['astronaut']
	reference, _, _ = make_analyser(build_models(tmp_path / 'probe'), face_landmarker_score=0.0)
	probe = reference.get_many_faces(frame)[0]
	shifted = probe.landmark_set.sixty_eight_5 + np.array([3.0, -2.0], np.float32)
	grid = grid_points_for(shifted.astype(np.float64), probe.bounding_box)
	analyser, _, _ = make_analyser(build_models(tmp_path / 'confident', heat=0.9, grid_points=grid))
	face = analyser.get_many_faces(frame)[0]
	assert face.score_set.landmarker == pytest.approx(1.0)
	np.testing.assert_allclose(face.landmark_set.sixty_eight, shifted, atol=0.01)
	np.testing.assert_allclose(face.landmark_set.five_68, convert_to_face_landmark_5(shifted), atol=0.01)


def test_landmarker_many_and_peppa(tmp_path: Path, photos: Dict[str, np.ndarray]) -> None:
	frame = photos['astronaut']
	box = np.array([178.0, 63.0, 268.0, 176.0], np.float32)
	# 2dfan4 scores 0.2 / 0.9 = 0.22, peppa 0.855 / 0.95 = 0.9: peppa wins under 'many'
	models = build_models(tmp_path / 'many', heat=0.2, peppa_confidence=0.855)
	config = make_config(models, face_landmarker_model='many')
	manager = InferenceManager(config)
	points_list, scores = detect_face_landmarks_68(frame, [box], [0], config, manager)
	points, score = points_list[0], scores[0]
	assert score == pytest.approx(0.9, abs=1e-5)
	# peppa answers 33 on the grid: back in the frame that is the box centre plus one grid step
	scale = 195 / 113.0
	np.testing.assert_allclose(points[0], np.array([223.0, 119.5]) + 4 / scale, atol=0.02)
	fan = ([np.zeros((68, 2))], [0.75])
	peppa = ([np.ones((68, 2))], [0.9])
	assert choose_many(fan, peppa)[1] == [0.75]
	assert choose_many(([np.zeros((68, 2))], [0.65]), peppa)[1] == [0.9]


def test_landmarker_rotated_face(models_path: Path) -> None:
	"""With angle 90 the crop is rotated; constant grid points at the crop centre map back to the box centre."""
	config = make_config(models_path)
	manager = InferenceManager(config)
	frame = np.full((300, 400, 3), 90, np.uint8)
	box = np.array([100.0, 50.0, 200.0, 250.0])
	for angle in (0, 90, 180, 270):
		points_list, _ = detect_face_landmarks_68(frame, [box], [angle], config, manager)
		np.testing.assert_allclose(points_list[0][0], [150.0, 150.0], atol=1e-3)


def test_fan_68_5_round_trip(models_path: Path) -> None:
	manager = InferenceManager(make_config(models_path))
	landmark_5 = np.array([[200, 102], [247, 103], [220, 125], [199, 143], [240, 144]], np.float32)
	landmark_68 = estimate_face_landmarks_68_5([landmark_5], manager)[0]
	assert landmark_68.shape == (68, 2) and landmark_68.dtype == np.float32
	np.testing.assert_allclose(landmark_68[36], landmark_5[0], atol=0.05)
	np.testing.assert_allclose(landmark_68[54], landmark_5[4], atol=0.05)


def test_embeddings_batched_and_only_missing(models_path: Path, photos: Dict[str, np.ndarray]) -> None:
	analyser, inference, _ = make_analyser(models_path)
	frame = photos['obama_and_biden']
	faces = analyser.get_many_faces(frame)
	sentinel = np.ones(512, np.float32)
	faces[1].embedding = sentinel
	faces[1].embedding_norm = sentinel / np.linalg.norm(sentinel)
	analyser.ensure_embeddings(frame, faces)
	assert inference.calls['arcface_w600k_r50'] == 1
	assert faces[1].embedding is sentinel
	for face in (faces[0], faces[2]):
		assert face.embedding.shape == (512,)
		assert np.linalg.norm(face.embedding_norm) == pytest.approx(1.0, abs=1e-5)
	# the batched call agrees with one face at a time
	single, single_norm = calculate_face_embeddings([frame], [faces[0].landmark_set.five_68], InferenceManager(analyser.config))
	np.testing.assert_allclose(single[0], faces[0].embedding, rtol=1e-4, atol=1e-4)
	np.testing.assert_allclose(single_norm[0], faces[0].embedding_norm, atol=1e-5)
	analyser.ensure_embeddings(frame, faces)
	assert inference.calls['arcface_w600k_r50'] == 1


def test_recognizer_input_is_rgb_and_scaled(models_path: Path, photos: Dict[str, np.ndarray]) -> None:
	"""The recognizer's tensor: arcface_112_v2 crop, RGB, x / 127.5 - 1."""
	from facefusion.face_recognizer import prepare_recognizer_crop
	frame = photos['astronaut']
	landmark_5 = WARP_TEMPLATES['arcface_112_v2'] * 300 + 40
	tensor = prepare_recognizer_crop(frame, landmark_5)
	matrix = estimate_matrix_by_face_landmark_5(landmark_5, 'arcface_112_v2', (112, 112))
	crop = cv2.warpAffine(frame, matrix, (112, 112), borderMode=cv2.BORDER_REPLICATE)
	np.testing.assert_allclose(tensor[0], crop[:, :, 2] / 127.5 - 1, atol=1e-6)
	np.testing.assert_allclose(tensor[2], crop[:, :, 0] / 127.5 - 1, atol=1e-6)
	embeddings, norms = calculate_face_embeddings([frame, frame], [landmark_5, landmark_5 + 5], InferenceManager(make_config(models_path)))
	assert embeddings.shape == (2, 512) and norms.shape == (2, 512)


def test_classification(models_path: Path, photos: Dict[str, np.ndarray]) -> None:
	analyser, inference, _ = make_analyser(models_path)
	frame = photos['obama_and_biden']
	faces = analyser.get_many_faces(frame, with_classification=True)
	assert inference.calls['fairface'] == 1
	for face in faces:
		assert (face.gender, face.age, face.race) == ('female', range(30, 39), 'asian')
	gender, age, race = classify_faces([frame], [faces[0].landmark_set.five_68], InferenceManager(analyser.config))[0]
	assert (gender, age, race) == ('female', range(30, 39), 'asian')
	assert [categorize_gender(value) for value in (0, 1, 2)] == ['male', 'female', 'male']
	assert [categorize_race(value) for value in range(7)] == ['white', 'black', 'latino', 'asian', 'asian', 'indian', 'arabic']
	assert categorize_age(0) == range(0, 2) and categorize_age(7) == range(60, 69) and categorize_age(8) == range(70, 100)


def test_cache_by_explicit_key(models_path: Path, photos: Dict[str, np.ndarray]) -> None:
	analyser, inference, _ = make_analyser(models_path)
	frame = photos['obama']
	first = analyser.get_many_faces(frame, cache_key=7)
	second = analyser.get_many_faces(frame, with_embedding=True, cache_key=7)
	assert inference.calls['yunet'] == 1
	assert second[0] is first[0] and first[0].embedding is not None
	analyser.get_many_faces(frame)
	assert inference.calls['yunet'] == 2


def test_pick_face_clamps(models_path: Path, photos: Dict[str, np.ndarray]) -> None:
	analyser, _, _ = make_analyser(models_path)
	faces = analyser.get_many_faces(photos['obama_and_biden'])
	assert pick_face(faces, 1) is faces[1]
	assert pick_face(faces, 10) is faces[-1]
	assert pick_face(faces, -2) is faces[0]
	assert pick_face(analyser.get_many_faces(np.zeros((64, 64, 3), np.uint8)), 0) is None


def test_average_face(models_path: Path, photos: Dict[str, np.ndarray]) -> None:
	analyser, inference, _ = make_analyser(models_path)
	average = analyser.get_average_face([photos['obama'], photos['biden']])
	assert inference.calls['arcface_w600k_r50'] == 1
	obama = analyser.get_many_faces(photos['obama'], with_embedding=True)[0]
	biden = analyser.get_many_faces(photos['biden'], with_embedding=True)[0]
	np.testing.assert_allclose(average.embedding, (obama.embedding + biden.embedding) / 2, rtol=1e-4, atol=1e-4)
	np.testing.assert_allclose(average.embedding_norm, (obama.embedding_norm + biden.embedding_norm) / 2, atol=1e-5)
	np.testing.assert_array_equal(average.bounding_box, obama.bounding_box)
	# the largest face of a group photo is taken
	group = analyser.get_average_face([photos['obama_and_biden']])
	assert bounding_box_iou(group.bounding_box, GROUP_FACES[0]) > 0.9
	# a blank source is left out; only blanks is an error
	single = analyser.get_average_face([np.zeros((100, 100, 3), np.uint8), photos['obama']])
	np.testing.assert_allclose(single.embedding, obama.embedding, rtol=1e-4, atol=1e-4)
	with pytest.raises(ProcessingError, match='no face detected in source'):
		analyser.get_average_face([np.zeros((100, 100, 3), np.uint8)])


def test_required_models() -> None:
	config = RunConfig()
	assert FaceAnalyser.required_models(config) == ['yolo_face', 'fan_68_5', '2dfan4', 'arcface_w600k_r50']
	config = RunConfig(face_detector_model='many', face_landmarker_model='many', face_selector_mode='one')
	assert FaceAnalyser.required_models(config) == ['retinaface', 'scrfd', 'yolo_face', 'fan_68_5', '2dfan4', 'peppa_wutz']
	config = RunConfig(face_detector_model='yunet', face_landmarker_score=0.0, face_selector_mode='many')
	assert FaceAnalyser.required_models(config) == ['yunet', 'fan_68_5']
	assert FaceAnalyser.required_models(config.with_changes(face_selector_mode='reference')) == ['yunet', 'fan_68_5', 'arcface_w600k_r50']
	assert FaceAnalyser.required_models(config.with_changes(face_selector_race='asian')) == ['yunet', 'fan_68_5', 'fairface']
	assert FaceAnalyser.required_models(config.with_changes(face_selector_gender='female'))[-1] == 'fairface'
	assert not needs_classification(config.with_changes(face_selector_age_start=0))
	assert needs_classification(config.with_changes(face_selector_age_end=30))


# ---------------------------------------------------------------- selector on constructed faces


def make_face(box: Sequence[float], score: float, embedding: Optional[Sequence[float]] = None, gender: Optional[str] = None, age: Optional[range] = None, race: Optional[str] = None) -> Face:
	points = np.zeros((5, 2), np.float32)
	points_68 = np.zeros((68, 2), np.float32)
	norm = None
	if embedding is not None:
		embedding = np.asarray(embedding, np.float32)
		norm = embedding / np.linalg.norm(embedding)
	return Face(
		bounding_box=np.asarray(box, np.float32),
		score_set=FaceScoreSet(detector=score),
		landmark_set=FaceLandmarkSet(points, points, points_68, points_68),
		embedding=embedding,
		embedding_norm=norm,
		gender=gender,
		age=age,
		race=race
	)


def positions(pool: Sequence[Face], faces: Sequence[Face]) -> List[int]:
	"""Indices by identity: Face is a dataclass with array fields, so == between two different faces raises."""
	return [next(index for index, candidate in enumerate(pool) if candidate is face) for face in faces]


@pytest.fixture()
def crowd() -> List[Face]:
	return [
		make_face((50, 10, 90, 60), 0.7, [1, 0, 0], 'male', range(20, 29), 'white'),
		make_face((10, 40, 100, 140), 0.9, [0, 1, 0], 'female', range(30, 39), 'asian'),
		make_face((200, 5, 220, 30), 0.8, [0.9, 0.1, 0], 'female', range(60, 69), 'black'),
	]


def test_sort_orders(crowd: List[Face]) -> None:
	def order_of(order: str) -> List[int]:
		return positions(crowd, sort_faces(crowd, order))

	assert order_of('left-right') == [1, 0, 2]
	assert order_of('right-left') == [2, 0, 1]
	assert order_of('top-bottom') == [2, 0, 1]
	assert order_of('bottom-top') == [1, 0, 2]
	assert order_of('small-large') == [2, 0, 1]
	assert order_of('large-small') == [1, 0, 2]
	assert order_of('best-worst') == [1, 2, 0]
	assert order_of('worst-best') == [0, 2, 1]
	assert order_of(None) == [0, 1, 2]


def test_filters(crowd: List[Face]) -> None:
	config = RunConfig()
	assert positions(crowd, filter_faces(crowd, config)) == [0, 1, 2]
	assert positions(crowd, filter_faces(crowd, config.with_changes(face_selector_gender='female'))) == [1, 2]
	assert positions(crowd, filter_faces(crowd, config.with_changes(face_selector_race='white'))) == [0]
	assert positions(crowd, filter_faces(crowd, config.with_changes(face_selector_age_start=25, face_selector_age_end=35))) == [0, 1]
	# range(29, 30) holds only 29, which range(20, 29) does not: the intersection is on values, as 3.5.0
	assert filter_faces(crowd, config.with_changes(face_selector_age_start=29, face_selector_age_end=30)) == []
	assert positions(crowd, filter_faces(crowd, config.with_changes(face_selector_age_start=61))) == [2]
	assert positions(crowd, filter_faces(crowd, config.with_changes(face_selector_gender='female', face_selector_race='black'))) == [2]


def test_face_distance(crowd: List[Face]) -> None:
	assert calculate_face_distance(crowd[0], crowd[0]) == pytest.approx(0.0, abs=1e-6)
	assert calculate_face_distance(crowd[0], crowd[1]) == pytest.approx(0.5)
	opposite = make_face((0, 0, 1, 1), 0.5, [-1, 0, 0])
	assert calculate_face_distance(crowd[0], opposite) == pytest.approx(1.0)
	cosine = 0.9 / np.linalg.norm([0.9, 0.1, 0])
	assert calculate_face_distance(crowd[0], crowd[2]) == pytest.approx((1 - cosine) / 2, abs=1e-6)
	assert positions(crowd, find_match_faces([crowd[0]], crowd, 0.3)) == [0, 2]
	assert positions(crowd, find_match_faces([crowd[0], crowd[2]], crowd, 0.3)) == [0, 2]
	with pytest.raises(ValueError):
		calculate_face_distance(crowd[0], make_face((0, 0, 1, 1), 0.5))


class ListAnalyser:
	"""A stand-in analyser serving prepared faces (selector tests need no models)."""

	def __init__(self, faces: List[Face]) -> None:
		self.faces = faces
		self.embedding_calls = 0
		self.classification_calls = 0

	def get_many_faces(self, frame: np.ndarray, with_embedding: bool = False, with_classification: bool = False) -> List[Face]:
		return list(self.faces)

	def ensure_embeddings(self, frame: np.ndarray, faces: Sequence[Face]) -> Sequence[Face]:
		self.embedding_calls += 1
		return faces

	def ensure_classification(self, frame: np.ndarray, faces: Sequence[Face]) -> Sequence[Face]:
		self.classification_calls += 1
		return faces


def test_select_modes(crowd: List[Face]) -> None:
	frame = np.zeros((10, 10, 3), np.uint8)
	analyser = ListAnalyser(crowd)
	config = RunConfig(face_selector_mode='many')
	assert positions(crowd, select_faces(frame, analyser, config)) == [1, 0, 2]
	assert analyser.classification_calls == 0 and analyser.embedding_calls == 0
	config = config.with_changes(face_selector_mode='one')
	assert positions(crowd, select_faces(frame, analyser, config)) == [1]
	config = config.with_changes(face_selector_gender='male')
	assert positions(crowd, select_faces(frame, analyser, config)) == [0]
	assert analyser.classification_calls == 1
	assert select_faces(frame, ListAnalyser([]), config) == []
	config = RunConfig(face_selector_mode='reference', reference_face_position=1)
	# sorted large-small the reference frame's faces are 1, 0, 2: position 1 is face 0
	reference_faces = get_reference_faces(frame, analyser, config)
	assert positions(crowd, reference_faces) == [0]
	assert positions(crowd, select_faces(frame, analyser, config, reference_faces)) == [0, 2]
	assert select_faces(frame, analyser, config, []) == []
	assert positions(crowd, select_faces(frame, analyser, config, reference_faces, faces=crowd[1:])) == [2]
	# position past the end is clamped; a filter that removes everything gives no reference
	assert positions(crowd, get_reference_faces(frame, analyser, config.with_changes(reference_face_position=9))) == [2]
	assert get_reference_faces(frame, analyser, config.with_changes(face_selector_race='arabic')) == []
	assert get_reference_faces(None, analyser, config) == []


def test_reference_mode_on_real_photo(models_path: Path, photos: Dict[str, np.ndarray]) -> None:
	analyser, inference, config = make_analyser(models_path, face_selector_mode='reference', reference_face_position=2, reference_face_distance=0.01)
	frame = photos['obama_and_biden']
	reference_faces = get_reference_faces(frame, analyser, config)
	assert len(reference_faces) == 1
	# large-small: the third largest face is the one at the bottom right
	assert bounding_box_iou(reference_faces[0].bounding_box, GROUP_FACES[2]) > 0.9
	selected = select_faces(frame, analyser, config, reference_faces)
	assert len(selected) == 1
	assert bounding_box_iou(selected[0].bounding_box, GROUP_FACES[2]) > 0.9
	assert 'fairface' not in inference.calls
