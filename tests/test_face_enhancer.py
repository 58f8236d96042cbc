"""The face enhancer against FaceFusion 3.5.0's formulas, on stand-in models with the real signatures.

Expected tensors and frames are computed from the written-out formulas with plain numpy / OpenCV / onnxruntime
(fresh sessions on the original model files), not with the engine's helpers: the model facts are written out below.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import onnxruntime
import pytest

from facefusion import choices
from facefusion.cli.program import build_config
from facefusion.config import RunConfig
from facefusion.face_analyser import FaceAnalyser
from facefusion.face_helper import estimate_matrix_by_face_landmark_5, paste_back, paste_box
from facefusion.face_masker import FaceMasker
from facefusion.face_selector import select_faces
from facefusion.gpu import device
from facefusion.inference.manager import InferenceManager
from facefusion.inference.session import ModelSession
from facefusion.models.registry import download_urls, get_model
from facefusion.processors.base import ProcessingContext
from facefusion.processors.modules.face_enhancer import FaceEnhancer
from facefusion.processors.modules.face_enhancer.tensors import normalize_enhancer_output, prepare_enhancer_input
from facefusion.processors.modules.face_swapper import FaceSwapper
from facefusion.types import Face, FaceLandmarkSet, FaceScoreSet

DATA = Path(__file__).parent / 'data'
# 3.5.0's facts per enhancer: template, size, vendor, licence
MODEL_FACTS: Dict[str, Tuple[str, int, str, str]] = {
	'codeformer': ('ffhq_512', 512, 'sczhou', 'S-Lab-1.0'),
	'gfpgan_1.2': ('ffhq_512', 512, 'TencentARC', 'Apache-2.0'),
	'gfpgan_1.3': ('ffhq_512', 512, 'TencentARC', 'Apache-2.0'),
	'gfpgan_1.4': ('ffhq_512', 512, 'TencentARC', 'Apache-2.0'),
	'gpen_bfr_256': ('arcface_128', 256, 'yangxy', 'Non-Commercial'),
	'gpen_bfr_512': ('ffhq_512', 512, 'yangxy', 'Non-Commercial'),
	'gpen_bfr_1024': ('ffhq_512', 1024, 'yangxy', 'Non-Commercial'),
	'gpen_bfr_2048': ('ffhq_512', 2048, 'yangxy', 'Non-Commercial'),
	'restoreformer_plus_plus': ('ffhq_512', 512, 'wzhouxiff', 'Apache-2.0'),
}
TEMPLATES = {
	'arcface_128': [[0.36167656, 0.40387734], [0.63696719, 0.40235469], [0.50019687, 0.56044219], [0.38710391, 0.72160547], [0.61507734, 0.72034453]],
	'ffhq_512': [[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904], [0.39308822, 0.72541100], [0.61150205, 0.72490465]],
}
# YuNet's five points on the test photos (obama.jpg; Obama in obama_and_biden.jpg)
OBAMA_LANDMARK_5 = [[439.8, 212.9], [555.5, 213.4], [496.2, 266.5], [440.2, 317.5], [547.6, 319.6]]
GROUP_OBAMA_LANDMARK_5 = [[1190.7, 446.9], [1271.5, 440.7], [1238.1, 492.6], [1208.2, 533.7], [1282.1, 529.8]]
ENHANCER_MODELS = list(choices.face_enhancer_models)
requires_gpu = pytest.mark.skipif(not device.gpu_available() or 'CUDAExecutionProvider' not in onnxruntime.get_available_providers(), reason='needs CuPy, onnxruntime-gpu and a working CUDA device')


# ---------------------------------------------------------------- helpers


def read(name: str) -> np.ndarray:
	return cv2.imread(str(DATA / name))


def make_face(landmark_5: Sequence[Sequence[float]]) -> Face:
	points = np.array(landmark_5, dtype=np.float32)
	return Face(
		bounding_box=np.array([*points.min(axis=0) - 40, *points.max(axis=0) + 40], dtype=np.float32),
		score_set=FaceScoreSet(detector=0.9),
		landmark_set=FaceLandmarkSet(five=points, five_68=points, sixty_eight=np.zeros((68, 2), np.float32), sixty_eight_5=np.zeros((68, 2), np.float32))
	)


def make_context(models_dir: Path, analyser: Any = None, **changes: Any) -> ProcessingContext:
	options: Dict[str, Any] = {'models_path': str(models_dir), 'face_mask_types': ['box'], 'execution_providers': ['cpu'], 'face_detector_model': 'yunet'}
	options.update(changes)
	config = RunConfig(**options)
	inference = InferenceManager(config)
	return ProcessingContext(
		config=config, inference=inference, analyser=analyser or FaceAnalyser(config, inference), masker=FaceMasker(config, inference),
		source_frames=[read('obama.jpg')]
	)


def make_enhancer(models_dir: Path, model: str = 'gfpgan_1.4', **changes: Any) -> FaceEnhancer:
	enhancer = FaceEnhancer(make_context(models_dir, face_enhancer_model=model, **changes))
	enhancer.prepare()
	return enhancer


class CountingSession(ModelSession):
	"""The enhancer's real session, counting the faces of each ONNX Runtime call (no mock: the calls run)."""
	batch_sizes: List[int]

	def run(self, feed: Dict[str, Any]) -> List[Any]:
		self.batch_sizes.append(len(feed['input']))
		return super().run(feed)


