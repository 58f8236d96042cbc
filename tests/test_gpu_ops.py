"""Array-module pre/postprocessing against 3.5.0's formulas written out with NumPy, the kernels' NumPy references
against OpenCV, and the compositor against face_helper.paste_back. CPU parts run everywhere; the parts marked `gpu`
compare CuPy against NumPy and skip cleanly without a working CUDA device."""
from __future__ import annotations

import importlib.util
from typing import List

import cv2
import numpy as np
import pytest

from facefusion import face_helper
from facefusion.gpu import array_ops, device, kernels
from facefusion.gpu.compositor import Compositor, PasteJob
from facefusion.processors.modules.face_swapper import pixel_boost

requires_gpu = pytest.mark.skipif(not device.gpu_available(), reason='needs CuPy and a working CUDA device')
# the mean / std pairs of inswapper, hyperswap, simswap_256 and ghost
SWAPPER_NORMS = [
	((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
	((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
	((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
]
FACE_LANDMARKS = np.array([[200, 150], [262, 148], [232, 188], [208, 224], [257, 221]], dtype=np.float32)


def random_frame(height: int = 360, width: int = 480, seed: int = 0) -> np.ndarray:
	"""Smooth content with sharp edges: both matter for bilinear rounding."""
	generator = np.random.default_rng(seed)
	frame = cv2.GaussianBlur(generator.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 3)
	frame[height // 3:height // 2, :, 1] = 255
	frame[:, width // 4:width // 4 + 7, 2] = 0
	return frame


def face_affines(count: int, crop_size: int, seed: int = 1) -> List[np.ndarray]:
	"""Similarity affines of faces spread over a 480×360 frame, one leaning out of the frame (clipped paste box)."""
	generator = np.random.default_rng(seed)
	offsets = [(0, 0), (-170, 60), (180, -120), (230, 140), (-190, -140)]
	affines = []
	for index in range(count):
		landmarks = FACE_LANDMARKS + np.asarray(offsets[index % len(offsets)], np.float32) + generator.normal(0, 3, (5, 2)).astype(np.float32)
		affines.append(face_helper.estimate_matrix_by_face_landmark_5(landmarks, 'arcface_128', (crop_size, crop_size)))
	return affines


def swapped_crop(size: int, seed: int) -> np.ndarray:
	generator = np.random.default_rng(seed)
	return np.clip(cv2.GaussianBlur(generator.random((size, size, 3), dtype=np.float32) * 255, (0, 0), 2), 0, 255)


def feather_mask(size: int) -> np.ndarray:
	mask = np.zeros((size, size), np.float32)
	mask[size // 10:-size // 10, size // 10:-size // 10] = 1
	return cv2.GaussianBlur(mask, (0, 0), size / 25)


# --- array_ops = 3.5.0's formulas ----------------------------------------------------------------------------------


@pytest.mark.parametrize('mean, std', SWAPPER_NORMS)
@pytest.mark.parametrize('dtype', [np.uint8, np.float32])
def test_prepare_crops_is_the_formula_bit_for_bit(mean: tuple, std: tuple, dtype: type) -> None:
	crops = (np.random.default_rng(3).random((5, 64, 64, 3)) * 255).astype(dtype)
	# RGB, / 255 (in float64 for uint8 crops, in the crop's own type for float crops), (x - mean) / std in float64
	expected = ((crops[..., ::-1] / 255.0 - np.array(mean)) / np.array(std)).transpose(0, 3, 1, 2).astype(np.float32)
	prepared = array_ops.prepare_crops(crops, mean, std)
	assert prepared.dtype == np.float32 and prepared.flags.c_contiguous
	np.testing.assert_array_equal(prepared, expected)
	np.testing.assert_allclose(array_ops.prepare_crops(crops, mean, std, exact=False), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('denormalise', [False, True])
def test_normalize_outputs_is_the_formula_bit_for_bit(denormalise: bool) -> None:
	outputs = np.random.default_rng(4).normal(0.3, 0.6, (6, 3, 32, 32)).astype(np.float32)
	mean, std = (0.5, 0.4, 0.3), (0.2, 0.3, 0.4)
	values = outputs.transpose(0, 2, 3, 1)
	if denormalise:
		values = values * np.array(std, np.float32) + np.array(mean, np.float32)
	expected = np.clip(values, 0, 1)[..., ::-1] * np.float32(255)
	result = array_ops.normalize_outputs(outputs, denormalise, mean, std)
	assert result.dtype == np.float32 and result.shape == (6, 32, 32, 3)
	np.testing.assert_array_equal(result, expected)


def test_prepare_source_image_is_rgb_over_255() -> None:
	crop = np.random.default_rng(5).integers(0, 256, (112, 112, 3), dtype=np.uint8)
	expected = (crop[:, :, ::-1] / 255.0).transpose(2, 0, 1)[np.newaxis].astype(np.float32)
	np.testing.assert_array_equal(array_ops.prepare_source_image(crop), expected)


# --- kernels' references = OpenCV -----------------------------------------------------------------------------------


def test_invert_affine_equals_opencv() -> None:
	for affine in face_affines(5, 256):
		np.testing.assert_array_equal(kernels.invert_affine(affine), cv2.invertAffineTransform(affine))


@pytest.mark.parametrize('border', ['constant', 'replicate'])
@pytest.mark.parametrize('channels', [1, 3])
def test_uint8_warp_reference_equals_opencv_exactly(border: str, channels: int) -> None:
	frame = random_frame()
	source = frame if channels == 3 else frame[:, :, 1].copy()
	for affine in face_affines(3, 192):
		border_mode = cv2.BORDER_REPLICATE if border == 'replicate' else cv2.BORDER_CONSTANT
		expected = cv2.warpAffine(source, affine, (192, 192), borderMode=border_mode)
		np.testing.assert_array_equal(kernels.warp_affine_reference(source, affine, (192, 192), border), expected)


def test_float_warp_reference_equals_opencv() -> None:
	crop = swapped_crop(256, seed=8)
	mask = feather_mask(256)
	for affine in face_affines(3, 256):
		paste_matrix = cv2.invertAffineTransform(affine)
		# the crop's way back (3 channels, replicate): bit for bit
		np.testing.assert_array_equal(
			kernels.warp_affine_reference(crop, paste_matrix, (480, 360), 'replicate'),
			cv2.warpAffine(crop, paste_matrix, (480, 360), borderMode=cv2.BORDER_REPLICATE)
		)
		# the mask's (1 channel): OpenCV vectorises it with another summation order, one float32 ulp at most
		np.testing.assert_allclose(kernels.warp_affine_reference(mask, paste_matrix, (480, 360)), cv2.warpAffine(mask, paste_matrix, (480, 360)), rtol=0, atol=2.5e-7)


def test_blend_reference_is_paste_backs_formula() -> None:
	generator = np.random.default_rng(9)
	region = generator.integers(0, 256, (20, 30, 3), dtype=np.uint8)
	crop = generator.random((20, 30, 3), dtype=np.float32) * 255
	mask = generator.random((20, 30), dtype=np.float32)
	expected = (region * (1 - mask[:, :, None]) + crop * mask[:, :, None]).astype(np.uint8)
	np.testing.assert_array_equal(kernels.blend_reference(region, crop, mask), expected)


@pytest.mark.parametrize('channels, crop_kind', [(3, 'in-range'), (3, 'out-of-range'), (3, 'uint8'), (1, 'out-of-range')])
def test_opencv_blend_equals_the_reference(channels: int, crop_kind: str) -> None:
	"""The CPU paste's OpenCV blend gives the reference's numbers bit for bit: a strided region of a frame, masks at
	0, 1 and in between, crops in and out of 0..255 (the clip comes before the cast) and uint8 crops."""
	generator = np.random.default_rng(channels)
	frame = generator.integers(0, 256, (120, 160, channels), dtype=np.uint8)
	region = frame[7:97, 11:131]
	shape = region.shape
	if crop_kind == 'uint8':
		crop = generator.integers(0, 256, shape, dtype=np.uint8)
	else:
		low, high = (0, 255) if crop_kind == 'in-range' else (-40, 300)
		crop = (generator.random(shape, dtype=np.float32) * (high - low) + low).astype(np.float32)
	mask = generator.random(shape[:2], dtype=np.float32)
	mask[::7] = 0
	mask[::5] = 1
	blended = kernels.blend_host(region, crop, mask)
	assert blended.shape == region.shape and blended.dtype == np.uint8
	np.testing.assert_array_equal(blended, kernels.blend_reference(region, crop, mask))
	# straight into the frame's own box (the paste's way): the same pixels there, nothing changed around it
	target = frame.copy()
	kernels.blend_host(target[7:97, 11:131], crop, mask, out=target[7:97, 11:131])
	np.testing.assert_array_equal(target[7:97, 11:131], blended)
	outside = np.ones(frame.shape[:2], bool)
	outside[7:97, 11:131] = False
	np.testing.assert_array_equal(target[outside], frame[outside])


def test_warp_dispatch_on_host_uses_opencv_numbers() -> None:
	frame = random_frame()
	affines = face_affines(3, 128)
	crops = kernels.warp_affine_batch(frame, affines, (128, 128), 'replicate')
	references = kernels.warp_affine_batch(frame, affines, (128, 128), 'replicate', reference=True)
	assert crops.shape == (3, 128, 128, 3)
	np.testing.assert_array_equal(crops, references)
	assert kernels.warp_affine_batch(frame, [], (128, 128)).shape == (0, 128, 128, 3)


# --- compositor = face_helper ---------------------------------------------------------------------------------------


def paste_sequentially(frame: np.ndarray, crops: List[np.ndarray], masks: List[np.ndarray], affines: List[np.ndarray]) -> np.ndarray:
	for crop, mask, affine in zip(crops, masks, affines):
		frame = face_helper.paste_back(frame, crop, mask, affine)
	return frame


@pytest.mark.parametrize('reference', [False, True])
def test_compositor_equals_face_helper_paste_back(reference: bool) -> None:
	frame = random_frame(seed=10)
	size = 256
	affines = face_affines(5, size, seed=11)
	crops = [swapped_crop(size, seed=20 + index) for index in range(5)]
	masks = [feather_mask(size) for _ in range(5)]
	expected = paste_sequentially(frame, crops, masks, affines)
	compositor = Compositor(reference=reference)
	result = compositor.paste_all(frame, [PasteJob(crop, [mask], affine) for crop, mask, affine in zip(crops, masks, affines)])
	assert result is not frame
	difference = np.abs(result.astype(np.int16) - expected.astype(np.int16))
	assert difference.max() <= 1
	if not reference:
		np.testing.assert_array_equal(result, expected)
	else:
		assert (difference > 0).mean() < 1e-3
	# the input frame is untouched unless asked
	np.testing.assert_array_equal(frame, random_frame(seed=10))


def test_compositor_combines_several_masks_by_their_minimum() -> None:
	frame = random_frame(seed=12)
	affine = face_affines(1, 128)[0]
	crop = swapped_crop(128, seed=13)
	box_mask = feather_mask(128)
	occlusion = np.random.default_rng(14).random((128, 128), dtype=np.float32)
	expected = face_helper.paste_back(frame, crop, np.minimum(box_mask, occlusion), affine)
	result = Compositor().paste_all(frame, [PasteJob(crop, [box_mask, occlusion], affine)])
	np.testing.assert_array_equal(result, expected)


def test_uint8_crops_and_in_place_paste() -> None:
	frame = random_frame(seed=15)
	affines = face_affines(2, 128, seed=16)
	crops = [swapped_crop(128, seed=17 + index).astype(np.uint8) for index in range(2)]
	masks = [feather_mask(128), np.ones((128, 128, 1), np.float32)]
	expected = paste_sequentially(frame, crops, masks, affines)
	working = frame.copy()
	result = Compositor().paste_all(working, [PasteJob(crop, [mask], affine) for crop, mask, affine in zip(crops, masks, affines)], in_place=True)
	assert result is working
	np.testing.assert_array_equal(result, expected)


def test_warp_faces_equals_warp_face_by_face_landmark_5() -> None:
	frame = random_frame(seed=18)
	landmarks = [FACE_LANDMARKS + np.float32(offset) for offset in (0, 40, -35)]
	expected = [face_helper.warp_face_by_face_landmark_5(frame, points, 'arcface_128', (256, 256)) for points in landmarks]
	crops = Compositor().warp_crops(frame, [affine for _, affine in expected], (256, 256))
	for crop, (expected_crop, _) in zip(crops, expected):
		np.testing.assert_array_equal(crop, expected_crop)


# --- device selection -----------------------------------------------------------------------------------------------


def test_array_module_switch_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
	assert device.get_array_module(False) is np
	assert device.array_module_of(np.zeros(3)) is np
	assert device.to_host([1, 2]).tolist() == [1, 2]
	monkeypatch.setenv(device.DISABLE_ENVIRONMENT_VARIABLE, '1')
	# a fresh probe cache for this test alone (monkeypatch puts the module's own back afterwards)
	monkeypatch.setattr(device, '_detected', {})
	warnings: List[str] = []
	monkeypatch.setattr(device, 'warn_once', lambda key, message: warnings.append(message))
	info = device.detect_device()
	assert not info.available and device.DISABLE_ENVIRONMENT_VARIABLE in info.reason
	assert device.get_array_module(True) is np
	assert len(warnings) == 1 and warnings[0].startswith('GPU processing asked for but unavailable')
	assert device.free_device_memory() is None
	assert not Compositor(prefer_gpu=True).on_gpu


def test_cuda_source_compiles_with_nvrtc() -> None:
	"""Needs only CuPy's NVRTC (no device): catches a kernel that would not compile before a GPU machine sees it."""
	if importlib.util.find_spec('cupy') is None:
		pytest.skip('CuPy (with NVRTC) is not installed')
	problem = kernels.compile_check()
	if problem is not None and ('nvrtc' in problem.lower() and ('load' in problem.lower() or 'not found' in problem.lower())):
		pytest.skip('NVRTC library unavailable: ' + problem)
	assert problem is None, problem


# --- CuPy = NumPy ---------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@requires_gpu
def test_gpu_array_ops_equal_numpy_bit_for_bit() -> None:
	import cupy
	crops = np.random.default_rng(30).integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
	for mean, std in SWAPPER_NORMS:
		expected = array_ops.prepare_crops(pixel_boost.implode_batch(crops, (128, 128)), mean, std)
		result = array_ops.prepare_crops(pixel_boost.implode_batch(cupy.asarray(crops), (128, 128)), mean, std)
		assert isinstance(result, cupy.ndarray)
		np.testing.assert_array_equal(cupy.asnumpy(result), expected)
		np.testing.assert_allclose(cupy.asnumpy(array_ops.prepare_crops(cupy.asarray(crops), mean, std, exact=False)), array_ops.prepare_crops(crops, mean, std), rtol=1e-6, atol=1e-6)
	outputs = np.random.default_rng(31).normal(0.3, 0.6, (16, 3, 128, 128)).astype(np.float32)
	for denormalise in (False, True):
		expected = pixel_boost.explode_batch(array_ops.normalize_outputs(outputs, denormalise, (0.5, 0.4, 0.3), (0.2, 0.3, 0.4)), (512, 512))
		result = pixel_boost.explode_batch(array_ops.normalize_outputs(cupy.asarray(outputs), denormalise, (0.5, 0.4, 0.3), (0.2, 0.3, 0.4)), (512, 512))
		np.testing.assert_array_equal(cupy.asnumpy(result), expected)
	masks = [np.random.default_rng(32 + index).normal(0.5, 0.5, (64, 64)).astype(np.float32) for index in range(3)]
	np.testing.assert_array_equal(cupy.asnumpy(array_ops.combine_masks([cupy.asarray(mask) for mask in masks])), array_ops.combine_masks(masks))


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize('border', ['constant', 'replicate'])
def test_gpu_warp_kernel_equals_reference(border: str) -> None:
	import cupy
	frame = random_frame(seed=33)
	affines = face_affines(5, 256, seed=34)
	expected = np.stack([kernels.warp_affine_reference(frame, affine, (256, 256), border) for affine in affines])
	result = kernels.warp_affine_batch(cupy.asarray(frame), affines, (256, 256), border)
	np.testing.assert_array_equal(cupy.asnumpy(result), expected)
	gray = np.ascontiguousarray(frame[:, :, 0])
	np.testing.assert_array_equal(cupy.asnumpy(kernels.warp_affine_batch(cupy.asarray(gray), affines[:1], (200, 150), border)[0]), kernels.warp_affine_reference(gray, affines[0], (200, 150), border))
	crop = swapped_crop(256, seed=35)
	paste_matrix = cv2.invertAffineTransform(affines[1])
	np.testing.assert_array_equal(
		cupy.asnumpy(kernels.warp_affine_batch(cupy.asarray(crop), [paste_matrix], (480, 360), border)[0]),
		kernels.warp_affine_reference(crop, paste_matrix, (480, 360), border)
	)
	mask = feather_mask(256)
	np.testing.assert_array_equal(
		cupy.asnumpy(kernels.warp_affine_batch(cupy.asarray(mask), [paste_matrix], (480, 360), border)[0]),
		kernels.warp_affine_reference(mask, paste_matrix, (480, 360), border)
	)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize('crop_dtype', [np.float32, np.uint8])
def test_gpu_compositor_equals_reference_and_face_helper(crop_dtype: type) -> None:
	import cupy
	frame = random_frame(seed=38)
	size = 256
	affines = face_affines(5, size, seed=39)
	crops = [swapped_crop(size, seed=40 + index).astype(crop_dtype) for index in range(5)]
	masks = [feather_mask(size) for _ in range(5)]
	jobs = [PasteJob(crop, [mask], affine) for crop, mask, affine in zip(crops, masks, affines)]
	reference = Compositor(reference=True).paste_all(frame, jobs)
	compositor = Compositor(prefer_gpu=True)
	assert compositor.on_gpu
	device_jobs = [PasteJob(cupy.asarray(crop), [cupy.asarray(mask)], affine) for crop, mask, affine in zip(crops, masks, affines)]
	result = cupy.asnumpy(compositor.paste_all(compositor.upload(frame), device_jobs))
	# the fused kernel is the reference's arithmetic: bit for bit
	np.testing.assert_array_equal(result, reference)
	expected = paste_sequentially(frame, crops, masks, affines)
	assert np.abs(result.astype(np.int16) - expected.astype(np.int16)).max() <= 1
	crops_on_device = compositor.warp_crops(compositor.upload(frame), affines, (size, size))
	np.testing.assert_array_equal(cupy.asnumpy(crops_on_device), Compositor().warp_crops(frame, affines, (size, size)))


@pytest.mark.gpu
@requires_gpu
def test_gpu_device_probe_reports_the_device() -> None:
	info = device.detect_device()
	assert info.available and info.total_memory > 0 and info.compute_capability
	assert device.free_device_memory() > 0
	import cupy
	assert device.get_array_module(True) is cupy
	assert device.array_module_of(cupy.zeros(2)) is cupy
