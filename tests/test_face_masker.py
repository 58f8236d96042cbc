"""Masks against FaceFusion 3.5.0's documented formulas, with tiny stand-in occluder and parser models."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facefusion import choices
from facefusion.config import RunConfig
from facefusion.face_masker import FaceMasker, create_area_mask, create_box_mask, expand_padding
from facefusion.gpu.array_ops import combine_masks
from facefusion.inference.manager import InferenceManager

# the occluder stand-ins: each output pixel is a fixed mix of the input's B, G, R values
OCCLUDER_WEIGHTS = {
	'xseg_1': [1 / 3, 1 / 3, 1 / 3],
	'xseg_2': [1.0, 0.0, 0.0],
	'xseg_3': [0.0, 0.0, 1.0],
}
SKIN_CLASS = choices.face_mask_region_set['skin']
LEFT_EYE_CLASS = choices.face_mask_region_set['left-eye']
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class NamedFileInference(InferenceManager):
	"""The real manager, with `<models_path>/<name>.onnx` as each model's file (so these tests need no registry)."""

	def model_file(self, model_name: str) -> Path:
		return Path(self.config.models_path) / (model_name + '.onnx')


def save_model(graph: onnx.GraphProto, path: Path) -> None:
	model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
	model.ir_version = 8
	onnx.checker.check_model(model)
	onnx.save(model, str(path))


def write_occluder(path: Path, weights: Sequence[float], batch: object = 1) -> None:
	"""input [B,256,256,3] NHWC -> out0 [B,256,256,1] = input @ weights."""
	weight = numpy_helper.from_array(np.array(weights, dtype=np.float32).reshape(3, 1), 'weight')
	graph = helper.make_graph(
		[helper.make_node('MatMul', ['input', 'weight'], ['output'])],
		'occluder',
		[helper.make_tensor_value_info('input', TensorProto.FLOAT, [batch, 256, 256, 3])],
		[helper.make_tensor_value_info('output', TensorProto.FLOAT, [batch, 256, 256, 1])],
		[weight]
	)
	save_model(graph, path)


def write_parser(path: Path) -> None:
	"""input [1,3,512,512] RGB normalised -> out0 [1,19,512,512]: class 0 scores 0, skin scores the red channel,
	left-eye the blue channel, every other class -100. A red pixel is skin, blue is left-eye, black is class 0."""
	weights = np.zeros((19, 3, 1, 1), dtype=np.float32)
	bias = np.full(19, -100.0, dtype=np.float32)
	bias[0] = 0
	weights[SKIN_CLASS, 0] = 1
	bias[SKIN_CLASS] = 0
	weights[LEFT_EYE_CLASS, 2] = 1
	bias[LEFT_EYE_CLASS] = 0
	graph = helper.make_graph(
		[helper.make_node('Conv', ['input', 'weight', 'bias'], ['output'])],
		'parser',
		[helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 512, 512])],
		[helper.make_tensor_value_info('output', TensorProto.FLOAT, [1, 19, 512, 512])],
		[numpy_helper.from_array(weights, 'weight'), numpy_helper.from_array(bias, 'bias')]
	)
	save_model(graph, path)


@pytest.fixture(scope='module')
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
	directory = tmp_path_factory.mktemp('models')
	for name, weights in OCCLUDER_WEIGHTS.items():
		write_occluder(directory / (name + '.onnx'), weights)
	write_parser(directory / 'bisenet_resnet_34.onnx')
	write_parser(directory / 'bisenet_resnet_18.onnx')
	return directory


def make_masker(models_dir: Path, **changes: object) -> FaceMasker:
	config = RunConfig(models_path=str(models_dir)).with_changes(**changes)
	return FaceMasker(config, NamedFileInference(config))


def refine(mask: np.ndarray) -> np.ndarray:
	"""post-processing written out: Gaussian sigma 5, clip to [0.5, 1], minus 0.5, times 2."""
	blurred = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 5)
	return (np.clip(blurred, 0.5, 1.0) - 0.5) * 2