def count_calls(enhancer: FaceEnhancer) -> CountingSession:
	inference = enhancer.context.inference
	original = inference.get(enhancer.spec.name)
	counting = CountingSession(original.name, original.path, original.session, original.requested_providers, original.stage)
	counting.batch_sizes = []
	inference.sessions[enhancer.spec.name] = counting
	return counting


def warp(frame: np.ndarray, landmark_5: np.ndarray, template: str, size: int) -> Tuple[np.ndarray, np.ndarray]:
	"""RANSAC similarity onto the template × size, bilinear warp with replicated border."""
	target = np.array(TEMPLATES[template], dtype=np.float64) * size
	matrix, _ = cv2.estimateAffinePartial2D(np.asarray(landmark_5, dtype=np.float64), target, method=cv2.RANSAC, ransacReprojThreshold=100)
	crop = cv2.warpAffine(frame, matrix, (size, size), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_AREA)
	return crop, matrix


def expected_input(crop: np.ndarray) -> np.ndarray:
	values = crop[:, :, ::-1] / 255.0
	values = (values - 0.5) / 0.5
	return np.expand_dims(values.transpose(2, 0, 1), axis=0).astype(np.float32)


def expected_output(output: np.ndarray) -> np.ndarray:
	values = np.clip(output, -1, 1)
	values = (values + 1) / 2
	values = values.transpose(1, 2, 0)
	values = (values * 255.0).round()
	return values.astype(np.uint8)[:, :, ::-1]


