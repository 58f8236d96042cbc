"""The NSFW safeguard with stand-in classifiers whose verdicts are known: safe, flagged, or flagged on bright frames."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Sequence

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facefusion.config import RunConfig
from facefusion.content_analyser import NSFW_MODELS, ContentAnalyser, StreamedVideoCheck, letterbox_frame, prepare_batch, prepare_frame
from facefusion.errors import InputError
from facefusion.inference.manager import InferenceManager
from facefusion.types import VisionFrame

# each stand-in computes s = max over its whole (normalised) input and outputs logits = s * scale + offset
# (nsfw_1 broadcasts that to every cell of [1, 9, 8400]); the modes below fix scale and offset
MODEL_SIGNATURES = {
	'nsfw_1': (640, [1, 9, 8400]),
	'nsfw_2': (384, [1, 2]),
	'nsfw_3': (448, [1, 4]),
}
MODES = {
	# nothing over any threshold
	'safe': {'nsfw_1': (0.0, 0.0), 'nsfw_2': ([0, 0], [0, 1]), 'nsfw_3': ([0, 0, 0, 0], [0, 0, 0, 0])},
	# class score 0.9 > 0.2; logit lead 1 > 0.25; (6 + 6) - 0 = 12 > 10.5
	'flagged': {'nsfw_1': (0.0, 0.9), 'nsfw_2': ([0, 0], [1, 0]), 'nsfw_3': ([0, 0, 0, 0], [0, 0, 6, 6])},
	# over the thresholds only when the frame has bright pixels (gray 200 flagged, gray 40 not, black padding not)
	'bright': {'nsfw_1': (1.0, -0.4), 'nsfw_2': ([1, 0], [0, 0]), 'nsfw_3': ([0, 0, 10, 10], [0, 0, 0, 0])},
}
BRIGHT = 200
DARK = 40


class NamedFileInference(InferenceManager):
	"""The real manager, with `<models_path>/<name>.onnx` as each model's file (so these tests need no registry)."""

	def model_file(self, model_name: str) -> Path:
		return Path(self.config.models_path) / (model_name + '.onnx')


def write_nsfw_model(path: Path, name: str, mode: str) -> None:
	size, output_shape = MODEL_SIGNATURES[name]
	scale, offset = MODES[mode][name]
	width = output_shape[1] if name != 'nsfw_1' else 1
	initializers = [
		numpy_helper.from_array(np.array(scale, dtype=np.float32).reshape(1, width), 'scale'),
		numpy_helper.from_array(np.array(offset, dtype=np.float32).reshape(1, width), 'offset'),
		numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), 'flat_shape'),
	]
	nodes = [
		helper.make_node('ReduceMax', ['input'], ['peak'], axes=[1, 2, 3], keepdims=1),
		helper.make_node('Reshape', ['peak', 'flat_shape'], ['flat']),
		helper.make_node('Mul', ['flat', 'scale'], ['scaled']),
		helper.make_node('Add', ['scaled', 'offset'], ['logits'] if name != 'nsfw_1' else ['score']),
	]
	if name == 'nsfw_1':
		initializers.append(numpy_helper.from_array(np.array([-1, 1, 1], dtype=np.int64), 'cell_shape'))
		initializers.append(numpy_helper.from_array(np.array(output_shape, dtype=np.int64), 'grid_shape'))
		nodes.append(helper.make_node('Reshape', ['score', 'cell_shape'], ['cell']))
		nodes.append(helper.make_node('Expand', ['cell', 'grid_shape'], ['logits']))
	graph = helper.make_graph(
		nodes,
		name,
		[helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, size, size])],
		[helper.make_tensor_value_info('logits', TensorProto.FLOAT, output_shape)],
		initializers
	)
	model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
	model.ir_version = 8
	onnx.checker.check_model(model)
	onnx.save(model, str(path))


def make_analyser(directory: Path, modes: Dict[str, str]) -> ContentAnalyser:
	directory.mkdir(parents=True, exist_ok=True)
	for name, mode in modes.items():
		write_nsfw_model(directory / (name + '.onnx'), name, mode)
	return ContentAnalyser(NamedFileInference(RunConfig(models_path=str(directory))))