def test_box_mask_without_blur_keeps_one_pixel_border() -> None:
	mask = create_box_mask((64, 48), 0.0, (0, 0, 0, 0))
	expected = np.zeros((48, 64), dtype=np.float32)
	expected[1:47, 1:63] = 1
	assert mask.shape == (48, 64)
	assert mask.dtype == np.float32
	np.testing.assert_array_equal(mask, expected)


def test_box_mask_blur_and_padding_follow_the_formula() -> None:
	# 256 wide, blur 0.3: blur_amount = int(256 * 0.5 * 0.3) = 38, blur_area = 19, sigma 9.5
	mask = create_box_mask((256, 256), 0.3, (10, 0, 0, 20))
	expected = np.ones((256, 256), dtype=np.float32)
	expected[:25, :] = 0  # top: max(19, int(256 * 10 / 100) = 25)
	expected[-19:, :] = 0  # bottom: blur area
	expected[:, :51] = 0  # left: max(19, int(256 * 20 / 100) = 51)
	expected[:, -19:] = 0  # right: blur area
	expected = cv2.GaussianBlur(expected, (0, 0), 9.5)
	np.testing.assert_allclose(mask, expected, atol=1e-6)


def test_box_mask_non_square_uses_height_for_top_bottom() -> None:
	# 200 x 100, blur 0.3: blur_amount 30, blur_area 15; top int(100*0.1)=10 -> 15, right int(200*0.2)=40,
	# bottom int(100*0.3)=30, left int(200*0.4)=80; blur width comes from the width
	mask = create_box_mask((200, 100), 0.3, (10, 20, 30, 40))
	expected = np.ones((100, 200), dtype=np.float32)
	expected[:15, :] = 0
	expected[-30:, :] = 0
	expected[:, :80] = 0
	expected[:, -40:] = 0
	expected = cv2.GaussianBlur(expected, (0, 0), 30 * 0.25)
	assert mask.shape == (100, 200)
	np.testing.assert_allclose(mask, expected, atol=1e-6)


def test_box_mask_full_padding_is_empty() -> None:
	assert float(create_box_mask((128, 128), 0.0, (100, 100, 100, 100)).max()) == 0.0


def test_expand_padding_is_css_style() -> None:
	assert expand_padding([5]) == (5, 5, 5, 5)
	assert expand_padding([5, 10]) == (5, 10, 5, 10)
	assert expand_padding([5, 10, 15]) == (5, 10, 15, 10)
	assert expand_padding([5, 10, 15, 20]) == (5, 10, 15, 20)
	with pytest.raises(ValueError):
		expand_padding([])


def occluder_expected(crop: np.ndarray, model_names: List[str]) -> np.ndarray:
	height, width = crop.shape[:2]
	raw_masks = []
	for name in model_names:
		prepared = cv2.resize(crop, (256, 256)).astype(np.float32) / 255
		output = np.clip(prepared @ np.array(OCCLUDER_WEIGHTS[name], dtype=np.float32), 0, 1)
		raw_masks.append(cv2.resize(output.astype(np.float32), (width, height)))
	return refine(np.min(raw_masks, axis=0))


def make_occlusion_crop() -> np.ndarray:
	crop = np.zeros((300, 300, 3), dtype=np.uint8)
	crop[:, :150] = 255  # white left half: every occluder says face
	crop[60:240, 170:280] = (255, 0, 0)  # a blue block: only the blue-reading occluder says face
	return crop


def test_occlusion_mask_matches_post_processing(models_dir: Path) -> None:
	crop = make_occlusion_crop()
	masker = make_masker(models_dir, face_occluder_model='xseg_2')
	mask = masker.occlusion_masks([crop])[0]
	assert mask.shape == (300, 300)
	assert mask.dtype == np.float32
	np.testing.assert_allclose(mask, occluder_expected(crop, ['xseg_2']), atol=1e-5)
	# NHWC BGR input: the blue block is read through channel 0
	assert mask[150, 225] == pytest.approx(1.0)
	assert mask[5, 295] == pytest.approx(0.0)


