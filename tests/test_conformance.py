"""Conformance with FaceFusion 3.5.0, proven by 3.5.0's own outputs.

The conformance kit (`shared/conformance/` beside the project) holds what the unmodified upstream 3.5.0 wrote for
lossless PNG targets and a short clip, the exact model files it used (stand-ins with the real signatures and the
real YuNet), and its analysis of each photo (`faces.json`). Each test runs this engine on the same files with the
same options, as a user would (the CLI as a subprocess), and compares with 3.5.0's result.

The models are copied out of the kit first: the kit is read-only in CI, and the engine is given a folder of its own.
"""
from __future__ import annotations

import json
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import pytest

from facefusion.config import PROJECT_DIR, RunConfig
from facefusion.face_analyser import FaceAnalyser
from facefusion.inference.manager import InferenceManager
from facefusion.video.ffmpeg import find_ffmpeg

from conftest import DATA_DIR, CliRunner

KIT_DIR = PROJECT_DIR.parent / 'shared' / 'conformance'
KIT_MODELS = KIT_DIR / 'models'
KIT_TARGETS = KIT_DIR / 'targets'
KIT_OUTPUTS = KIT_DIR / 'outputs'

pytestmark = pytest.mark.skipif(
	not (KIT_MODELS.is_dir() and KIT_OUTPUTS.is_dir()),
	reason='the 3.5.0 conformance kit is not at ' + str(KIT_DIR) + ' (it is cloned next to the project in CI)'
)

# every kit run: the real YuNet and, unless the case says otherwise, every face; 3.5.0's paste (the default blends
# multi-band with colour matching)
COMMON_OPTIONS = (
	'headless-run', '--face-detector-model', 'yunet', '--face-selector-mode', 'many', '--face-swapper-blend-mode', 'feather',
	'--face-swapper-color-match', 'none'
)
# the video setting in which the engine follows 3.5.0's per-frame path: no tracker, no smoothing, one face at a time
# the kit's clip is 4:4:4 and 3.5.0 encoded it 4:2:0
CONFORMANCE_VIDEO_OPTIONS = ('--face-tracker', 'none', '--temporal-smoothing', 'none', '--face-swapper-batching', 'never', '--output-video-pixel-format', 'yuv420p')
CLIP_OPTIONS = (
	'--processors', 'face_swapper', '--face-swapper-model', 'inswapper_128', '--output-video-quality', '100',
	'--temp-frame-format', 'png'
)
CLIP_SIZE = (640, 360)
CLIP_FRAMES = 48


@dataclass(frozen=True)
class ImageCase:
	"""One row of the kit's table: 3.5.0's output file, its options, its target and its source (the kit's sources
	are the test photos, byte for byte)."""
	output: str
	options: Tuple[str, ...]
	target: str
	source: str


IMAGE_CASES = [
	ImageCase('swap_inswapper_128.png', ('--processors', 'face_swapper', '--face-swapper-model', 'inswapper_128'), 'obama_and_biden.png', 'obama.jpg'),
	ImageCase('swap_hyperswap_1a_256.png', ('--processors', 'face_swapper', '--face-swapper-model', 'hyperswap_1a_256'), 'obama_and_biden.png', 'obama.jpg'),
	ImageCase(
		'swap_inswapper_128_boost512.png',
		('--processors', 'face_swapper', '--face-swapper-model', 'inswapper_128', '--face-swapper-pixel-boost', '512x512'),
		'obama_and_biden.png', 'biden.jpg'
	),
	# 3.5.0 drops a --face-mask-padding given on its command line (its parser compares the text with a range of
	# ints, so every value falls back to 0); this padding is under the blur border anyway, so the case holds either
	# way. The edge case below has a padding that counts.
	ImageCase(
		'swap_inswapper_128_masks.png',
		(
			'--processors', 'face_swapper', '--face-swapper-model', 'inswapper_128', '--face-mask-types', 'box', 'occlusion',
			'region', '--face-mask-blur', '0.5', '--face-mask-padding', '5', '0', '10', '0'
		),
		'obama_and_biden.png', 'obama.jpg'
	),
	ImageCase(
		'swap_inswapper_128_weight08.png',
		('--processors', 'face_swapper', '--face-swapper-model', 'inswapper_128', '--face-swapper-weight', '0.8'),
		'biden.png', 'obama.jpg'
	),
	ImageCase(
		'swap_hyperswap_reference.png',
		(
			'--processors', 'face_swapper', '--face-swapper-model', 'hyperswap_1a_256', '--face-selector-mode', 'reference',
			'--reference-face-distance', '0.1'
		),
		'obama_and_biden.png', 'biden.jpg'
	),
]