def gray_frame(level: int, width: int = 160, height: int = 120) -> VisionFrame:
	return np.full((height, width, 3), level, dtype=np.uint8)


def test_required_models() -> None:
	# the safeguard cannot be switched off: every config needs all three
	assert ContentAnalyser.required_models(RunConfig()) == ['nsfw_1', 'nsfw_2', 'nsfw_3']
	assert ContentAnalyser.required_models(RunConfig(processors=['face_debugger'])) == ['nsfw_1', 'nsfw_2', 'nsfw_3']


def test_letterbox_is_centred_contain_with_zero_padding() -> None:
	frame = np.full((50, 100, 3), 255, dtype=np.uint8)
	canvas = letterbox_frame(frame, 640)
	assert canvas.shape == (640, 640, 3)
	# 100 x 50 scaled by 6.4 -> 640 x 320, centred: rows 160..479
	assert canvas[:160].max() == 0 and canvas[480:].max() == 0
	assert canvas[160:480].min() == 255
	tall = letterbox_frame(np.full((200, 50, 3), 255, dtype=np.uint8), 384)
	# 50 x 200 scaled by 1.92 -> 96 x 384, columns 144..239
	assert tall[:, :144].max() == 0 and tall[:, 240:].max() == 0 and tall[:, 144:240].min() == 255


def test_prepare_frame_is_rgb_scaled_and_normalised() -> None:
	frame = np.zeros((100, 200, 3), dtype=np.uint8)
	frame[:, :, 0] = 255  # pure blue in BGR
	prepared = prepare_frame(frame, 384, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
	assert prepared.shape == (3, 384, 384) and prepared.dtype == np.float32
	# content rows 96..287; RGB order puts blue in channel 2; (x / 255 - 0.5) / 0.5
	assert prepared[2, 192, 192] == pytest.approx(1.0)
	assert prepared[0, 192, 192] == pytest.approx(-1.0)
	assert prepared[2, 10, 192] == pytest.approx(-1.0)
	clip_mean = (0.48145466, 0.4578275, 0.40821073)
	clip_std = (0.26862954, 0.26130258, 0.27577711)
	clip = prepare_frame(gray_frame(BRIGHT), 448, clip_mean, clip_std)
	for channel in range(3):
		assert clip[channel, 224, 224] == pytest.approx((BRIGHT / 255 - clip_mean[channel]) / clip_std[channel], abs=1e-5)


def test_prepared_inputs_equal_the_float_arithmetic_bit_for_bit() -> None:
	"""The table lookup must give exactly (RGB / 255 - mean) / std in float32, as 3.5.0 computes it on the whole frame,
	for every model's constants, in a single frame and in a batch."""
	generator = np.random.default_rng(7)
	frames = [generator.integers(0, 256, (360, 640, 3), dtype=np.uint8), generator.integers(0, 256, (500, 300, 3), dtype=np.uint8)]
	for model in NSFW_MODELS:
		expected = []
		for frame in frames:
			rgb = letterbox_frame(frame, model.size)[:, :, ::-1].astype(np.float32) / 255
			normalised = (rgb - np.asarray(model.mean, dtype=np.float32)) / np.asarray(model.std, dtype=np.float32)
			expected.append(normalised.transpose(2, 0, 1))
		for frame, reference in zip(frames, expected):
			assert np.array_equal(prepare_frame(frame, model.size, model.mean, model.std), reference)
		assert np.array_equal(prepare_batch(frames, model.size, model.mean, model.std), np.stack(expected))


def test_safe_models_pass_and_flagged_models_refuse(tmp_path: Path) -> None:
	safe = make_analyser(tmp_path / 'safe', {name: 'safe' for name in MODEL_SIGNATURES})
	assert safe.analyse_frame(gray_frame(BRIGHT)) is False
	assert safe.analyse_frame(gray_frame(DARK)) is False
	flagged = make_analyser(tmp_path / 'flagged', {name: 'flagged' for name in MODEL_SIGNATURES})
	assert flagged.analyse_frame(gray_frame(DARK)) is True


@pytest.mark.parametrize('flagged_names', [
	['nsfw_1'], ['nsfw_2'], ['nsfw_3'], ['nsfw_1', 'nsfw_2'], ['nsfw_1', 'nsfw_3'], ['nsfw_2', 'nsfw_3']
])
def test_two_of_three_votes(tmp_path: Path, flagged_names: List[str]) -> None:
	modes = {name: 'flagged' if name in flagged_names else 'safe' for name in MODEL_SIGNATURES}
	analyser = make_analyser(tmp_path, modes)
	assert analyser.analyse_frame(gray_frame(128)) is (len(flagged_names) >= 2)


def test_bright_stand_ins_judge_each_frame(tmp_path: Path) -> None:
	analyser = make_analyser(tmp_path, {name: 'bright' for name in MODEL_SIGNATURES})
	assert analyser.analyse_frames([gray_frame(BRIGHT), gray_frame(DARK), gray_frame(BRIGHT, 50, 300)]) == [True, False, True]


def write_clip(path: Path, levels: Sequence[int], fps: float = 10.0) -> None:
	writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, (64, 48))
	assert writer.isOpened()
	for level in levels:
		writer.write(gray_frame(level, 64, 48))
	writer.release()