def test_occlusion_mask_many_is_minimum_of_three(models_dir: Path) -> None:
	crop = make_occlusion_crop()
	mask = make_masker(models_dir, face_occluder_model='many').occlusion_masks([crop])[0]
	np.testing.assert_allclose(mask, occluder_expected(crop, ['xseg_1', 'xseg_2', 'xseg_3']), atol=1e-5)
	# xseg_3 reads red only, so the blue block is not face for `many`
	assert mask[150, 225] == pytest.approx(0.0)
	assert mask[150, 60] == pytest.approx(1.0)


def test_occlusion_masks_batched_equal_single(models_dir: Path) -> None:
	masker = make_masker(models_dir, face_occluder_model='xseg_1')
	crops = [make_occlusion_crop(), np.full((128, 128, 3), 200, np.uint8), make_occlusion_crop()[::-1].copy()]
	batched = masker.occlusion_masks(crops)
	assert len(batched) == 3
	for crop, mask in zip(crops, batched):
		np.testing.assert_allclose(mask, masker.occlusion_masks([crop])[0], atol=1e-6)
		np.testing.assert_allclose(mask, occluder_expected(crop, ['xseg_1']), atol=1e-5)
	assert masker.occlusion_masks([]) == []


def make_region_crop(size: int) -> np.ndarray:
	crop = np.zeros((size, size, 3), dtype=np.uint8)
	crop[:, : size // 2] = (0, 0, 255)  # red (BGR) left half -> skin
	crop[size // 4: 3 * size // 4, size // 2 + size // 8:] = (255, 0, 0)  # blue block -> left-eye
	return crop


def region_expected(crop: np.ndarray, class_ids: List[int]) -> np.ndarray:
	height, width = crop.shape[:2]
	rgb = cv2.resize(crop, (512, 512))[:, :, ::-1].astype(np.float32) / 255
	normalised = (rgb - IMAGENET_MEAN) / IMAGENET_STD
	logits = np.full((512, 512, 19), -100.0, dtype=np.float32)
	logits[:, :, 0] = 0
	logits[:, :, SKIN_CLASS] = normalised[:, :, 0]
	logits[:, :, LEFT_EYE_CLASS] = normalised[:, :, 2]
	labels = np.argmax(logits, axis=2)
	binary = np.isin(labels, class_ids).astype(np.float32)
	return refine(cv2.resize(binary, (width, height)))


@pytest.mark.parametrize('parser_model', ['bisenet_resnet_34', 'bisenet_resnet_18'])
def test_region_mask_keeps_requested_classes(models_dir: Path, parser_model: str) -> None:
	crop = make_region_crop(256)
	masker = make_masker(models_dir, face_parser_model=parser_model)
	skin = masker.region_masks([crop], ['skin'])[0]
	np.testing.assert_allclose(skin, region_expected(crop, [SKIN_CLASS]), atol=1e-5)
	# RGB input: the red half is skin, the blue block is not
	assert skin[128, 30] == pytest.approx(1.0)
	assert skin[128, 220] == pytest.approx(0.0)
	eye = masker.region_masks([crop], ['left-eye'])[0]
	assert eye[128, 220] == pytest.approx(1.0)
	assert eye[128, 30] == pytest.approx(0.0)
	both = masker.region_masks([crop], ['skin', 'left-eye', 'nose'])[0]
	np.testing.assert_allclose(both, region_expected(crop, [SKIN_CLASS, LEFT_EYE_CLASS, 10]), atol=1e-5)


def test_region_masks_batched_and_default_regions(models_dir: Path) -> None:
	masker = make_masker(models_dir)
	crops = [make_region_crop(256), make_region_crop(512)]
	masks = masker.region_masks(crops)
	all_ids = [choices.face_mask_region_set[region] for region in choices.face_mask_regions]
	for crop, mask in zip(crops, masks):
		assert mask.shape == crop.shape[:2]
		np.testing.assert_allclose(mask, region_expected(crop, all_ids), atol=1e-5)


def synthetic_landmark_68(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
	"""A plausible 68-point layout in a box: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67."""
	points: List[List[float]] = []
	for index in range(17):
		theta = np.pi - index * np.pi / 16
		points.append([0.5 + 0.45 * np.cos(theta), 0.4 + 0.55 * np.sin(theta)])
	points += [[0.15 + index * 0.0675, 0.28] for index in range(5)]
	points += [[0.58 + index * 0.0675, 0.28] for index in range(5)]
	points += [[0.5, 0.35 + index * 0.075] for index in range(4)]
	points += [[0.4 + index * 0.05, 0.62] for index in range(5)]
	for centre_x in (0.3, 0.7):
		for index in range(6):
			theta = index * np.pi / 3
			points.append([centre_x + 0.08 * np.cos(theta), 0.4 + 0.03 * np.sin(theta)])
	for index in range(12):
		theta = np.pi - index * np.pi / 6
		points.append([0.5 + 0.16 * np.cos(theta), 0.78 + 0.06 * np.sin(theta)])
	for index in range(8):
		theta = np.pi - index * np.pi / 4
		points.append([0.5 + 0.1 * np.cos(theta), 0.78 + 0.03 * np.sin(theta)])
	unit = np.array(points, dtype=np.float32)
	assert unit.shape == (68, 2)
	return unit * np.array([x2 - x1, y2 - y1], dtype=np.float32) + np.array([x1, y1], dtype=np.float32)


def area_expected(size: int, landmark_68: np.ndarray, areas: List[str]) -> np.ndarray:
	indices = sorted({index for area in areas for index in choices.face_mask_area_set[area]})
	canvas = np.zeros((size, size), dtype=np.float32)
	cv2.fillConvexPoly(canvas, cv2.convexHull(landmark_68[indices].astype(np.int32)), 1.0)
	return refine(canvas)


def test_area_mask_covers_the_hull(models_dir: Path) -> None:
	landmark_68 = synthetic_landmark_68(40, 30, 216, 240)
	masker = make_masker(models_dir)
	mask = masker.area_mask((256, 256), landmark_68)
	np.testing.assert_allclose(mask, area_expected(256, landmark_68, ['upper-face', 'lower-face', 'mouth']), atol=1e-6)
	assert mask[150, 128] == pytest.approx(1.0)
	assert mask[5, 5] == pytest.approx(0.0)
	mouth = create_area_mask((256, 256), landmark_68, ['mouth'])
	np.testing.assert_allclose(mouth, area_expected(256, landmark_68, ['mouth']), atol=1e-6)
	mouth_centre = landmark_68[48:68].mean(axis=0).astype(int)
	assert mouth[mouth_centre[1], mouth_centre[0]] > 0.9
	eye_centre = landmark_68[36:42].mean(axis=0).astype(int)
	assert mouth[eye_centre[1], eye_centre[0]] == pytest.approx(0.0)
	assert float(create_area_mask((64, 64), landmark_68 / 4, []).max()) == 0.0


def test_combine_masks_is_clipped_minimum() -> None:
	generator = np.random.default_rng(7)
	masks = [generator.uniform(-0.2, 1.2, (32, 48)).astype(np.float32) for _ in range(3)]
	combined = combine_masks(masks)
	expected = np.clip(np.minimum(np.minimum(masks[0], masks[1]), masks[2]), 0, 1)
	np.testing.assert_array_equal(combined, expected)
	assert combined.dtype == np.float32
	single = combine_masks([masks[0]])
	np.testing.assert_array_equal(single, np.clip(masks[0], 0, 1))
	assert single is not masks[0]
	with pytest.raises(ValueError):
		combine_masks([])


def test_required_models_follow_mask_types() -> None:
	config = RunConfig()
	assert FaceMasker.required_models(config) == []
	assert FaceMasker.required_models(config.with_changes(face_mask_types=['box', 'area'])) == []
	assert FaceMasker.required_models(config.with_changes(face_mask_types=['occlusion'])) == ['xseg_1']
	assert FaceMasker.required_models(config.with_changes(face_mask_types=['occlusion'], face_occluder_model='many')) == [
		'xseg_1', 'xseg_2', 'xseg_3'
	]
	assert FaceMasker.required_models(config.with_changes(
		face_mask_types=['box', 'occlusion', 'region'], face_occluder_model='xseg_3', face_parser_model='bisenet_resnet_18'
	)) == ['xseg_3', 'bisenet_resnet_18']


def test_masks_use_target_before_and_swapped_after(models_dir: Path) -> None:
	masker = make_masker(
		models_dir,
		face_mask_types=['box', 'occlusion', 'area', 'region'],
		face_occluder_model='xseg_2',
		face_mask_regions=['skin'],
		face_mask_areas=['lower-face', 'mouth'],
		face_mask_blur=0.2,
		face_mask_padding=(5, 5, 5, 5)
	)
	target_crop = make_occlusion_crop()
	swapped_crop = make_region_crop(300)
	landmark_68: Optional[np.ndarray] = synthetic_landmark_68(30, 20, 270, 290)
	pre = masker.pre_swap_masks_batch([target_crop])[0]
	post = masker.post_swap_masks_batch([swapped_crop], [landmark_68])[0]
	assert len(pre) == 2 and len(post) == 2
	np.testing.assert_allclose(pre[0], create_box_mask((300, 300), 0.2, (5, 5, 5, 5)), atol=1e-6)
	np.testing.assert_allclose(pre[1], occluder_expected(target_crop, ['xseg_2']), atol=1e-5)
	np.testing.assert_allclose(post[0], area_expected(300, landmark_68, ['lower-face', 'mouth']), atol=1e-6)
	np.testing.assert_allclose(post[1], region_expected(swapped_crop, [SKIN_CLASS]), atol=1e-5)
	# a batch of two gives what a batch of one gives
	pre_batch = masker.pre_swap_masks_batch([target_crop, target_crop])
	post_batch = masker.post_swap_masks_batch([swapped_crop, swapped_crop], [landmark_68, landmark_68])
	for masks in pre_batch:
		for mask, single in zip(masks, pre):
			np.testing.assert_allclose(mask, single, atol=1e-6)
	for masks in post_batch:
		for mask, single in zip(masks, post):
			np.testing.assert_allclose(mask, single, atol=1e-6)


def test_box_only_needs_no_model_and_is_cached(tmp_path: Path) -> None:
	masker = make_masker(tmp_path, face_mask_types=['box'])
	crop = np.zeros((256, 256, 3), dtype=np.uint8)
	pre = masker.pre_swap_masks_batch([crop])[0]
	assert len(pre) == 1 and masker.post_swap_masks_batch([crop], [None]) == [[]]
	np.testing.assert_allclose(pre[0], create_box_mask((256, 256), 0.3, (0, 0, 0, 0)), atol=1e-6)
	assert masker.box_mask((256, 256)) is masker.box_mask((256, 256))
	assert not masker.box_mask((256, 256)).flags.writeable
	assert masker.pre_swap_masks_batch([crop], []) == [[]]


def test_project_stand_ins_through_the_registry(tmp_path: Path) -> None:
	"""The project's xseg / bisenet stand-ins under their registry names, loaded by the unmodified manager: a black
	patch is an occluder, the parser finds skin in the middle of the crop and nothing in the corners."""
	from facefusion.testing.standin_models import write_standin_models
	write_standin_models(tmp_path, ['xseg_1', 'bisenet_resnet_34'])
	config = RunConfig(models_path=str(tmp_path))
	masker = FaceMasker(config, InferenceManager(config))
	crop = np.full((512, 512, 3), 150, dtype=np.uint8)
	crop[230:330, 200:310] = 0
	occlusion = masker.occlusion_masks([crop])[0]
	assert occlusion.shape == (512, 512)
	assert occlusion[280, 255] == pytest.approx(0.0)
	assert occlusion[400, 255] > 0.9
	assert occlusion[5, 5] == pytest.approx(0.0)
	skin = masker.region_masks([crop], ['skin'])[0]
	assert skin[5, 5] == pytest.approx(0.0)
	assert skin[300, 150] > 0.9