def expected_box_mask(size: int, blur: float) -> np.ndarray:
	"""3.5.0's box mask with zero padding: blur_area rows / columns cleared on each side, then a Gaussian blur."""
	blur_amount = int(size * 0.5 * blur)
	blur_area = max(blur_amount // 2, 1)
	mask = np.ones((size, size), np.float32)
	mask[:blur_area, :] = 0
	mask[-blur_area:, :] = 0
	mask[:, :blur_area] = 0
	mask[:, -blur_area:] = 0
	if blur_amount > 0:
		mask = cv2.GaussianBlur(mask, (0, 0), blur_amount * 0.25)
	return mask


def expected_enhanced_crop(models_dir: Path, model: str, crop: np.ndarray, weight: float) -> np.ndarray:
	session = onnxruntime.InferenceSession(str(models_dir / (model + '.onnx')), providers=['CPUExecutionProvider'])
	feed: Dict[str, np.ndarray] = {'input': expected_input(crop)}
	if any(model_input.name == 'weight' for model_input in session.get_inputs()):
		feed['weight'] = np.array([weight]).astype(np.double)
	return expected_output(session.run(None, feed)[0][0])


def expected_frame(models_dir: Path, model: str, frame: np.ndarray, landmark_5: Sequence[Sequence[float]], blend: int = 80, weight: float = 0.5, blur: float = 0.3, extra_mask: Optional[np.ndarray] = None) -> np.ndarray:
	"""3.5.0's enhance_face on one face, step by step."""
	template, size, _, _ = MODEL_FACTS[model]
	crop, affine = warp(frame, np.array(landmark_5), template, size)
	masks = [expected_box_mask(size, blur)] + ([] if extra_mask is None else [extra_mask])
	mask = np.minimum.reduce(masks).clip(0, 1)
	paste = paste_back(frame, expected_enhanced_crop(models_dir, model, crop, weight), mask, affine)
	factor = 1 - (1 - blend / 100)
	return cv2.addWeighted(frame, 1 - factor, paste, factor, 0)


def enhancer_box(frame: np.ndarray, face: Face, model: str) -> Tuple[int, int, int, int]:
	template, size, _, _ = MODEL_FACTS[model]
	return paste_box(frame.shape, (size, size), estimate_matrix_by_face_landmark_5(face.landmark_set.five_68, template, (size, size)))


def inside(shape: Tuple[int, ...], boxes: Sequence[Tuple[int, int, int, int]]) -> np.ndarray:
	region = np.zeros(shape[:2], dtype=bool)
	for x1, y1, x2, y2 in boxes:
		region[y1:y2, x1:x2] = True
	return region


# ---------------------------------------------------------------- facts and tensors


@pytest.mark.parametrize('model', ENHANCER_MODELS)
def test_registry_holds_the_documented_facts(model: str) -> None:
	template, size, vendor, license = MODEL_FACTS[model]
	spec = get_model(model)
	assert (spec.kind, spec.file_name, spec.hash_file_name, spec.release) == ('face_enhancer', model + '.onnx', model + '.hash', 'models-3.0.0')
	assert (spec.template, spec.size, spec.vendor, spec.license) == (template, (size, size), vendor, license)
	assert download_urls(spec, ['github'])[0] == 'https://github.com/facefusion/facefusion-assets/releases/download/models-3.0.0/' + model + '.onnx'


def test_options_and_required_models() -> None:
	assert FaceEnhancer.required_models(RunConfig()) == ['gfpgan_1.4']
	config = build_config(['headless-run', '--processors', 'face_swapper', 'face_enhancer', '--face-enhancer-model', 'codeformer', '--face-enhancer-blend', '35', '--face-enhancer-weight', '0.25'])
	assert (config.processors, config.face_enhancer_model, config.face_enhancer_blend, config.face_enhancer_weight) == (['face_swapper', 'face_enhancer'], 'codeformer', 35, 0.25)
	assert FaceEnhancer.required_models(config) == ['codeformer']
	defaults = build_config(['headless-run'])
	assert (defaults.face_enhancer_model, defaults.face_enhancer_blend, defaults.face_enhancer_weight, defaults.face_enhancer_use_trt) == ('gfpgan_1.4', 80, 0.5, False)
	for bad in (['--face-enhancer-blend', '101'], ['--face-enhancer-weight', '1.5'], ['--face-enhancer-model', 'gfpgan_9']):
		with pytest.raises(SystemExit) as raised:
			build_config(['headless-run', *bad])
		assert raised.value.code == 2


def test_ini_keys(tmp_path: Path) -> None:
	ini_path = tmp_path / 'facefusion.ini'
	ini_path.write_text('[processors]\nprocessors = face_swapper face_enhancer\nface_enhancer_model = gpen_bfr_256\nface_enhancer_blend = 60\nface_enhancer_weight = 0.7\nface_enhancer_use_trt = true\n', encoding='utf-8')
	config = build_config(['headless-run', '--config-path', str(ini_path)])
	assert (config.processors, config.face_enhancer_model, config.face_enhancer_blend, config.face_enhancer_weight, config.face_enhancer_use_trt) == (['face_swapper', 'face_enhancer'], 'gpen_bfr_256', 60, 0.7, True)
	# the command line wins over the file
	assert build_config(['headless-run', '--config-path', str(ini_path), '--face-enhancer-blend', '10']).face_enhancer_blend == 10


def test_input_and_output_tensors_follow_the_formulas() -> None:
	state = np.random.RandomState(3)
	crops = state.randint(0, 256, (3, 64, 64, 3)).astype(np.uint8)
	prepared = prepare_enhancer_input(crops)
	assert prepared.dtype == np.float32 and prepared.shape == (3, 3, 64, 64)
	for index in range(3):
		np.testing.assert_array_equal(prepared[index:index + 1], expected_input(crops[index]))
	# outside -1..1 (clipped), and values whose × 255 lands on .5 (rounded half to even)
	outputs = (state.standard_normal((3, 3, 64, 64)) * 0.8).astype(np.float32)
	outputs[0, 0, 0, :4] = [-3.0, 3.0, np.float32(0.5 / 255 * 2 - 1), np.float32(1.5 / 255 * 2 - 1)]
	normalised = normalize_enhancer_output(outputs)
	assert normalised.dtype == np.uint8 and normalised.shape == (3, 64, 64, 3)
	for index in range(3):
		np.testing.assert_array_equal(normalised[index], expected_output(outputs[index]))


# gpen_bfr_2048 differs from gpen_bfr_1024 in its size alone, and its dynamic-batch check takes 15 s on two cores
@pytest.mark.parametrize('model', [model for model in ENHANCER_MODELS if model != 'gpen_bfr_2048'])
def test_enhanced_crop_equals_the_independent_pipeline(standin_models_dir: Path, model: str) -> None:
	template, size, _, _ = MODEL_FACTS[model]
	crop, _ = warp(read('obama.jpg'), np.array(OBAMA_LANDMARK_5), template, size)
	enhancer = make_enhancer(standin_models_dir, model, face_enhancer_weight=0.3)
	np.testing.assert_array_equal(enhancer.enhance_crops([crop])[0], expected_enhanced_crop(standin_models_dir, model, crop, 0.3))


@pytest.mark.parametrize('model, blend', [('gfpgan_1.4', 80), ('gpen_bfr_256', 30), ('codeformer', 100), ('restoreformer_plus_plus', 0)])
def test_process_frame_warps_enhances_masks_pastes_and_blends_as_3_5_0(standin_models_dir: Path, model: str, blend: int) -> None:
	frame = read('obama.jpg')
	enhancer = make_enhancer(standin_models_dir, model, face_enhancer_blend=blend)
	output = enhancer.process_frame(frame, [make_face(OBAMA_LANDMARK_5)], frame.copy())
	np.testing.assert_array_equal(output, expected_frame(standin_models_dir, model, frame, OBAMA_LANDMARK_5, blend=blend))
	if blend == 0:
		np.testing.assert_array_equal(output, frame)


def test_weight_is_fed_only_to_models_with_a_weight_input(standin_models_dir: Path) -> None:
	frame = read('obama.jpg')
	face = make_face(OBAMA_LANDMARK_5)
	results = {}
	for model in ('codeformer', 'gfpgan_1.4'):
		for weight in (0.1, 0.9):
			enhancer = make_enhancer(standin_models_dir, model, face_enhancer_weight=weight)
			assert enhancer.has_weight_input() == (model == 'codeformer')
			results[model, weight] = enhancer.process_frame(frame, [face], frame.copy())
	assert np.any(results['codeformer', 0.1] != results['codeformer', 0.9])
	np.testing.assert_array_equal(results['gfpgan_1.4', 0.1], results['gfpgan_1.4', 0.9])
	np.testing.assert_array_equal(results['codeformer', 0.9], expected_frame(standin_models_dir, 'codeformer', frame, OBAMA_LANDMARK_5, weight=0.9))


def test_masks_are_box_without_padding_and_occlusion_only(standin_models_dir: Path) -> None:
	"""3.5.0's enhancer: the box mask always (--face-mask-blur, zero padding), the occlusion mask when asked for;
	--face-mask-padding, area and region masks do not apply to it."""
	frame = read('obama.jpg')
	face = make_face(OBAMA_LANDMARK_5)
	plain = make_enhancer(standin_models_dir).process_frame(frame, [face], frame.copy())
	padded = make_enhancer(standin_models_dir, face_mask_types=['box', 'region'], face_mask_padding=(20, 20, 20, 20)).process_frame(frame, [face], frame.copy())
	np.testing.assert_array_equal(plain, padded)
	blurred = make_enhancer(standin_models_dir, face_mask_blur=0.7)
	np.testing.assert_array_equal(blurred.process_frame(frame, [face], frame.copy()), expected_frame(standin_models_dir, 'gfpgan_1.4', frame, OBAMA_LANDMARK_5, blur=0.7))
	occluded = make_enhancer(standin_models_dir, face_mask_types=['occlusion'])
	crop, _ = warp(frame, np.array(OBAMA_LANDMARK_5), 'ffhq_512', 512)
	occlusion_mask = occluded.context.masker.occlusion_masks([crop])[0]
	assert occlusion_mask.min() < 0.5
	output = occluded.process_frame(frame, [face], frame.copy())
	np.testing.assert_array_equal(output, expected_frame(standin_models_dir, 'gfpgan_1.4', frame, OBAMA_LANDMARK_5, extra_mask=occlusion_mask))
	assert np.any(output != plain)


# ---------------------------------------------------------------- batching


def test_faces_and_frames_share_one_call_and_equal_face_by_face(standin_models_dir: Path) -> None:
	group = read('obama_and_biden.jpg')
	context = make_context(standin_models_dir, face_selector_mode='many')
	faces = select_faces(group, context.analyser, context.config)
	assert len(faces) >= 2
	enhancer = FaceEnhancer(context)
	counter = count_calls(enhancer)
	frames = [group, cv2.GaussianBlur(group, (5, 5), 0), group[:, ::-1].copy()]
	items = [(frame, faces, frame.copy()) for frame in frames]
	batched = enhancer.process_frames(items)
	# every face of every frame of the window in one call (the stand-in's batch was made dynamic)
	assert counter.batch_sizes == [len(faces) * len(frames)]
	one_by_one = FaceEnhancer(make_context(standin_models_dir))
	for frame, result in zip(frames, batched):
		expected = frame.copy()
		for face in faces:
			expected = one_by_one.process_frame(frame, [face], expected)
		np.testing.assert_array_equal(result, expected)


def test_fixed_batch_models_run_face_by_face(standin_models_dir: Path) -> None:
	"""codeformer's per-call weight keeps its batch fixed at 1: it is not converted, and the faces go one by one."""
	group = read('obama_and_biden.jpg')
	context = make_context(standin_models_dir, face_selector_mode='many', face_enhancer_model='codeformer')
	faces = select_faces(group, context.analyser, context.config)
	enhancer = FaceEnhancer(context)
	counter = count_calls(enhancer)
	assert counter.path.name == 'codeformer.onnx'
	enhancer.process_frame(group, faces, group.copy())
	assert counter.batch_sizes == [1] * len(faces)


def test_overlapping_faces_are_enhanced_one_after_the_other(standin_models_dir: Path) -> None:
	frame = read('obama_and_biden.jpg')
	landmarks = [GROUP_OBAMA_LANDMARK_5, (np.array(GROUP_OBAMA_LANDMARK_5) + [40, 25]).tolist()]
	enhancer = make_enhancer(standin_models_dir)
	counter = count_calls(enhancer)
	output = enhancer.process_frame(frame, [make_face(points) for points in landmarks], frame.copy())
	assert counter.batch_sizes == [1, 1]
	expected = expected_frame(standin_models_dir, 'gfpgan_1.4', frame, landmarks[0])
	expected = expected_frame(standin_models_dir, 'gfpgan_1.4', expected, landmarks[1])
	np.testing.assert_array_equal(output, expected)


def snapshot(face: Face) -> Dict[str, Any]:
	return {field.name: np.copy(value) if isinstance(value, np.ndarray) else dataclasses.replace(value) if dataclasses.is_dataclass(value) else value for field in dataclasses.fields(face) for value in [getattr(face, field.name)]}


def test_faces_and_target_frame_are_left_as_they_came(standin_models_dir: Path) -> None:
	frame = read('obama.jpg')
	face = make_face(OBAMA_LANDMARK_5)
	before = snapshot(face)
	landmarks_before = {name: np.copy(getattr(face.landmark_set, name)) for name in ('five', 'five_68', 'sixty_eight', 'sixty_eight_5')}
	target = frame.copy()
	make_enhancer(standin_models_dir).process_frame(target, [face], frame.copy())
	np.testing.assert_array_equal(target, frame)
	for name, value in landmarks_before.items():
		np.testing.assert_array_equal(getattr(face.landmark_set, name), value)
	assert face.embedding is None and before['embedding'] is None


# ---------------------------------------------------------------- chained with the swapper


def test_swapper_then_enhancer_changes_only_the_face_regions(standin_models_dir: Path) -> None:
	frame = read('obama_and_biden.jpg')
	context = make_context(standin_models_dir, face_selector_mode='many', processors=['face_swapper', 'face_enhancer'])
	faces = select_faces(frame, context.analyser, context.config)
	swapper = FaceSwapper(context)
	swapper.prepare()
	enhancer = FaceEnhancer(context)
	swapped = swapper.process_frame(frame, faces, frame.copy())
	chained = enhancer.process_frame(frame, faces, swapped.copy())
	# the enhancer works on the frame as the swapper left it: the result is the enhancer applied to the swap
	expected = swapped
	for face in faces:
		expected = expected_frame(standin_models_dir, 'gfpgan_1.4', expected, face.landmark_set.five_68)
	np.testing.assert_array_equal(chained, expected)
	# and not on the untouched target: the other order gives another picture
	enhanced_first = swapper.process_frame(frame, faces, enhancer.process_frame(frame, faces, frame.copy()))
	assert np.any(enhanced_first != chained)
	changed = np.any(chained != frame, axis=2)
	swap_boxes = [paste_box(frame.shape, (256, 256), estimate_matrix_by_face_landmark_5(face.landmark_set.five_68, 'arcface_128', (256, 256))) for face in faces]
	enhance_boxes = [enhancer_box(frame, face, 'gfpgan_1.4') for face in faces]
	assert changed.any() and not changed[~inside(frame.shape, swap_boxes + enhance_boxes)].any()
	assert np.any(chained != swapped)


def test_cli_runs_swapper_then_enhancer(run_cli: Any, standin_models_dir: Path, tmp_path: Path) -> None:
	output_path = tmp_path / 'out.jpg'
	target = read('obama_and_biden.jpg')
	result = run_cli(
		'headless-run', '-s', DATA / 'obama.jpg', '-t', DATA / 'obama_and_biden.jpg', '-o', output_path, '--face-detector-model', 'yunet',
		'--face-selector-mode', 'many', '--processors', 'face_swapper', 'face_enhancer', '--face-enhancer-model', 'gpen_bfr_256',
		'--face-enhancer-blend', '90', models_path=standin_models_dir
	)
	assert result.returncode == 0, result.stderr
	output = cv2.imread(str(output_path))
	assert output.shape == target.shape
	swap_only = tmp_path / 'swap.jpg'
	assert run_cli(
		'headless-run', '-s', DATA / 'obama.jpg', '-t', DATA / 'obama_and_biden.jpg', '-o', swap_only, '--face-detector-model', 'yunet',
		'--face-selector-mode', 'many', models_path=standin_models_dir
	).returncode == 0
	# the enhancer changed the swapped faces, and left the rest of the picture as the swapper wrote it
	difference = np.abs(output.astype(int) - cv2.imread(str(swap_only)).astype(int)).max(axis=2)
	assert (difference > 8).sum() > 1000
	assert not difference[:250, :].any() and not difference[-150:, :].any() and not difference[:, :600].any()


# ---------------------------------------------------------------- on the GPU (skipped without one)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize('model', ['gfpgan_1.4', 'codeformer'])
def test_cuda_path_matches_the_cpu_path(standin_models_dir: Path, model: str) -> None:
	"""CuPy warp → IO-bound CUDA session → CuPy paste and blend: within one level of the CPU result (OpenCV's warp of
	the mask and cv2.addWeighted round in another order), with every face of the window in one call."""
	group = read('obama_and_biden.jpg')
	cpu_context = make_context(standin_models_dir, face_selector_mode='many', face_enhancer_model=model)
	faces = select_faces(group, cpu_context.analyser, cpu_context.config)
	frames = [group, group[:, ::-1].copy()]
	expected = FaceEnhancer(cpu_context).process_frames([(frame, faces, frame.copy()) for frame in frames])
	gpu_enhancer = FaceEnhancer(make_context(standin_models_dir, face_enhancer_model=model, execution_providers=['cuda']))
	assert gpu_enhancer.array_module() is not np
	counter = count_calls(gpu_enhancer)
	results = gpu_enhancer.process_frames([(frame, faces, frame.copy()) for frame in frames])
	for result, reference in zip(results, expected):
		assert isinstance(result, np.ndarray)
		assert np.abs(result.astype(int) - reference.astype(int)).max() <= 1
	# IO binding bypasses ModelSession.run: the batch processor's statistics count the calls
	assert counter.batch_sizes == []
	stats = gpu_enhancer.batcher.stats
	assert stats.items == len(faces) * len(frames)
	# one batch-processor call each (codeformer runs it face by face inside, its batch being fixed at 1)
	assert stats.calls == 1


@pytest.mark.gpu
@requires_gpu
def test_tensorrt_switch_builds_the_enhancer_engine(standin_models_dir: Path, tmp_path: Path) -> None:
	"""--face-enhancer-use-trt: the session runs on TensorRT when this onnxruntime has it (else CUDA, said once), and
	the result stays within a few levels of the CPU (fp16)."""
	frame = read('obama.jpg')
	face = make_face(OBAMA_LANDMARK_5)
	expected = make_enhancer(standin_models_dir).process_frame(frame, [face], frame.copy())
	enhancer = make_enhancer(standin_models_dir, execution_providers=['cuda'], face_enhancer_use_trt=True, face_enhancer_trt_max_batch=4)
	enhancer.context.inference.cache_dir = tmp_path
	providers = enhancer.session.active_providers
	assert providers[0] in ('TensorrtExecutionProvider', 'CUDAExecutionProvider')
	result = enhancer.process_frame(frame, [face], frame.copy())
	assert np.abs(result.astype(int) - expected.astype(int)).max() <= 4