@dataclass(frozen=True)
class PixelDifference:
	worst: int
	above_one: int
	pixel_count: int

	def describe(self) -> str:
		return 'worst difference ' + str(self.worst) + ', ' + str(self.above_one) + ' of ' + str(self.pixel_count) + ' pixels above 1'


def pixel_difference(expected: np.ndarray, actual: np.ndarray) -> PixelDifference:
	"""Per pixel, the largest difference over the channels."""
	assert expected.shape == actual.shape, 'shape ' + str(actual.shape) + ' where 3.5.0 has ' + str(expected.shape)
	per_pixel = np.abs(expected.astype(np.int16) - actual.astype(np.int16))
	if per_pixel.ndim == 3:
		per_pixel = per_pixel.max(axis=2)
	return PixelDifference(int(per_pixel.max()), int((per_pixel > 1).sum()), int(per_pixel.size))


@pytest.fixture(scope='module')
def kit_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
	"""A writable copy of the kit's model folder (it holds only what 3.5.0's runs needed, and so does every case)."""
	directory = tmp_path_factory.mktemp('kit_models') / 'models'
	shutil.copytree(KIT_MODELS, directory)
	for path in directory.iterdir():
		path.chmod(path.stat().st_mode | stat.S_IWUSR)
	return directory


def run_engine(run_cli: CliRunner, kit_models: Path, output: Path, *options: str) -> None:
	result = run_cli(*COMMON_OPTIONS, *options, '-o', str(output), models_path=kit_models)
	assert result.returncode == 0, result.stdout + result.stderr
	assert output.is_file()


# ---------------------------------------------------------------- images


@pytest.mark.parametrize('case', IMAGE_CASES, ids=[case.output for case in IMAGE_CASES])
def test_image_case_equals_3_5_0_within_one_level(case: ImageCase, run_cli: CliRunner, kit_models: Path, tmp_path: Path) -> None:
	"""The whole image, every pixel within one level of 3.5.0's (the rest of the picture is untouched by both, so
	only the faces can differ)."""
	output = tmp_path / case.output
	run_engine(run_cli, kit_models, output, *case.options, '-s', str(DATA_DIR / case.source), '-t', str(KIT_TARGETS / case.target))
	expected = cv2.imread(str(KIT_OUTPUTS / case.output), cv2.IMREAD_UNCHANGED)
	difference = pixel_difference(expected, cv2.imread(str(output), cv2.IMREAD_UNCHANGED))
	print(case.output + ': ' + difference.describe())
	assert difference.worst <= 1, case.output + ': ' + difference.describe()


# 3.5.0 with face_mask_padding = 20 0 10 0 from its ini file (where, unlike its command line, the padding applies),
# mask types box occlusion region, inswapper_128, obama.jpg onto rows 120..519, columns 250..749 of the kit's
# obama.png: the face's crop reaches 74 px past the top edge. Stored is the part 3.5.0 changed (rows 0..321,
# columns 45..443); the rest is the target as it was.
EDGE_REFERENCE = DATA_DIR / 'conformance_edge_padding.png'
EDGE_TARGET_SLICE = (slice(120, 520), slice(250, 750))
EDGE_CHANGED_SLICE = (slice(0, 322), slice(45, 444))


