"""The face swapper against FaceFusion 3.5.0's formulas, on stand-in models with the real signatures.

Every expected tensor here is computed from the documented formulas with plain numpy / OpenCV / onnxruntime, not
with the engine's helpers: the model facts are written out below (not read from the registry), the inswapper emap is
read from the model file, the converters and swappers are run through fresh onnxruntime sessions.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import numpy_helper

from facefusion import choices
from facefusion.config import RunConfig
from facefusion.errors import InputError, ProcessingError
from facefusion.face_analyser import FaceAnalyser
from facefusion.face_helper import estimate_matrix_by_face_landmark_5, paste_back, paste_box
from facefusion.face_masker import FaceMasker, create_box_mask
from facefusion.face_selector import get_reference_faces, select_faces
from facefusion.inference.manager import InferenceManager
from facefusion.models.registry import get_model
from facefusion.processors.base import ProcessingContext
from facefusion.processors.modules.face_swapper import FaceSwapper
from facefusion.processors.modules.face_swapper import source as swapper_source
from facefusion.types import Face, FaceLandmarkSet, FaceScoreSet

from conftest import count_model_calls

DATA = Path(__file__).parent / 'data'
ENTRY_POINT = Path(__file__).resolve().parents[1] / 'facefusion.py'
Triple = Tuple[float, float, float]
HALF: Triple = (0.5, 0.5, 0.5)
ZERO: Triple = (0.0, 0.0, 0.0)
ONE: Triple = (1.0, 1.0, 1.0)
IMAGENET_MEAN: Triple = (0.485, 0.456, 0.406)
IMAGENET_STD: Triple = (0.229, 0.224, 0.225)

# 3.5.0's per-model facts: type, target template, model size, mean, std
MODEL_FACTS: Dict[str, Tuple[str, str, int, Triple, Triple]] = {
	'blendswap_256': ('blendswap', 'ffhq_512', 256, ZERO, ONE),
	'ghost_1_256': ('ghost', 'arcface_112_v1', 256, HALF, HALF),
	'ghost_2_256': ('ghost', 'arcface_112_v1', 256, HALF, HALF),
	'ghost_3_256': ('ghost', 'arcface_112_v1', 256, HALF, HALF),
	'hififace_unofficial_256': ('hififace', 'mtcnn_512', 256, HALF, HALF),
	'hyperswap_1a_256': ('hyperswap', 'arcface_128', 256, HALF, HALF),
	'hyperswap_1b_256': ('hyperswap', 'arcface_128', 256, HALF, HALF),
	'hyperswap_1c_256': ('hyperswap', 'arcface_128', 256, HALF, HALF),
	'inswapper_128': ('inswapper', 'arcface_128', 128, ZERO, ONE),
	'inswapper_128_fp16': ('inswapper', 'arcface_128', 128, ZERO, ONE),
	'simswap_256': ('simswap', 'arcface_112_v1', 256, IMAGENET_MEAN, IMAGENET_STD),
	'simswap_unofficial_512': ('simswap', 'arcface_112_v1', 512, ZERO, ONE),
	'uniface_256': ('uniface', 'ffhq_512', 256, HALF, HALF),
}
# 3.5.0's paste: these tests compare with its formulas, so they name the feather setting (the default blends otherwise)
CONFORMANCE_LOOKS: Dict[str, str] = {'face_swapper_blend_mode': 'feather', 'face_swapper_color_match': 'none'}
CONVERTERS = {'ghost': 'crossface_ghost', 'hififace': 'crossface_hififace', 'simswap': 'crossface_simswap'}
# image-source models: the source face's template and crop size
SOURCE_CROPS = {'blendswap': ('arcface_112_v2', 112), 'uniface': ('ffhq_512', 256)}
# outputs in the input's (x - mean) / std space; the others are taken as 0..1
DENORMALISED = ('ghost', 'hififace', 'hyperswap', 'uniface')
# 3.5.0's warp templates, unit square
TEMPLATES = {
	'arcface_112_v1': [[0.35473214, 0.45658929], [0.64526786, 0.45658929], [0.50000000, 0.61154464], [0.37913393, 0.77687500], [0.62086607, 0.77687500]],
	'arcface_112_v2': [[0.34191607, 0.46157411], [0.65653393, 0.45983393], [0.50022500, 0.64050536], [0.37097589, 0.82469196], [0.63151696, 0.82325089]],
	'arcface_128': [[0.36167656, 0.40387734], [0.63696719, 0.40235469], [0.50019687, 0.56044219], [0.38710391, 0.72160547], [0.61507734, 0.72034453]],
	'ffhq_512': [[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904], [0.39308822, 0.72541100], [0.61150205, 0.72490465]],
	'mtcnn_512': [[0.36562865, 0.46733799], [0.63305391, 0.46585885], [0.50019127, 0.61942959], [0.39032951, 0.77598822], [0.61178945, 0.77476328]],
}
# YuNet's five points on the test photos (obama.jpg; Obama in obama_and_biden.jpg)
OBAMA_LANDMARK_5 = [[439.8, 212.9], [555.5, 213.4], [496.2, 266.5], [440.2, 317.5], [547.6, 319.6]]
GROUP_OBAMA_LANDMARK_5 = [[1190.7, 446.9], [1271.5, 440.7], [1238.1, 492.6], [1208.2, 533.7], [1282.1, 529.8]]
SWAPPER_MODELS = list(choices.face_swapper_models)


# ---------------------------------------------------------------- helpers


class FakeAnalyser:
	"""A known source face and a known target embedding, with a count of the embedding requests."""

	def __init__(self, source_face: Optional[Face], target_embedding: np.ndarray) -> None:
		self.source_face = source_face
		self.target_embedding = target_embedding
		self.embedding_calls = 0

	def get_average_face(self, frames: Sequence[np.ndarray]) -> Optional[Face]:
		return self.source_face

	def get_many_faces(self, frame: np.ndarray) -> List[Face]:
		return [self.source_face] if self.source_face else []

	def ensure_embeddings(self, frame: np.ndarray, faces: Sequence[Face]) -> Sequence[Face]:
		self.embedding_calls += 1
		for face in faces:
			face.embedding = self.target_embedding.copy()
			face.embedding_norm = self.target_embedding / np.linalg.norm(self.target_embedding)
		return faces


def make_face(landmark_5: Sequence[Sequence[float]], embedding: Optional[np.ndarray] = None) -> Face:
	points = np.array(landmark_5, dtype=np.float32)
	face = Face(
		bounding_box=np.array([*points.min(axis=0) - 40, *points.max(axis=0) + 40], dtype=np.float32),
		score_set=FaceScoreSet(detector=0.9),
		landmark_set=FaceLandmarkSet(five=points, five_68=points, sixty_eight=np.zeros((68, 2), np.float32), sixty_eight_5=np.zeros((68, 2), np.float32))
	)
	if embedding is not None:
		face.embedding = embedding
		face.embedding_norm = embedding / np.linalg.norm(embedding)
	return face


def known_embedding(seed: int) -> np.ndarray:
	# arcface's raw embeddings have a norm of about 20; the norm matters for inswapper's division
	return (np.random.RandomState(seed).standard_normal(512) * 0.9).astype(np.float32)


def known_crop(size: int, seed: int = 7) -> np.ndarray:
	return np.random.RandomState(seed).randint(0, 256, (size, size, 3)).astype(np.uint8)


def read(name: str) -> np.ndarray:
	return cv2.imread(str(DATA / name))


def make_swapper(
	models_dir: Path,
	model: str,
	weight: float = 0.5,
	pixel_boost: Optional[str] = None,
	batching: str = 'auto',
	source_embedding: Optional[np.ndarray] = None,
	target_embedding: Optional[np.ndarray] = None
) -> Tuple[FaceSwapper, FakeAnalyser]:
	config = RunConfig(
		models_path=str(models_dir), face_swapper_model=model, face_swapper_pixel_boost=pixel_boost, face_swapper_weight=weight,
		face_swapper_batching=batching, face_mask_types=['box'], execution_providers=['cpu'], **CONFORMANCE_LOOKS
	)
	inference = InferenceManager(config)
	source_face = make_face(OBAMA_LANDMARK_5, known_embedding(1) if source_embedding is None else source_embedding)
	analyser = FakeAnalyser(source_face, known_embedding(2) if target_embedding is None else target_embedding)
	context = ProcessingContext(
		config=config, inference=inference, analyser=analyser, masker=FaceMasker(config, inference), source_frames=[read('obama.jpg')]
	)
	swapper = FaceSwapper(context)
	swapper.prepare()
	return swapper, analyser


def ort_session(path: Path) -> onnxruntime.InferenceSession:
	return onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])


def warp(frame: np.ndarray, landmark_5: np.ndarray, template: str, size: int) -> Tuple[np.ndarray, np.ndarray]:
	"""RANSAC similarity onto the template × size, bilinear warp with replicated border."""
	target = np.array(TEMPLATES[template], dtype=np.float64) * size
	matrix, _ = cv2.estimateAffinePartial2D(np.asarray(landmark_5, dtype=np.float64), target, method=cv2.RANSAC, ransacReprojThreshold=100)
	crop = cv2.warpAffine(frame, matrix, (size, size), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_AREA)
	return crop, matrix


def expected_target(crop: np.ndarray, model: str) -> np.ndarray:
	"""sub-image (i, j) = rows r·k + i, cols c·k + j (in order i·k + j), then RGB, / 255, (x - mean) / std."""
	_, _, size, mean, std = MODEL_FACTS[model]
	factor = crop.shape[0] // size
	items = []
	for row_phase in range(factor):
		for column_phase in range(factor):
			rgb = crop[row_phase::factor, column_phase::factor][:, :, [2, 1, 0]].astype(np.float64) / 255
			items.append(((rgb - np.array(mean)) / np.array(std)).transpose(2, 0, 1))
	return np.array(items, dtype=np.float32)


def expected_source(models_dir: Path, model: str, source_face: Face, source_frame: np.ndarray, target_embedding: np.ndarray, weight: float) -> np.ndarray:
	"""source input, then the identity weight."""
	swapper_type = MODEL_FACTS[model][0]
	if swapper_type in SOURCE_CROPS:
		template, size = SOURCE_CROPS[swapper_type]
		crop, _ = warp(source_frame, source_face.landmark_set.five_68, template, size)
		return (crop[:, :, ::-1] / 255.0).transpose(2, 0, 1)[np.newaxis].astype(np.float32)
	embedding = source_face.embedding.astype(np.float32)
	if swapper_type == 'hyperswap':
		source = source_face.embedding_norm
	elif swapper_type == 'inswapper':
		emap = numpy_helper.to_array(onnx.load(str(models_dir / (model + '.onnx'))).graph.initializer[-1])
		source = embedding @ emap / np.linalg.norm(embedding)
	else:
		converted = ort_session(models_dir / (CONVERTERS[swapper_type] + '.onnx')).run(None, {'input': embedding.reshape(1, 512)})[0].ravel()
		source = converted if swapper_type == 'ghost' else converted / np.linalg.norm(converted)
	mix = np.float32(np.interp(weight, [0, 1], [0.35, -0.35]))
	if mix != 0:
		target = target_embedding if swapper_type == 'ghost' else target_embedding / np.linalg.norm(target_embedding)
		source = source * (1 - mix) + target * mix
	return np.asarray(source, dtype=np.float32).reshape(1, 512)


def expected_swap(models_dir: Path, model: str, target: np.ndarray, source: np.ndarray) -> np.ndarray:
	"""3.5.0's loop: one call per sub-image (batch 1), first output, output normalisation, re-interleave."""
	swapper_type, _, size, mean, std = MODEL_FACTS[model]
	session = ort_session(models_dir / (model + '.onnx'))
	factor = int(round(np.sqrt(len(target))))
	result = np.zeros((size * factor, size * factor, 3), dtype=np.float64)
	for index in range(len(target)):
		output = session.run(None, {'source': source, 'target': target[index:index + 1]})[0][0].transpose(1, 2, 0)
		if swapper_type in DENORMALISED:
			output = output * np.array(std) + np.array(mean)
		result[index // factor::factor, index % factor::factor] = np.clip(output, 0, 1)[:, :, ::-1] * 255
	return result


# ---------------------------------------------------------------- model facts and required models


@pytest.mark.parametrize('model', SWAPPER_MODELS)
def test_registry_holds_the_documented_facts(model: str) -> None:
	spec = get_model(model)
	swapper_type, template, size, mean, std = MODEL_FACTS[model]
	assert (spec.swapper_type, spec.template, spec.size) == (swapper_type, template, (size, size))
	np.testing.assert_allclose(spec.mean, mean)
	np.testing.assert_allclose(spec.std, std)
	assert spec.converter == CONVERTERS.get(swapper_type)
	if swapper_type in SOURCE_CROPS:
		assert (spec.source_template, spec.source_size) == (SOURCE_CROPS[swapper_type][0], (SOURCE_CROPS[swapper_type][1],) * 2)


def test_required_models() -> None:
	assert FaceSwapper.required_models(RunConfig(face_swapper_model='hyperswap_1a_256')) == ['hyperswap_1a_256', 'arcface_w600k_r50']
	assert FaceSwapper.required_models(RunConfig(face_swapper_model='simswap_256')) == ['simswap_256', 'crossface_simswap', 'arcface_w600k_r50']
	assert FaceSwapper.required_models(RunConfig(face_swapper_model='inswapper_128_fp16')) == ['inswapper_128_fp16', 'arcface_w600k_r50']


# ---------------------------------------------------------------- conformance per model


@pytest.mark.parametrize('weight', [0.5, 0.9])
@pytest.mark.parametrize('model', SWAPPER_MODELS)
def test_model_inputs_follow_the_formulas(standin_models_dir: Path, model: str, weight: float) -> None:
	swapper, analyser = make_swapper(standin_models_dir, model, weight=weight, pixel_boost=str(MODEL_FACTS[model][2] * 2) + 'x' + str(MODEL_FACTS[model][2] * 2))
	crop = known_crop(MODEL_FACTS[model][2] * 2)
	target_embedding = analyser.target_embedding
	feed = swapper.model_feed([crop], [target_embedding])
	assert set(feed) == {'source', 'target'}
	assert feed['target'].dtype == np.float32 and feed['source'].dtype == np.float32
	np.testing.assert_array_equal(feed['target'], expected_target(crop, model))
	source = expected_source(standin_models_dir, model, analyser.source_face, read('obama.jpg'), target_embedding, weight)
	assert feed['source'].shape == (4,) + source.shape[1:]
	for item in feed['source']:
		np.testing.assert_allclose(item, source[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('model', SWAPPER_MODELS)
def test_swapped_crop_equals_the_independent_pipeline(standin_models_dir: Path, model: str) -> None:
	size = MODEL_FACTS[model][2]
	swapper, analyser = make_swapper(standin_models_dir, model, weight=1.0, pixel_boost=str(size * 2) + 'x' + str(size * 2))
	crop = known_crop(size * 2, seed=11)
	target = expected_target(crop, model)
	source = expected_source(standin_models_dir, model, analyser.source_face, read('obama.jpg'), analyser.target_embedding, 1.0)
	expected = expected_swap(standin_models_dir, model, target, source)
	swapped = swapper.swap_crops([crop], [analyser.target_embedding])[0]
	assert swapped.shape == crop.shape and swapped.dtype == np.float32
	np.testing.assert_allclose(swapped, expected, atol=2e-3)
	# the stand-ins mix source and target: a different source identity must give a different crop
	other, _ = make_swapper(standin_models_dir, model, weight=1.0, pixel_boost=str(size * 2) + 'x' + str(size * 2), source_embedding=known_embedding(5))
	if MODEL_FACTS[model][0] not in SOURCE_CROPS:
		assert np.abs(other.swap_crops([crop], [analyser.target_embedding])[0] - swapped).max() > 1


@pytest.mark.parametrize('model', SWAPPER_MODELS)
def test_process_frame_warps_swaps_masks_and_pastes_as_3_5_0(standin_models_dir: Path, model: str) -> None:
	swapper_type, template, size, _, _ = MODEL_FACTS[model]
	swapper, analyser = make_swapper(standin_models_dir, model)
	frame = read('obama_and_biden.jpg')
	face = make_face(GROUP_OBAMA_LANDMARK_5)
	output = swapper.process_frame(frame, [face], frame.copy())
	# independent: warp with the documented template, swap, default box mask (blur 0.3, padding 0), paste back
	crop, matrix = warp(frame, face.landmark_set.five_68, template, size)
	source = expected_source(standin_models_dir, model, analyser.source_face, read('obama.jpg'), analyser.target_embedding, 0.5)
	swapped = expected_swap(standin_models_dir, model, expected_target(crop, model), source)
	expected = paste_back(frame, swapped.astype(np.float32), create_box_mask((size, size), 0.3, (0, 0, 0, 0)), matrix)
	assert np.abs(output.astype(int) - expected.astype(int)).max() <= 1
	assert np.mean(output != frame) > 0.001
	# the default weight (0.5) leaves the target identity out: no target embedding is computed
	assert analyser.embedding_calls == 0 and face.embedding is None


# ---------------------------------------------------------------- identity weight and the source


@pytest.mark.parametrize('model, weight, calls', [
	('hyperswap_1a_256', 0.5, 0),
	('hyperswap_1a_256', 0.9, 1),
	('ghost_1_256', 0.0, 1),
	('inswapper_128', 1.0, 1),
	('uniface_256', 0.9, 0),
	('blendswap_256', 0.0, 0),
])
def test_target_embedding_is_computed_only_when_the_weight_uses_it(standin_models_dir: Path, model: str, weight: float, calls: int) -> None:
	swapper, analyser = make_swapper(standin_models_dir, model, weight=weight)
	assert swapper.needs_target_embeddings() == (calls == 1)
	frame = read('obama_and_biden.jpg')
	face = make_face(GROUP_OBAMA_LANDMARK_5)
	swapper.process_frame(frame, [face], frame.copy())
	assert analyser.embedding_calls == calls
	# what was computed went into a copy: the caller's face is left as it was
	assert face.embedding is None and face.embedding_norm is None
	# a face that already carries its embedding is not analysed again
	face = make_face(GROUP_OBAMA_LANDMARK_5, known_embedding(3))
	swapper.process_frame(frame, [face], frame.copy())
	assert analyser.embedding_calls == calls


def snapshot(face: Face) -> Dict[str, object]:
	"""Every field of a face, arrays copied, so that a later write into the record or into its arrays shows."""
	fields = dict(vars(face))
	fields['landmark_set'] = {name: value.copy() for name, value in vars(face.landmark_set).items()}
	fields['score_set'] = dict(vars(face.score_set))
	fields['bounding_box'] = face.bounding_box.copy()
	return fields


def test_process_frames_leaves_the_faces_as_it_got_them(standin_models_dir: Path) -> None:
	"""The faces belong to the analyse stage (processors run in worker threads): a weight that needs the target
	embedding must not make the swapper fill it into the faces it is given, and the output is the same as when the
	workflow filled it beforehand."""
	context = analysed_context(standin_models_dir, face_selector_mode='many', face_swapper_weight=0.8)
	swapper = FaceSwapper(context)
	swapper.prepare()
	assert swapper.needs_target_embeddings()
	frame = read('obama_and_biden.jpg')
	faces = select_faces(frame, context.analyser, context.config)
	assert len(faces) >= 2 and all(face.embedding is None for face in faces)
	before = [snapshot(face) for face in faces]
	output = swapper.process_frames([(frame, faces, frame.copy())])[0]
	for face, fields in zip(faces, before):
		assert face.embedding is None and face.embedding_norm is None
		after = snapshot(face)
		assert after.keys() == fields.keys()
		for name, value in fields.items():
			if isinstance(value, dict):
				assert value.keys() == after[name].keys()
				for key in value:
					np.testing.assert_array_equal(after[name][key], value[key])
			else:
				np.testing.assert_array_equal(after[name], value)
	prefilled = [dataclasses.replace(face) for face in faces]
	context.analyser.ensure_embeddings(frame, prefilled)
	np.testing.assert_array_equal(swapper.process_frames([(frame, prefilled, frame.copy())])[0], output)
	assert np.any(output != frame)


def test_weight_moves_the_identity_both_ways(standin_models_dir: Path) -> None:
	crop = known_crop(256)
	results = {}
	for weight in (0.0, 0.5, 1.0):
		swapper, analyser = make_swapper(standin_models_dir, 'hyperswap_1a_256', weight=weight)
		results[weight] = swapper.model_feed([crop], [analyser.target_embedding])['source'][0]
	source = results[0.5]
	target = known_embedding(2) / np.linalg.norm(known_embedding(2))
	np.testing.assert_allclose(results[0.0], source * 0.65 + target * 0.35, rtol=1e-5, atol=1e-6)
	np.testing.assert_allclose(results[1.0], source * 1.35 - target * 0.35, rtol=1e-5, atol=1e-6)


def test_inswapper_emap_is_read_once_from_the_last_initializer(standin_models_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
	"""Read out of the model once, then from memory, and after the memory strategy dropped it from the copy kept on
	disk: the model (554 MB for the real one) is not parsed again at each start."""
	monkeypatch.setenv('FACEFUSION_CACHE_PATH', str(tmp_path))
	# the first swapper also makes (and remembers) the dynamic-batch copy of the model, which reads the file too
	make_swapper(standin_models_dir, 'inswapper_128')
	swapper_source.clear_emap_cache()
	for kept in (tmp_path / 'emaps').glob('*.npy'):
		kept.unlink()
	loads: List[str] = []
	original_load = onnx.load

	def counting_load(path: str, *arguments: object, **keywords: object) -> onnx.ModelProto:
		loads.append(str(path))
		return original_load(path, *arguments, **keywords)

	monkeypatch.setattr(onnx, 'load', counting_load)
	first, _ = make_swapper(standin_models_dir, 'inswapper_128')
	second, _ = make_swapper(standin_models_dir, 'inswapper_128', weight=0.8)
	assert len(loads) == 1
	emap = numpy_helper.to_array(original_load(str(standin_models_dir / 'inswapper_128.onnx')).graph.initializer[-1])
	assert emap.shape == (512, 512)
	embedding = known_embedding(1)
	np.testing.assert_allclose(first.source_identity.extras['embedding'][0], embedding @ emap / np.linalg.norm(embedding), rtol=1e-5, atol=1e-6)
	# the strict memory strategy (default) drops the matrix after the run, as 3.5.0 clears its initializer cache; the
	# next run reads the copy kept on disk
	second.release()
	third, _ = make_swapper(standin_models_dir, 'inswapper_128')
	assert len(loads) == 1 and len(list((tmp_path / 'emaps').glob('*.npy'))) == 1
	np.testing.assert_array_equal(third.source_identity.extras['embedding'], first.source_identity.extras['embedding'])


def test_prepare_without_source_is_an_input_error(standin_models_dir: Path) -> None:
	config = RunConfig(models_path=str(standin_models_dir), face_swapper_model='inswapper_128')
	inference = InferenceManager(config)
	context = ProcessingContext(config=config, inference=inference, analyser=FakeAnalyser(None, known_embedding(2)), masker=FaceMasker(config, inference))
	with pytest.raises(InputError):
		FaceSwapper(context).prepare()


def test_prepare_without_source_face_is_a_processing_error(standin_models_dir: Path) -> None:
	config = RunConfig(models_path=str(standin_models_dir), face_detector_model='yunet', source_paths=['blank.png'])
	inference = InferenceManager(config)
	context = ProcessingContext(
		config=config, inference=inference, analyser=FaceAnalyser(config, inference), masker=FaceMasker(config, inference),
		source_frames=[np.zeros((320, 320, 3), np.uint8)]
	)
	with pytest.raises(ProcessingError, match='no face detected in source'):
		FaceSwapper(context).prepare()


def test_image_source_comes_from_the_first_source_image_with_a_face(standin_models_dir: Path) -> None:
	"""3.5.0 crops the first source path; with a faceless first image that would pair another image's landmarks with
	it, so the crop comes from the image the averaged face's landmarks belong to."""
	config = RunConfig(models_path=str(standin_models_dir), face_detector_model='yunet', face_swapper_model='uniface_256')
	inference = InferenceManager(config)
	analyser = FaceAnalyser(config, inference)
	obama = read('obama.jpg')
	context = ProcessingContext(
		config=config, inference=inference, analyser=analyser, masker=FaceMasker(config, inference),
		source_frames=[np.zeros((320, 320, 3), np.uint8), obama]
	)
	swapper = FaceSwapper(context)
	swapper.prepare()
	face = analyser.get_average_face([obama])
	np.testing.assert_array_equal(swapper.source_identity.extras['frame'], expected_source(standin_models_dir, 'uniface_256', face, obama, face.embedding, 0.5))


# ---------------------------------------------------------------- whole frames with the real detector


def analysed_context(models_dir: Path, **changes: object) -> ProcessingContext:
	config = RunConfig(models_path=str(models_dir), face_detector_model='yunet', execution_providers=['cpu'], **{**CONFORMANCE_LOOKS, **changes})
	inference = InferenceManager(config)
	return ProcessingContext(
		config=config, inference=inference, analyser=FaceAnalyser(config, inference), masker=FaceMasker(config, inference),
		source_frames=[read('obama.jpg')]
	)


def face_paste_box(frame: np.ndarray, face: Face, model: str = 'hyperswap_1a_256') -> Tuple[int, int, int, int]:
	_, template, size, _, _ = MODEL_FACTS[model]
	return paste_box(frame.shape, (size, size), estimate_matrix_by_face_landmark_5(face.landmark_set.five_68, template, (size, size)))


def changed_pixels(before: np.ndarray, after: np.ndarray) -> np.ndarray:
	return np.any(before != after, axis=2)


def inside(shape: Tuple[int, ...], boxes: Sequence[Tuple[int, int, int, int]]) -> np.ndarray:
	region = np.zeros(shape[:2], dtype=bool)
	for x1, y1, x2, y2 in boxes:
		region[y1:y2, x1:x2] = True
	return region


def test_many_mode_changes_pixels_only_inside_the_faces(standin_models_dir: Path) -> None:
	context = analysed_context(standin_models_dir, face_selector_mode='many')
	swapper = FaceSwapper(context)
	swapper.prepare()
	frame = read('obama_and_biden.jpg')
	faces = select_faces(frame, context.analyser, context.config)
	assert len(faces) >= 2
	output = swapper.process_frame(frame, faces, frame.copy())
	changed = changed_pixels(frame, output)
	boxes = [face_paste_box(frame, face) for face in faces]
	assert not changed[~inside(frame.shape, boxes)].any()
	for x1, y1, x2, y2 in boxes:
		assert changed[y1:y2, x1:x2].mean() > 0.05


@pytest.mark.parametrize('position', [0, 1])
def test_reference_mode_changes_only_the_matching_face(standin_models_dir: Path, position: int) -> None:
	context = analysed_context(standin_models_dir, face_selector_mode='reference', reference_face_position=position)
	frame = read('obama_and_biden.jpg')
	context.reference_faces = get_reference_faces(frame, context.analyser, context.config)
	swapper = FaceSwapper(context)
	swapper.prepare()
	faces = select_faces(frame, context.analyser, context.config, context.reference_faces)
	all_faces = context.analyser.get_many_faces(frame)
	assert len(faces) == 1 and len(all_faces) >= 2
	assert np.array_equal(faces[0].bounding_box, context.reference_faces[0].bounding_box)
	output = swapper.process_frame(frame, faces, frame.copy())
	changed = changed_pixels(frame, output)
	box = face_paste_box(frame, faces[0])
	assert not changed[~inside(frame.shape, [box])].any()
	assert changed[box[1]:box[3], box[0]:box[2]].mean() > 0.05
	# the other faces' own regions (their boxes minus the matching face's paste box) stay untouched
	for face in all_faces:
		if not np.array_equal(face.bounding_box, faces[0].bounding_box):
			x1, y1, x2, y2 = (int(value) for value in face.bounding_box)
			assert not (changed[y1:y2, x1:x2] & ~inside(frame.shape, [box])[y1:y2, x1:x2]).any()


def test_every_mask_type_is_taken_on_the_right_crop(standin_models_dir: Path) -> None:
	"""box and occlusion on the target crop before the swap, area (68 points mapped into the crop) and region
	on the swapped crop, the minimum of all of them for the paste."""
	context = analysed_context(
		standin_models_dir, face_selector_mode='many', face_swapper_pixel_boost='512x512',
		face_mask_types=['box', 'occlusion', 'area', 'region'], face_mask_areas=['upper-face', 'lower-face'], face_mask_regions=['skin', 'nose']
	)
	swapper = FaceSwapper(context)
	swapper.prepare()
	frame = read('obama_and_biden.jpg')
	face = select_faces(frame, context.analyser, context.config)[0]
	output = swapper.process_frame(frame, [face], frame.copy())
	crop, matrix = warp(frame, face.landmark_set.five_68, 'arcface_128', 512)
	masker = context.masker
	swapped = swapper.swap_crops([crop], [None])[0]
	landmark_68 = cv2.transform(face.landmark_set.sixty_eight.reshape(1, -1, 2).astype(np.float64), matrix).reshape(-1, 2)
	masks = [
		create_box_mask((512, 512), 0.3, (0, 0, 0, 0)),
		masker.occlusion_masks([crop])[0],
		masker.area_mask((512, 512), landmark_68, ['upper-face', 'lower-face']),
		masker.region_masks([swapped], ['skin', 'nose'])[0]
	]
	crop_mask = np.minimum.reduce(masks).clip(0, 1)
	# every mask takes part: the combination is tighter than each of them alone
	for mask in masks:
		assert crop_mask.sum() < mask.sum()
	expected = paste_back(frame, swapped, crop_mask, matrix)
	assert np.abs(output.astype(int) - expected.astype(int)).max() <= 1


def test_faces_batched_together_equal_faces_one_by_one(standin_models_dir: Path) -> None:
	frame = read('obama_and_biden.jpg')
	outputs = []
	calls = []
	for batching in ('auto', 'never'):
		context = analysed_context(standin_models_dir, face_selector_mode='many', face_swapper_batching=batching)
		swapper = FaceSwapper(context)
		swapper.prepare()
		counter = count_model_calls(swapper)
		faces = select_faces(frame, context.analyser, context.config)
		outputs.append(swapper.process_frame(frame, faces, frame.copy()))
		calls.append(len(counter.batch_sizes))
	assert np.abs(outputs[0].astype(int) - outputs[1].astype(int)).max() <= 1
	assert calls[0] < calls[1]


def test_overlapping_faces_are_swapped_one_after_the_other(standin_models_dir: Path) -> None:
	"""The second face's crop must show the first face already swapped (3.5.0's order), so the two cannot share a call."""
	frame = read('obama_and_biden.jpg')
	faces_landmarks = [GROUP_OBAMA_LANDMARK_5, (np.array(GROUP_OBAMA_LANDMARK_5) + [40, 25]).tolist()]
	outputs = {}
	for batching in ('auto', 'never'):
		swapper, _ = make_swapper(standin_models_dir, 'hyperswap_1a_256', batching=batching)
		counter = count_model_calls(swapper)
		outputs[batching] = swapper.process_frame(frame, [make_face(landmarks) for landmarks in faces_landmarks], frame.copy())
		assert counter.batch_sizes == [1, 1]
	np.testing.assert_array_equal(outputs['auto'], outputs['never'])
	swapper, _ = make_swapper(standin_models_dir, 'hyperswap_1a_256')
	first_then_second = swapper.process_frame(frame, [make_face(faces_landmarks[0])], frame.copy())
	first_then_second = swapper.process_frame(frame, [make_face(faces_landmarks[1])], first_then_second)
	np.testing.assert_array_equal(outputs['auto'], first_then_second)
	# cropping both from the unswapped frame (one shared call) would give another picture: the order is visible
	together = frame.copy()
	jobs = swapper.start_jobs(frame, [make_face(landmarks) for landmarks in faces_landmarks], together)
	assert np.any(swapper.finish_job_groups([jobs], [together])[0] != first_then_second)





# ---------------------------------------------------------------- the command line, every model


@pytest.fixture(scope='module')
def cli_runs(standin_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Tuple[subprocess.CompletedProcess, Path, Path]]:
	"""`python facefusion.py headless-run` once per model, several at a time (each run is mostly start-up and
	fixed model costs, so running them side by side keeps the suite fast)."""
	folder = tmp_path_factory.mktemp('cli_runs')
	target_path = folder / 'group.jpg'
	frame = read('obama_and_biden.jpg')
	cv2.imwrite(str(target_path), cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA))
	environment = dict(os.environ, FACEFUSION_MODELS_PATH=str(standin_models_dir), FACEFUSION_DOWNLOAD_BASE_URL='http://127.0.0.1:9')

	def run(model: str) -> Tuple[subprocess.CompletedProcess, Path, Path]:
		output_path = folder / model / 'out' / 'group.jpg'
		output_path.parent.mkdir(parents=True)
		command = [
			sys.executable, str(ENTRY_POINT), 'headless-run', '-s', str(DATA / 'obama.jpg'), '-t', str(target_path), '-o', str(output_path),
			'--face-swapper-model', model, '--face-detector-model', 'yunet', '--face-selector-mode', 'many'
		]
		result = subprocess.run(command, cwd=str(folder / model), env=environment, capture_output=True, text=True, timeout=180)
		return result, target_path, output_path

	with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as executor:
		return dict(zip(SWAPPER_MODELS, executor.map(run, SWAPPER_MODELS)))


@pytest.mark.parametrize('model', SWAPPER_MODELS)
def test_headless_run_with_every_model(cli_runs: Dict[str, Tuple[subprocess.CompletedProcess, Path, Path]], model: str) -> None:
	result, target_path, output_path = cli_runs[model]
	assert result.returncode == 0, result.stderr
	target = cv2.imread(str(target_path))
	output = cv2.imread(str(output_path))
	assert output is not None and output.shape == target.shape
	# the faces changed well beyond the JPEG re-encoding noise seen elsewhere (Biden's face, at half size)
	difference = np.abs(output.astype(int) - target.astype(int)).sum(axis=2)
	x1, y1, x2, y2 = (value // 2 for value in (765, 404, 935, 642))
	assert difference[y1:y2, x1:x2].mean() > 3 * difference.mean()