class RecordingAnalyser(ContentAnalyser):
	"""Records the mean gray level of every frame the models are run on."""

	def __init__(self, analyser: ContentAnalyser) -> None:
		super().__init__(analyser.inference)
		self.seen: List[float] = []

	def analyse_frames(self, frames: Sequence[VisionFrame]) -> List[bool]:
		self.seen.extend(float(frame.mean()) for frame in frames)
		return super().analyse_frames(frames)


def distinct_levels(count: int) -> List[int]:
	return [10 + index * 6 for index in range(count)]


def test_video_samples_one_frame_per_second(tmp_path: Path) -> None:
	levels = distinct_levels(35)
	clip_path = tmp_path / 'clip.avi'
	write_clip(clip_path, levels, fps=10)
	analyser = RecordingAnalyser(make_analyser(tmp_path / 'models', {name: 'safe' for name in MODEL_SIGNATURES}))
	assert analyser.analyse_video(clip_path, None, None, 10) is False
	# frames 0, 10, 20, 30 of 35, read in order, each the right one
	assert len(analyser.seen) == 4
	np.testing.assert_allclose(analyser.seen, [levels[0], levels[10], levels[20], levels[30]], atol=2.5)
	analyser.seen.clear()
	assert analyser.analyse_video(clip_path, 5, 25, 10) is False
	np.testing.assert_allclose(analyser.seen, [levels[10], levels[20]], atol=2.5)
	analyser.seen.clear()
	# the fps decides the step (int(fps)); None reads it from the file
	assert analyser.analyse_video(clip_path, 0, 30, 5.9) is False
	np.testing.assert_allclose(analyser.seen, [levels[index] for index in range(0, 30, 5)], atol=2.5)
	analyser.seen.clear()
	assert analyser.analyse_video(clip_path) is False
	assert len(analyser.seen) == 4
	analyser.seen.clear()
	# cached per (path, start, end, fps)
	assert analyser.analyse_video(clip_path, 5, 25, 10) is False
	assert analyser.seen == []


def test_video_refused_above_ten_percent(tmp_path: Path) -> None:
	analyser = make_analyser(tmp_path / 'models', {name: 'bright' for name in MODEL_SIGNATURES})
	dark_path = tmp_path / 'dark.avi'
	write_clip(dark_path, [DARK] * 40)
	assert analyser.analyse_video(dark_path, None, None, 10) is False
	# one bright second in four: sample 10 of 0, 10, 20, 30 -> 25 % > 10 %
	mixed_path = tmp_path / 'mixed.avi'
	write_clip(mixed_path, [BRIGHT if 10 <= index < 20 else DARK for index in range(40)])
	assert analyser.analyse_video(mixed_path, None, None, 10) is True
	# bright frames 10..12 lie between the samples 0, 7, 14, 21, 28, 35 of step 7
	brief_path = tmp_path / 'brief.avi'
	write_clip(brief_path, [BRIGHT if 10 <= index < 13 else DARK for index in range(40)])
	assert analyser.analyse_video(brief_path, None, None, 7) is False
	# trimming the bright second away passes the video
	assert analyser.analyse_video(mixed_path, 20, 40, 10) is False