def test_mask_padding_on_a_face_cut_by_the_frame_edge(run_cli: CliRunner, kit_models: Path, tmp_path: Path) -> None:
	"""Box, occlusion and region masks with a top and bottom padding on a face whose crop hangs over the top edge:
	within one level of 3.5.0 up to that edge. The padding counts here: 3.5.0 without it (as its command line
	gives it) is up to 117 levels away from this reference, in a band along the top edge. (A paste box that
	floored and ceiled the crop's corners instead of rounding them, as 3.5.0 does, moved OpenCV's fixed-point
	sampling and cost up to 4 levels here.)"""
	target = cv2.imread(str(KIT_TARGETS / 'obama.png'))[EDGE_TARGET_SLICE]
	target_path = tmp_path / 'obama_top_edge.png'
	cv2.imwrite(str(target_path), target)
	output = tmp_path / 'output.png'
	run_engine(
		run_cli, kit_models, output, '--processors', 'face_swapper', '--face-swapper-model', 'inswapper_128',
		'--face-mask-types', 'box', 'occlusion', 'region', '--face-mask-padding', '20', '0', '10', '0',
		'-s', str(DATA_DIR / 'obama.jpg'), '-t', str(target_path)
	)
	actual = cv2.imread(str(output))
	difference = pixel_difference(cv2.imread(str(EDGE_REFERENCE)), actual[EDGE_CHANGED_SLICE])
	print('edge padding: ' + difference.describe())
	assert difference.worst <= 1, difference.describe()
	unchanged = np.ones(target.shape[:2], dtype=bool)
	unchanged[EDGE_CHANGED_SLICE] = False
	np.testing.assert_array_equal(actual[unchanged], target[unchanged])


def connected_dots(image: np.ndarray, target: np.ndarray, color: Tuple[int, int, int]) -> List[Tuple[float, float]]:
	"""Centres of the small filled blobs drawn in exactly this colour (outlines are long and thin, so left out)."""
	drawn = np.all(image == color, axis=2) & np.any(image != target, axis=2)
	count, _, stats, centroids = cv2.connectedComponentsWithStats(drawn.astype(np.uint8), connectivity=8)
	dots = []
	for index in range(1, count):
		width, height, area = stats[index, cv2.CC_STAT_WIDTH], stats[index, cv2.CC_STAT_HEIGHT], stats[index, cv2.CC_STAT_AREA]
		if width <= 12 and height <= 12 and area >= 0.5 * width * height:
			dots.append((float(centroids[index][0]), float(centroids[index][1])))
	return sorted(dots)


def test_debugger_marks_the_same_points(run_cli: CliRunner, kit_models: Path, tmp_path: Path) -> None:
	"""face_debugger with its default items (face-landmark-5/68, face-mask) on the group photo: the same landmark
	dots in the same colour (cyan: the 2dfan4 stand-in scores low, so 5/68 are the detector's points), each within
	a pixel of 3.5.0's on both axes.

	The drawing itself is this engine's own, on purpose: the dots and lines grow with the frame (radius 4 on this
	2000 px photo, 3.5.0 draws 3), points are rounded to the nearest pixel (3.5.0 truncates), and the mask item
	outlines the mask the swapper would paste through, in yellow, where 3.5.0 outlines the unblurred box mask (the
	whole crop square). So this case compares positions, not pixels."""
	output = tmp_path / 'debugger.png'
	target_path = KIT_TARGETS / 'obama_and_biden.png'
	run_engine(run_cli, kit_models, output, '--processors', 'face_debugger', '-t', str(target_path))
	target = cv2.imread(str(target_path))
	expected_dots = connected_dots(cv2.imread(str(KIT_OUTPUTS / 'debugger.png')), target, (255, 255, 0))
	actual_dots = connected_dots(cv2.imread(str(output)), target, (255, 255, 0))
	assert len(expected_dots) == 15
	assert len(actual_dots) == len(expected_dots)
	for expected_dot in expected_dots:
		# rounding and truncating the same point land at most one pixel apart on each axis
		distance = min(max(abs(expected_dot[0] - dot[0]), abs(expected_dot[1] - dot[1])) for dot in actual_dots)
		assert distance <= 1.0, 'no dot within a pixel of the one 3.5.0 drew at ' + str(expected_dot)


