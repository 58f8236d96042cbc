"""The looks of the paste: multi-band blending, colour matching and linear light, on real photos with the real YuNet
and stand-in swappers (whose output carries a colour cast of its own; some tests tint it further on purpose).

A swap is recorded once per photo and composited again under each setting, so the modes meet the same swap."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, List

import cv2
import numpy as np
import pytest

from facefusion import face_selector
from facefusion.cli.program import build_config
from facefusion.config import RunConfig
from facefusion.face_helper import paste_back
from facefusion.gpu import blending, device
from facefusion.gpu.blending import BlendSettings, TrackColors, color_statistics, levels_for_box
from facefusion.gpu.compositor import Compositor, PasteJob
from facefusion.processors.modules.face_swapper.core import blend_settings_of
from facefusion.testing import blend_metrics
from facefusion.testing.blend_metrics import RecordingCompositor, composite, frame_mask, paste_boxes_mask, tint
from facefusion.tracking.metrics import motion_compensated_tpsnr, relative_motion
from facefusion.workflows.engine import build_processors, start_engine

from conftest import CliRunner

DATA = Path(__file__).parent / 'data'
requires_gpu = pytest.mark.skipif(not device.gpu_available(), reason='needs CuPy and a working CUDA device')
MULTI_BAND = BlendSettings('multi-band')
MATCHED = BlendSettings('multi-band', color_match='mean-std')
# a cast no lighting explains: blue up, red down, brighter
TINT = ((1.3, 1.0, 0.75), 10.0)


@dataclass
class RecordedSwap:
	frame: np.ndarray
	output: np.ndarray
	jobs: List[PasteJob]


def record_swap(models_dir: Path, target: str, *extra: str) -> RecordedSwap:
	config = build_config([
		'headless-run', '-s', str(DATA / 'biden.jpg'), '-t', str(DATA / target), '-o', '/tmp/unused.png', '--models-path', str(models_dir),
		'--face-detector-model', 'yunet', '--face-selector-mode', 'many', '--face-swapper-model', 'hyperswap_1a_256', *extra
	])
	engine = start_engine(config)
	try:
		frame = cv2.imread(str(DATA / target))
		processor = build_processors(config, engine, [], [cv2.imread(str(DATA / 'biden.jpg'))])[0]
		recorder = RecordingCompositor(settings=processor.blend_settings)
		processor.frame_compositor = recorder
		faces = face_selector.select_faces(frame, engine.analyser, config, [])
		output = processor.process_frame(frame, faces, frame.copy())
		return RecordedSwap(frame, output, recorder.recorded)
	finally:
		engine.close()


@pytest.fixture(scope='module')
def portrait(standin_models_dir: Path) -> RecordedSwap:
	return record_swap(standin_models_dir, 'obama.jpg', '--face-swapper-blend-mode', 'feather', '--face-swapper-color-match', 'none')


@pytest.fixture(scope='module')
def group(standin_models_dir: Path) -> RecordedSwap:
	return record_swap(standin_models_dir, 'obama_and_biden.jpg', '--face-swapper-blend-mode', 'feather', '--face-swapper-color-match', 'none')


def tinted(swap: RecordedSwap) -> List[PasteJob]:
	return [replace(job, crop=tint(job.crop, *TINT)) for job in swap.jobs]


# ---------------------------------------------------------------- the feather setting is 3.5.0's paste


def test_feather_setting_is_the_paste_back_of_3_5_0(group: RecordedSwap) -> None:
	assert len(group.jobs) >= 2
	expected = group.frame
	for job in group.jobs:
		expected = paste_back(expected, job.crop, job.combined_mask(), job.affine)
	assert np.array_equal(group.output, expected)
	assert np.array_equal(composite(group.frame, group.jobs, BlendSettings()), expected)


@pytest.mark.parametrize('settings', [
	MULTI_BAND, MATCHED, BlendSettings(color_match='histogram'), BlendSettings(linear_light=True),
	BlendSettings('multi-band', 3, 'histogram', 0.5, True)
], ids=['multi-band', 'multi-band+mean-std', 'feather+histogram', 'linear-light', 'all'])
def test_nothing_changes_outside_the_paste_boxes(group: RecordedSwap, settings: BlendSettings) -> None:
	result = composite(group.frame, tinted(group), settings)
	outside = ~paste_boxes_mask(group.frame.shape, group.jobs)
	assert np.array_equal(result[outside], group.frame[outside])
	# and inside, where no mask level reaches, the frame stays as it was too
	mask = frame_mask(group.frame.shape, group.jobs)
	far = (cv2.dilate((mask > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) == 0) & ~outside
	if settings.mode == 'feather':
		assert np.array_equal(result[far], group.frame[far])
	assert not np.array_equal(result, group.frame)


def test_strength_zero_is_no_colour_match(portrait: RecordedSwap) -> None:
	plain = composite(portrait.frame, portrait.jobs, MULTI_BAND)
	assert np.array_equal(composite(portrait.frame, portrait.jobs, replace(MATCHED, color_match_strength=0.0)), plain)
	assert not BlendSettings(color_match='mean-std', color_match_strength=0.0).matches_color


# ---------------------------------------------------------------- measured looks


def test_multi_band_and_colour_match_halve_the_seam_and_take_the_targets_light(portrait: RecordedSwap) -> None:
	jobs = tinted(portrait)
	mask = frame_mask(portrait.frame.shape, jobs)
	floor = blend_metrics.seam_step(portrait.frame, mask)
	reports = {name: blend_metrics.measure(portrait.frame, composite(portrait.frame, jobs, settings), mask) for name, settings in (
		('feather', BlendSettings()), ('multi-band', MULTI_BAND), ('matched', MATCHED)
	)}
	feather, multi_band, matched = reports['feather'], reports['multi-band'], reports['matched']
	# the step the paste adds on top of the photo's own step across the same contour
	assert multi_band.seam_step < feather.seam_step
	assert matched.seam_step - floor <= 0.5 * (feather.seam_step - floor)
	assert matched.gradient_energy <= feather.gradient_energy * 1.05
	# the tint is gone: the face takes the target's colour
	assert feather.color_fidelity > 10
	assert matched.color_fidelity < feather.color_fidelity / 10
	# and the swap's detail is kept within 10 %
	assert abs(matched.detail_energy / feather.detail_energy - 1) < 0.10
	assert abs(multi_band.detail_energy / feather.detail_energy - 1) < 0.10


def test_colour_statistics_ignore_what_the_mask_leaves_out() -> None:
	photo = cv2.imread(str(DATA / 'obama.jpg'))[150:406, 370:626].astype(np.float32)
	weights = np.zeros(photo.shape[:2], np.float32)
	weights[64:192, 64:192] = 1
	before = color_statistics(photo, weights)
	changed = photo.copy()
	changed[weights == 0] = (0, 255, 0)
	after = color_statistics(changed, weights)
	assert np.allclose(before.mean, after.mean) and np.allclose(before.std, after.std)
	assert color_statistics(photo, np.zeros_like(weights)) is None


def test_matching_moves_the_swap_to_the_target_statistics(portrait: RecordedSwap) -> None:
	job = tinted(portrait)[0]
	weights = job.combined_mask()
	target = blend_metrics.target_statistics_for(portrait.frame, job, with_histogram=True)
	for method in ('mean-std', 'histogram'):
		matched = blending.match_colors(job.crop, weights, target, method, 1.0)
		result = color_statistics(matched, weights)
		assert np.abs(result.mean - target.mean).max() < 1.5, method
		half = color_statistics(blending.match_colors(job.crop, weights, target, method, 0.5), weights)
		source = color_statistics(job.crop, weights)
		assert np.linalg.norm(half.mean - target.mean) < np.linalg.norm(source.mean - target.mean)


def test_linear_light_draws_no_dark_fringe() -> None:
	# a white face on a dark-red background through a soft edge: in gamma space the middle of the edge is darker
	# than either side's light would give; in linear light it is the mean of the two lights
	frame = np.zeros((64, 64, 3), np.uint8)
	frame[:] = (0, 0, 160)
	crop = np.full((64, 64, 3), 255, np.float32)
	mask = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
	affine = np.array([[1.0, 0, 0], [0, 1.0, 0]])
	gamma = Compositor(settings=BlendSettings()).paste_all(frame, [PasteJob(crop, [mask], affine)])
	linear = Compositor(settings=BlendSettings(linear_light=True)).paste_all(frame, [PasteJob(crop, [mask], affine)])
	middle = 32
	assert linear[middle, middle, 0] > gamma[middle, middle, 0] + 40
	expected = blending.linear_to_srgb(np.float32(mask[middle, middle]) * 1 + (1 - mask[middle, middle]) * blending.srgb_to_linear(np.uint8(0)))
	assert abs(int(linear[middle, middle, 0]) - float(expected)) <= 1


# ---------------------------------------------------------------- pyramids and the two array-module paths


def test_pyramid_steps_equal_opencv() -> None:
	values = cv2.imread(str(DATA / 'obama.jpg'))[100:237, 300:451].astype(np.float32)
	down = blending.pyr_down(values, reference=True)
	assert np.abs(down - cv2.pyrDown(values)).max() < 1e-3
	for shape in ((274, 302), (273, 301)):
		up = blending.pyr_up(values, shape, reference=True)
		assert np.abs(up - cv2.pyrUp(values, dstsize=(shape[1], shape[0]))).max() < 1e-3
	assert np.abs(blending.pyr_down(values[..., 0], reference=True) - cv2.pyrDown(values[..., 0])).max() < 1e-3


def assert_within_one_level(result: np.ndarray, expected: np.ndarray, settings: BlendSettings) -> None:
	difference = np.abs(result.astype(int) - expected.astype(int))
	if settings.color_match == 'histogram':
		# a histogram's inverse CDF is steep where the target has few pixels: a 0.01 L*a*b* difference can move a
		# handful of pixels by two or three levels there
		assert difference.max() <= 4 and np.mean(difference > 1) < 1e-5, settings
		return
	assert difference.max() <= 1, settings


def test_reference_path_equals_the_opencv_path_within_one_level(group: RecordedSwap) -> None:
	jobs = tinted(group)
	for settings in (MULTI_BAND, MATCHED, BlendSettings('multi-band', linear_light=True), BlendSettings('multi-band', color_match='histogram', linear_light=True)):
		assert_within_one_level(composite(group.frame, jobs, settings), composite(group.frame, jobs, settings, reference=True), settings)


def test_levels_follow_the_box_size() -> None:
	assert [levels_for_box(side, side) for side in (64, 128, 256, 512, 2048)] == [3, 4, 5, 6, 8]
	assert levels_for_box(256, 256, requested=2) == 2
	assert levels_for_box(40, 400, requested=8) == 2


def test_track_statistics_are_smoothed_and_start_afresh_with_a_new_track() -> None:
	colors = TrackColors(weight=0.25)
	first = blending.ColorStatistics(np.array([50.0, 0, 0]), np.ones(3))
	jump = blending.ColorStatistics(np.array([70.0, 0, 0]), np.ones(3))
	assert colors.update(1, first).mean[0] == 50
	assert colors.update(1, jump).mean[0] == pytest.approx(55)
	# a scene cut: the tracker hands out new tokens, whose statistics owe nothing to the old shot
	assert colors.update(2, jump).mean[0] == 70


@pytest.mark.gpu
@requires_gpu
def test_gpu_blend_equals_numpy_within_one_level(group: RecordedSwap) -> None:
	import cupy
	jobs = tinted(group)
	for settings in (MULTI_BAND, MATCHED, BlendSettings('multi-band', color_match='histogram', linear_light=True), BlendSettings(color_match='mean-std')):
		expected = composite(group.frame, jobs, settings, reference=True)
		with_histogram = settings.color_match == 'histogram'
		device_jobs = [
			PasteJob(cupy.asarray(job.crop), [cupy.asarray(job.combined_mask())], job.affine,
				blending.statistics_on(blend_metrics.target_statistics_for(group.frame, job, with_histogram), cupy))
			for job in jobs
		]
		compositor = Compositor(prefer_gpu=True, settings=settings)
		result = compositor.download(compositor.paste_all(compositor.upload(group.frame), device_jobs))
		assert_within_one_level(result, expected, settings)
		# and the CPU's own path (OpenCV's pyramids and L*a*b*) too
		assert_within_one_level(result, composite(group.frame, jobs, settings), settings)


# ---------------------------------------------------------------- options and video


def test_options_reach_the_config_from_the_command_line_and_the_ini(tmp_path: Path) -> None:
	base = ['headless-run', '-s', str(DATA / 'biden.jpg'), '-t', str(DATA / 'obama.jpg'), '-o', str(tmp_path / 'out.png')]
	config = build_config(base)
	# the defaults are the measured best; the conformance setting is one pair of flags away
	assert (config.face_swapper_blend_mode, config.face_swapper_color_match, config.face_swapper_linear_light) == ('multi-band', 'mean-std', False)
	assert RunConfig().face_swapper_blend_mode == 'multi-band' and RunConfig().face_swapper_color_match == 'mean-std'
	conformance = build_config(base + ['--face-swapper-blend-mode', 'feather', '--face-swapper-color-match', 'none'])
	assert blend_settings_of(conformance).is_feather
	ini = tmp_path / 'looks.ini'
	ini.write_text('[processors]\nface_swapper_blend_mode = multi-band\nface_swapper_blend_levels = 4\nface_swapper_color_match = histogram\nface_swapper_color_match_strength = 0.6\nface_swapper_linear_light = true\n')
	config = build_config(base + ['--config-path', str(ini)])
	assert (config.face_swapper_blend_mode, config.face_swapper_blend_levels, config.face_swapper_color_match) == ('multi-band', 4, 'histogram')
	assert config.face_swapper_color_match_strength == 0.6 and config.face_swapper_linear_light
	with pytest.raises(SystemExit):
		build_config(base + ['--face-swapper-color-match-strength', '1.5'])


@pytest.fixture(scope='module')
def moving_clip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
	from facefusion.testing.synthetic_video import make_synthetic_video
	path = tmp_path_factory.mktemp('looks') / 'clip.mp4'
	yield make_synthetic_video(path, photos=('obama.jpg', 'obama_and_biden.jpg'), width=320, height=240, frame_count=24, cut_at=14, audio=False), path


def read_frames(path: Path) -> List[np.ndarray]:
	capture = cv2.VideoCapture(str(path))
	frames = []
	while True:
		ok, frame = capture.read()
		if not ok:
			return frames
		frames.append(frame)


def test_video_colour_match_adds_no_flicker(run_cli: CliRunner, standin_models_dir: Path, moving_clip: object, tmp_path: Path) -> None:
	clip, path = moving_clip
	outputs = {}
	for name, extra in (('plain', ('--face-swapper-color-match', 'none')), ('matched', ('--face-swapper-color-match', 'mean-std', '--execution-thread-count', '2'))):
		output = tmp_path / (name + '.mp4')
		result = run_cli(
			'headless-run', '-s', DATA / 'biden.jpg', '-t', path, '-o', output, '--face-detector-model', 'yunet',
			'--face-swapper-model', 'inswapper_128', '--face-swapper-blend-mode', 'multi-band', *extra, models_path=standin_models_dir
		)
		assert result.returncode == 0, result.stderr
		outputs[name] = read_frames(output)
	photo = cv2.imread(str(DATA / 'obama.jpg'))
	# Obama's face in the photo (YuNet's box, rounded), carried through the camera path; frames before the cut only
	corners = np.array([[400, 140], [600, 140], [600, 360], [400, 360]], np.float32)
	boxes, motions = [], []
	for index in range(clip.cut_index):
		points = clip.frame_points(index, corners)
		boxes.append([*points.min(axis=0), *points.max(axis=0)])
		motions.append(relative_motion(clip.transforms[index - 1], clip.transforms[index]) if index else None)
	assert photo is not None
	plain = motion_compensated_tpsnr(outputs['plain'][:clip.cut_index], boxes, motions)
	matched = motion_compensated_tpsnr(outputs['matched'][:clip.cut_index], boxes, motions)
	assert matched >= plain, (plain, matched)
	assert not np.array_equal(outputs['plain'][5], outputs['matched'][5])


@pytest.mark.skipif(os.cpu_count() == 1, reason='needs two cores for two workers')
def test_video_colour_match_does_not_depend_on_the_worker_count(run_cli: CliRunner, standin_models_dir: Path, moving_clip: object, tmp_path: Path) -> None:
	_, path = moving_clip
	frames = []
	for threads in ('1', '2'):
		output = tmp_path / (threads + '.mp4')
		result = run_cli(
			'headless-run', '-s', DATA / 'biden.jpg', '-t', path, '-o', output, '--face-detector-model', 'yunet', '--face-swapper-model', 'inswapper_128',
			'--face-swapper-color-match', 'mean-std', '--execution-thread-count', threads, '--trim-frame-end', '10', models_path=standin_models_dir
		)
		assert result.returncode == 0, result.stderr
		frames.append(read_frames(output))
	assert all(np.array_equal(first, second) for first, second in zip(*frames))


def test_the_analyse_stage_feeds_each_track_its_smoothed_colour(standin_models_dir: Path, moving_clip: object) -> None:
	from facefusion.tracking.tracker import FaceTracker
	from facefusion.types import Frame
	from facefusion.workflows.video import FrameSteps
	clip, path = moving_clip
	config = build_config([
		'headless-run', '-s', str(DATA / 'biden.jpg'), '-t', str(path), '-o', '/tmp/unused.mp4', '--models-path', str(standin_models_dir),
		'--face-detector-model', 'yunet', '--face-selector-mode', 'many', '--face-swapper-model', 'inswapper_128', '--face-swapper-color-match', 'mean-std'
	])
	engine = start_engine(config)
	try:
		processor = build_processors(config, engine, [], [cv2.imread(str(DATA / 'biden.jpg'))])[0]
		steps = FrameSteps(config, engine, [processor], [], FaceTracker(config, engine.analyser, fps=25))
		frames = read_frames(path)
		window = steps.analyse_window([Frame(index, frame) for index, frame in enumerate(frames)])
		before, after = window[clip.cut_index - 1].faces[0], window[clip.cut_index].faces[0]
		# the smoothed statistics are not the frame's own, and a cut starts a new track with its own statistics
		own = processor.target_statistics(frames[clip.cut_index - 1], before)
		assert not np.allclose(processor.observed_colors[before].mean, own.mean)
		assert after.track_token != before.track_token
		fresh = processor.target_statistics(frames[clip.cut_index], after)
		assert np.allclose(processor.observed_colors[after].mean, fresh.mean)
	finally:
		engine.close()


@pytest.mark.parametrize('shape', [(37, 53, 3), (8, 8, 4), (90, 120, 1)])
def test_host_mask_product_is_numpys_broadcast(shape: tuple) -> None:
	"""The multi-band paste's per-pixel mask products through OpenCV on the host: NumPy's broadcast bit for bit
	(negative zeros included, which a mask of 0 gives a negative difference)."""
	from facefusion.gpu.blending import times_mask
	generator = np.random.default_rng(len(shape) + shape[0])
	values = (generator.random(shape, dtype=np.float32) - 0.5) * 500
	mask = generator.random(shape[:2], dtype=np.float32)
	mask[::3] = 0
	mask[::4] = 1
	product = times_mask(values, mask)
	expected = values * mask[..., None]
	assert product.shape == expected.shape and product.dtype == np.float32
	assert np.array_equal(product, expected) and np.array_equal(np.signbit(product), np.signbit(expected))


def test_host_multi_band_blend_is_the_array_module_steps_bit_for_bit(group: RecordedSwap) -> None:
	"""The host's in-place OpenCV multi-band paste gives what paste_face's array-module steps give (the difference
	where the mask reaches, multi_band_delta, the float32 sum rounded half to even), on the recorded swap's own paste
	boxes and on random ones whose masks reach 0 and 1 and whose crops leave 0..255. A sum rounded straight to
	uint8 fails this: it lands on the other side of a .5 now and then."""
	from facefusion.gpu import kernels
	from facefusion.gpu.blending import multi_band_blend_host, multi_band_delta, times_mask

	def array_module_steps(region: np.ndarray, box_crop: np.ndarray, box_mask: np.ndarray, levels: int) -> np.ndarray:
		base = region.astype(np.float32)
		difference = times_mask(box_crop - base, (box_mask > 0).astype(np.float32))
		return np.clip(np.rint(base + multi_band_delta(difference, box_mask, levels)), 0, 255).astype(np.uint8)

	cases = []
	for job in tinted(group):
		box = blending_box(group.frame, job)
		x1, y1, x2, y2 = box
		matrix = kernels.paste_matrix_for(job.affine, box)
		size = (x2 - x1, y2 - y1)
		box_mask = np.clip(cv2.warpAffine(np.ascontiguousarray(job.combined_mask(), dtype=np.float32), matrix, size), 0, 1)
		box_crop = cv2.warpAffine(np.ascontiguousarray(job.crop, dtype=np.float32), matrix, size, borderMode=cv2.BORDER_REPLICATE)
		cases.append((group.frame[y1:y2, x1:x2], box_crop, box_mask))
	generator = np.random.default_rng(7)
	for height, width in ((37, 53), (64, 64), (181, 240), (300, 211)):
		region = generator.integers(0, 256, (height, width, 3), dtype=np.uint8)
		box_crop = (generator.random((height, width, 3), dtype=np.float32) * 300 - 20).astype(np.float32)
		box_mask = np.clip(generator.random((height, width), dtype=np.float32) * 2 - 0.5, 0, 1)
		cases.append((region, box_crop, box_mask))
	assert len(cases) > 4
	for region, box_crop, box_mask in cases:
		for levels in sorted({1, 2, 3, levels_for_box(region.shape[1], region.shape[0])}):
			expected = array_module_steps(region, box_crop, box_mask, levels)
			blended = multi_band_blend_host(region, box_crop, box_mask, levels)
			assert blended.dtype == np.uint8 and blended.shape == region.shape
			assert np.array_equal(blended, expected), (region.shape, levels, int(np.count_nonzero(blended != expected)))


def blending_box(frame: np.ndarray, job: PasteJob) -> tuple:
	from facefusion.face_helper import paste_box
	return paste_box(frame.shape, (int(job.crop.shape[1]), int(job.crop.shape[0])), job.affine)
