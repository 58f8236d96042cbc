"""Pixel boost: the strided split and merge, and the batched swap of the k² sub-images."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pytest

from facefusion.config import RunConfig
from facefusion.errors import FaceFusionError
from facefusion.face_masker import FaceMasker
from facefusion.gpu.array_ops import normalize_outputs
from facefusion.inference.manager import InferenceManager
from facefusion.processors.base import ProcessingContext
from facefusion.processors.modules.face_swapper import FaceSwapper
from facefusion.processors.modules.face_swapper.core import DENORMALISED_OUTPUT_TYPES
from facefusion.processors.modules.face_swapper.pixel_boost import boost_factor, explode_batch, implode_batch, parse_size
from facefusion.types import Face, FaceLandmarkSet, FaceScoreSet

from conftest import count_model_calls

DATA = Path(__file__).parent / 'data'
OBAMA_LANDMARK_5 = [[439.8, 212.9], [555.5, 213.4], [496.2, 266.5], [440.2, 317.5], [547.6, 319.6]]
GROUP_OBAMA_LANDMARK_5 = [[1190.7, 446.9], [1271.5, 440.7], [1238.1, 492.6], [1208.2, 533.7], [1282.1, 529.8]]


# ---------------------------------------------------------------- implode / explode


@pytest.mark.parametrize('factor', [1, 2, 3, 4])
@pytest.mark.parametrize('channels', [(3,), ()])
def test_implode_then_explode_is_identity(factor: int, channels: Tuple[int, ...]) -> None:
	size = 16
	crops = np.random.RandomState(factor).randint(0, 256, (2, size * factor, size * factor) + channels).astype(np.uint8)
	sub_images = implode_batch(crops, (size, size))
	assert sub_images.shape == (2 * factor * factor, size, size) + channels
	restored = explode_batch(sub_images, (size * factor, size * factor))
	assert restored.dtype == crops.dtype
	np.testing.assert_array_equal(restored, crops)
	# float sub-images (as the swapper returns them) come back the same way
	np.testing.assert_array_equal(explode_batch(sub_images.astype(np.float32), (size * factor, size * factor)), crops.astype(np.float32))


@pytest.mark.parametrize('factor', [2, 4])
def test_sub_image_i_j_holds_rows_r_k_plus_i_and_columns_c_k_plus_j(factor: int) -> None:
	size = 8
	rows, columns = np.mgrid[:size * factor, :size * factor]
	# every pixel names its own position and its crop, so a misplaced pixel is caught by value
	crops = np.stack([np.stack([rows, columns, np.full_like(rows, index)], axis=-1) for index in range(2)])
	sub_images = implode_batch(crops, (size, size))
	for index in range(2):
		for row_phase in range(factor):
			for column_phase in range(factor):
				# face-major: the k² sub-images of crop 0, then those of crop 1
				sub_image = sub_images[index * factor * factor + row_phase * factor + column_phase]
				for r in range(size):
					for c in range(size):
						assert tuple(sub_image[r, c]) == (r * factor + row_phase, c * factor + column_phase, index)


def test_sizes_that_do_not_split_evenly_are_refused() -> None:
	assert boost_factor((512, 512), (128, 128)) == 4
	assert parse_size('768x768') == (768, 768)
	with pytest.raises(FaceFusionError, match='not a multiple'):
		boost_factor((384, 384), (256, 256))
	with pytest.raises(FaceFusionError):
		boost_factor((128, 128), (256, 256))
	with pytest.raises(FaceFusionError):
		implode_batch(np.zeros((1, 300, 300, 3), np.uint8), (256, 256))
	with pytest.raises(ValueError):
		explode_batch(np.zeros((3, 8, 8, 3), np.uint8), (16, 16))


def test_processor_refuses_blendswap_384(standin_models_dir: Path) -> None:
	# 3.5.0 lists 384x384 for blendswap_256; the CLI refuses it, a library caller gets the same clear message
	with pytest.raises(FaceFusionError, match='384x384 is not a multiple of the model size 256x256'):
		make_swapper(standin_models_dir, 'blendswap_256', '384x384')


# ---------------------------------------------------------------- the batched swap


class FakeAnalyser:
	def __init__(self, source_face: Face) -> None:
		self.source_face = source_face

	def get_average_face(self, frames: Sequence[np.ndarray]) -> Face:
		return self.source_face

	def ensure_embeddings(self, frame: np.ndarray, faces: Sequence[Face]) -> Sequence[Face]:
		raise AssertionError('the default weight needs no target embedding')


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


def make_swapper(models_dir: Path, model: str, pixel_boost: str, batching: str = 'auto') -> FaceSwapper:
	config = RunConfig(
		models_path=str(models_dir), face_swapper_model=model, face_swapper_pixel_boost=pixel_boost, face_swapper_batching=batching,
		face_mask_types=['box'], execution_providers=['cpu']
	)
	inference = InferenceManager(config)
	embedding = (np.random.RandomState(1).standard_normal(512) * 0.9).astype(np.float32)
	context = ProcessingContext(
		config=config, inference=inference, analyser=FakeAnalyser(make_face(OBAMA_LANDMARK_5, embedding)),
		masker=FaceMasker(config, inference), source_frames=[cv2.imread(str(DATA / 'obama.jpg'))]
	)
	swapper = FaceSwapper(context)
	swapper.prepare()
	return swapper



@pytest.mark.parametrize('model, pixel_boost', [
	('hyperswap_1a_256', '512x512'),
	('simswap_256', '1024x1024'),
	('uniface_256', '768x768'),
	('inswapper_128', '384x384'),
])
def test_boosted_swap_in_one_batch_equals_one_by_one(standin_models_dir: Path, model: str, pixel_boost: str) -> None:
	size = parse_size(pixel_boost)[0]
	crop = np.random.RandomState(3).randint(0, 256, (size, size, 3)).astype(np.uint8)
	batched = make_swapper(standin_models_dir, model, pixel_boost, 'auto')
	single = make_swapper(standin_models_dir, model, pixel_boost, 'never')
	single_calls = count_model_calls(single)
	batched_result = batched.swap_crops([crop], [None])[0]
	single_result = single.swap_crops([crop], [None])[0]
	factor = boost_factor((size, size), batched.model_size)
	assert single_calls.batch_sizes == [1] * factor * factor
	np.testing.assert_allclose(batched_result, single_result, atol=1e-3)
	# and by hand: sub-image i·k + j alone through the session lands at row phase i, column phase j
	session = batched.session
	feed = batched.model_feed([crop], [None])
	denormalise = batched.swapper_type in DENORMALISED_OUTPUT_TYPES
	for index in range(factor * factor):
		output = session.run({'source': feed['source'][index:index + 1], 'target': feed['target'][index:index + 1]})[0]
		tile = normalize_outputs(output, denormalise, batched.spec.mean, batched.spec.std)[0]
		np.testing.assert_allclose(batched_result[index // factor::factor, index % factor::factor], tile, atol=1e-3)
	# a boosted crop keeps detail: it is not the model-size result scaled up
	assert np.abs(batched_result[0::factor, 0::factor] - batched_result[1::factor, 1::factor]).mean() > 1


@pytest.mark.parametrize('model, pixel_boost, batch_sizes', [
	('hyperswap_1a_256', '1024x1024', [16]),
	('ghost_1_256', '512x512', [4]),
	('simswap_unofficial_512', '512x512', [1]),
	# inswapper's batch axis is fixed at 1 in the distributed file: the engine loads a verified dynamic-batch copy
	('inswapper_128', '512x512', [16]),
])
def test_one_model_call_per_face_when_the_model_takes_a_batch(standin_models_dir: Path, model: str, pixel_boost: str, batch_sizes: List[int]) -> None:
	swapper = make_swapper(standin_models_dir, model, pixel_boost)
	counter = count_model_calls(swapper)
	frame = cv2.imread(str(DATA / 'obama_and_biden.jpg'))
	output = swapper.process_frame(frame, [make_face(GROUP_OBAMA_LANDMARK_5)], frame.copy())
	assert counter.batch_sizes == batch_sizes
	assert np.any(output != frame)


def test_never_batching_calls_once_per_sub_image(standin_models_dir: Path) -> None:
	swapper = make_swapper(standin_models_dir, 'hyperswap_1a_256', '768x768', 'never')
	counter = count_model_calls(swapper)
	frame = cv2.imread(str(DATA / 'obama_and_biden.jpg'))
	swapper.process_frame(frame, [make_face(GROUP_OBAMA_LANDMARK_5)], frame.copy())
	assert counter.batch_sizes == [1] * 9


@pytest.mark.gpu
@pytest.mark.skipif(not __import__('facefusion.gpu.device', fromlist=['gpu_available']).gpu_available(), reason='needs CuPy and a working CUDA device')
@pytest.mark.parametrize('model, pixel_boost', [('inswapper_128', '512x512'), ('hyperswap_1a_256', '512x512')])
def test_device_resident_swap_equals_the_host_swap(standin_models_dir: Path, model: str, pixel_boost: str) -> None:
	"""Frames, crops, model inputs and outputs on the GPU (CuPy warp, preparation, normalisation and paste kernels)
	give the host result within one level per pixel."""
	frame = cv2.imread(str(DATA / 'obama_and_biden.jpg'))
	face = make_face(GROUP_OBAMA_LANDMARK_5)
	host = make_swapper(standin_models_dir, model, pixel_boost).process_frame(frame, [face], frame.copy())
	device_swapper = make_swapper(standin_models_dir, model, pixel_boost)
	device_swapper.prefer_device_arrays = True
	assert device_swapper.compositor().on_gpu
	device = device_swapper.process_frame(frame, [face], frame.copy())
	assert isinstance(device, np.ndarray)
	assert np.abs(device.astype(np.int16) - host.astype(np.int16)).max() <= 1
	assert np.any(device != frame)