# ---------------------------------------------------------------- analysis


def test_faces_json_matches_the_analyser() -> None:
	"""Every face 3.5.0's get_many_faces returned on the kit's targets: boxes and all four landmark sets within
	0.01 px, detector and landmarker scores within 1e-4, the start of the normed embedding within 1e-5 (the file
	keeps 4 decimals for coordinates and 6 for scores and embeddings)."""
	config = RunConfig(models_path=str(KIT_MODELS), face_detector_model='yunet')
	analyser = FaceAnalyser(config, InferenceManager(config))
	expected_all: Dict[str, List[dict]] = json.loads((KIT_OUTPUTS / 'faces.json').read_text())
	assert sorted(expected_all) == ['biden.png', 'obama.png', 'obama_and_biden.png']
	for name, expected_faces in expected_all.items():
		frame = cv2.imread(str(KIT_TARGETS / name))
		faces = analyser.get_many_faces(frame)
		analyser.ensure_embeddings(frame, faces)
		assert len(faces) == len(expected_faces), name
		for index, (face, expected) in enumerate(zip(faces, expected_faces)):
			where = name + ' face ' + str(index)
			np.testing.assert_allclose(face.bounding_box, expected['bounding_box'], rtol=0, atol=0.01, err_msg=where)
			assert abs(face.score_set.detector - expected['score_detector']) <= 1e-4, where
			assert abs(face.score_set.landmarker - expected['score_landmarker']) <= 1e-4, where
			for kind in ('5', '5/68', '68', '68/5'):
				expected_points = expected['landmark_' + kind.replace('/', '_')]
				np.testing.assert_allclose(face.landmark_set.get(kind), expected_points, rtol=0, atol=0.01, err_msg=where + ' ' + kind)
			np.testing.assert_allclose(face.embedding_norm[:8], expected['embedding_norm_first8'], rtol=0, atol=1e-5, err_msg=where)


# ---------------------------------------------------------------- the clip


def ffmpeg_raw(arguments: Sequence[str], input_bytes: bytes = b'') -> np.ndarray:
	command = [find_ffmpeg(), '-v', 'error', '-nostdin', *arguments, '-f', 'rawvideo', '-']
	if input_bytes:
		command.remove('-nostdin')
	result = subprocess.run(command, input=input_bytes or None, capture_output=True, check=True)
	return np.frombuffer(result.stdout, dtype=np.uint8)