def test_video_rate_of_exactly_ten_percent_passes(tmp_path: Path) -> None:
	# 100 frames at step 10: samples 0..90 (10 samples); one bright sample -> 10 %, not above it
	analyser = make_analyser(tmp_path / 'models', {name: 'bright' for name in MODEL_SIGNATURES})
	clip_path = tmp_path / 'ten.avi'
	write_clip(clip_path, [BRIGHT if index == 50 else DARK for index in range(100)])
	assert analyser.analyse_video(clip_path, None, None, 10) is False
	two_path = tmp_path / 'eleven.avi'
	write_clip(two_path, [BRIGHT if index in (50, 60) else DARK for index in range(100)])
	assert analyser.analyse_video(two_path, None, None, 10) is True


def streamed_verdict(analyser: ContentAnalyser, clip_path: Path, start: int, end: int, fps: float) -> bool:
	"""The verdict of a check fed every frame of [start, end) by the engine's own reader, as the video pipeline does."""
	from facefusion.video.io import VideoReader
	check = StreamedVideoCheck(analyser, clip_path, start, end, fps)
	for frame in VideoReader(str(clip_path), trim_start=start, trim_end=end):
		check.offer(frame.index, frame.pixels)
	return check.verdict()


@pytest.mark.parametrize('name, bright, start, end, fps', [
	('dark', [], 0, 40, 10),
	('mixed', range(10, 20), 0, 40, 10),
	('mixed', range(10, 20), 20, 40, 10),
	('mixed', range(10, 20), 5, 33, 7.5),
	('ten', [50], 0, 100, 10),
	('eleven', [50, 60], 0, 100, 10),
])
def test_streamed_check_samples_and_judges_as_the_scan(tmp_path: Path, name: str, bright: Sequence[int], start: int, end: int, fps: float) -> None:
	"""Fed the pipeline's frames, the check analyses the very frames analyse_video reads and reaches its verdict."""
	frame_count = 100 if name in ('ten', 'eleven') else 40
	clip_path = tmp_path / (name + '.avi')
	write_clip(clip_path, [BRIGHT if index in bright else DARK + index for index in range(frame_count)])
	models = make_analyser(tmp_path / 'models', {model: 'bright' for model in MODEL_SIGNATURES})
	scanning, streaming = RecordingAnalyser(models), RecordingAnalyser(models)
	expected = scanning.analyse_video(clip_path, start, end, fps)
	assert streamed_verdict(streaming, clip_path, start, end, fps) is expected
	np.testing.assert_allclose(streaming.seen, scanning.seen, atol=2.5)
	# the verdict is remembered as analyse_video's own
	assert streaming.video_results[(str(clip_path), start, end, fps)] is expected
	assert streaming.knows_video(clip_path) and not streaming.knows_video(tmp_path / 'other.avi')


def test_streamed_check_knows_a_refusal_early(tmp_path: Path) -> None:
	"""Every sample flagged: after the first batch the refusal is certain (4 of 10 planned > 10 %), and the samples
	offered after that are not analysed."""
	clip_path = tmp_path / 'bright.avi'
	write_clip(clip_path, [BRIGHT] * 100)
	analyser = RecordingAnalyser(make_analyser(tmp_path / 'models', {model: 'bright' for model in MODEL_SIGNATURES}))
	check = StreamedVideoCheck(analyser, clip_path, 0, 100, 10)
	from facefusion.video.io import VideoReader
	frames = list(VideoReader(str(clip_path)))
	for frame in frames[:40]:
		check.offer(frame.index, frame.pixels)
	deadline = time.monotonic() + 30
	while not check.refused_early and time.monotonic() < deadline:
		time.sleep(0.01)
	assert check.refused_early
	for frame in frames[40:]:
		check.offer(frame.index, frame.pixels)
	assert check.verdict() is True
	assert len(analyser.seen) == 4


def test_streamed_check_judges_the_last_sample_before_the_stream_ends(tmp_path: Path) -> None:
	"""The range's last sample is judged as soon as it is offered, not after the last frame: 6 samples in frames
	[0, 60) at 10 fps (a batch of 4, then 2), the frames after frame 50 not yet offered and the check not closed."""
	analyser = RecordingAnalyser(make_analyser(tmp_path / 'models', {model: 'safe' for model in MODEL_SIGNATURES}))
	check = StreamedVideoCheck(analyser, tmp_path / 'clip.avi', 0, 60, 10)
	for index in range(51):
		check.offer(index, gray_frame(DARK + index))
	deadline = time.monotonic() + 30
	while check.tally.analysed < 6 and time.monotonic() < deadline:
		time.sleep(0.01)
	assert check.tally.analysed == 6 and not check.closed
	for index in range(51, 60):
		check.offer(index, gray_frame(DARK + index))
	assert check.verdict() is False
	assert len(analyser.seen) == 6


class SlowAnalyser(RecordingAnalyser):
	"""Models slower than the frames come, or models that fail: what the pipeline's side of a streamed check sees."""

	def __init__(self, analyser: ContentAnalyser, fail: bool = False) -> None:
		super().__init__(analyser)
		self.fail = fail

	def analyse_frames(self, frames: Sequence[VisionFrame]) -> List[bool]:
		time.sleep(0.02)
		if self.fail:
			raise RuntimeError('model failed')
		return super().analyse_frames(frames)


@pytest.mark.parametrize('fail', [False, True])
def test_streamed_check_holds_back_a_faster_pipeline_and_never_blocks_it_for_good(tmp_path: Path, fail: bool) -> None:
	"""A check slower than the pipeline holds at most a few batches of frames (the pipeline waits), every sample is
	still analysed; models that fail do not leave the pipeline waiting: the failure comes with the verdict."""
	from facefusion.content_analyser import QUEUED_BATCHES, VIDEO_BATCH_SIZE
	analyser = SlowAnalyser(make_analyser(tmp_path / 'models', {model: 'safe' for model in MODEL_SIGNATURES}), fail)
	check = StreamedVideoCheck(analyser, tmp_path / 'clip.avi', 0, 60, 1)
	held = 0
	for index in range(60):
		check.offer(index, gray_frame(DARK + index))
		held = max(held, check.batches.qsize())
	assert held <= QUEUED_BATCHES
	if fail:
		with pytest.raises(RuntimeError, match='model failed'):
			check.verdict()
		return
	assert check.verdict() is False
	assert len(analyser.seen) == 60 and VIDEO_BATCH_SIZE * QUEUED_BATCHES < 60


def test_unreadable_video_is_an_input_error(tmp_path: Path) -> None:
	analyser = make_analyser(tmp_path / 'models', {name: 'safe' for name in MODEL_SIGNATURES})
	with pytest.raises(InputError):
		analyser.analyse_video(tmp_path / 'missing.mp4', None, None, 25)


def test_project_stand_ins_through_the_registry(tmp_path: Path) -> None:
	"""The project's stand-in files under their registry names, loaded by the unmodified manager."""
	from facefusion.testing.standin_models import write_standin_models
	model_names = ContentAnalyser.required_models(RunConfig())
	write_standin_models(tmp_path / 'safe', model_names)
	write_standin_models(tmp_path / 'flagged', model_names, nsfw_flagged=True)
	safe = ContentAnalyser(InferenceManager(RunConfig(models_path=str(tmp_path / 'safe'))))
	flagged = ContentAnalyser(InferenceManager(RunConfig(models_path=str(tmp_path / 'flagged'))))
	frame = cv2.imread(str(Path(__file__).resolve().parent / 'data' / 'obama.jpg'))
	assert safe.analyse_frame(frame) is False
	assert flagged.analyse_frame(frame) is True