def yuv420_planes(data: np.ndarray) -> List[np.ndarray]:
	"""Y (N×H×W), U and V (N×H/2×W/2) of raw yuv420p frames of the clip's size."""
	width, height = CLIP_SIZE
	frames = data.reshape(CLIP_FRAMES, -1)
	luma = width * height
	return [
		frames[:, :luma].reshape(CLIP_FRAMES, height, width),
		frames[:, luma:luma * 5 // 4].reshape(CLIP_FRAMES, height // 2, width // 2),
		frames[:, luma * 5 // 4:].reshape(CLIP_FRAMES, height // 2, width // 2)
	]


def read_yuv420_planes(path: Path) -> List[np.ndarray]:
	"""The stored planes of a yuv420p video, decoded without any colour conversion."""
	return yuv420_planes(ffmpeg_raw(['-i', str(path), '-pix_fmt', 'yuv420p']))


def run_clip(run_cli: CliRunner, kit_models: Path, output: Path, *options: str) -> None:
	run_engine(
		run_cli, kit_models, output, *CLIP_OPTIONS, *CONFORMANCE_VIDEO_OPTIONS, *options,
		'-s', str(DATA_DIR / 'obama.jpg'), '-t', str(KIT_OUTPUTS / 'clip.mp4')
	)


def test_clip_frames_within_colour_conversion_noise(run_cli: CliRunner, kit_models: Path, tmp_path: Path) -> None:
	"""The clip with the kit's options in the conformance setting, compared frame by frame in the stored Y, U and V
	planes (both outputs are yuv420p, lossless H.264, so decoding them converts nothing).

	3.5.0 turned its PNG frames into yuv420p with swscale's default, inexact conversion; this engine converts
	exactly. That noise, measured on the untouched background (73 % of the pixels: 8 px or more from any luma 3.5.0
	changed), is in the chroma only, where the two conversions filter the 2×2 subsampling differently: Y not at
	all; U and V 13 % of the samples off by 1, about a thousand by 2, 70 by 3 and 13 by 4 (at the photo's sharp
	colour edges), which after an exact decode to BGR is up to 8 levels on a handful of pixels. So: luma exact on
	the background, chroma within 4 everywhere, and the faces tighter in luma (within 1); the next test removes the
	conversion noise and holds every sample, faces included, within 1."""
	output = tmp_path / 'clip.mp4'
	run_clip(run_cli, kit_models, output)
	expected = read_yuv420_planes(KIT_OUTPUTS / 'clip_swap_inswapper_128.mp4')
	actual = read_yuv420_planes(output)
	source = ffmpeg_raw(['-i', str(KIT_OUTPUTS / 'clip.mp4'), '-pix_fmt', 'yuv444p']).reshape(CLIP_FRAMES, 3, CLIP_SIZE[1], CLIP_SIZE[0])
	changed = expected[0] != source[:, 0]
	near_change = np.stack([cv2.dilate(frame.astype(np.uint8), np.ones((17, 17), np.uint8)) > 0 for frame in changed])
	background = ~near_change
	assert background.mean() > 0.6
	differences = [np.abs(expected_plane.astype(np.int16) - actual_plane) for expected_plane, actual_plane in zip(expected, actual)]
	for frame_index in range(CLIP_FRAMES):
		where = 'frame ' + str(frame_index)
		luma_difference, u_difference, v_difference = (difference[frame_index] for difference in differences)
		assert luma_difference[background[frame_index]].max() == 0, where
		assert luma_difference.max() <= 1, where
		assert u_difference.max() <= 4 and v_difference.max() <= 4, where
	print('clip: worst Y ' + str(int(differences[0].max())) + ', U ' + str(int(differences[1].max())) + ', V ' + str(int(differences[2].max())))


def test_clip_within_one_level_through_3_5_0_conversion(run_cli: CliRunner, kit_models: Path, tmp_path: Path) -> None:
	"""The same run with a lossless RGB output (libx264rgb at quality 100), then put through the conversion 3.5.0
	used on its frames (swscale's defaults, bicubic, rgb24 -> yuv420p): every pixel of every frame, faces
	included, within one level of 3.5.0's Y, U and V. So what the previous test allows is conversion noise only."""
	output = tmp_path / 'clip_rgb.mp4'
	run_clip(run_cli, kit_models, output, '--output-video-encoder', 'libx264rgb')
	rgb = ffmpeg_raw(['-i', str(output), '-pix_fmt', 'rgb24'])
	assert rgb.size == CLIP_FRAMES * CLIP_SIZE[0] * CLIP_SIZE[1] * 3
	size = str(CLIP_SIZE[0]) + 'x' + str(CLIP_SIZE[1])
	converted = yuv420_planes(ffmpeg_raw(['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', size, '-i', '-', '-sws_flags', 'bicubic', '-pix_fmt', 'yuv420p'], rgb.tobytes()))
	expected = read_yuv420_planes(KIT_OUTPUTS / 'clip_swap_inswapper_128.mp4')
	for name, expected_plane, actual_plane in zip('YUV', expected, converted):
		difference = np.abs(expected_plane.astype(np.int16) - actual_plane)
		worst_frame = int(difference.reshape(CLIP_FRAMES, -1).max(axis=1).argmax())
		print('clip through the conversion of 3.5.0, ' + name + ': worst ' + str(int(difference.max())) + ', ' + str(int((difference > 0).sum())) + ' samples differ')
		assert difference.max() <= 1, name + ' plane, frame ' + str(worst_frame)
