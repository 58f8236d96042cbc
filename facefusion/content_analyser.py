"""The NSFW safeguard: three independent classifiers vote on a frame; images and videos that they flag are refused.

Same models, preprocessing and thresholds as FaceFusion 3.5.0: a frame is NSFW when at least two of nsfw_1, nsfw_2 and
nsfw_3 say so, and a video is refused when more than 10 % of its frames sampled about once per second are NSFW. There is
deliberately no switch to turn this off.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from facefusion.config import RunConfig
from facefusion.errors import InputError
from facefusion.inference.manager import InferenceManager
from facefusion.logger import get_logger
from facefusion.types import VisionFrame

NSFW_VOTES_REQUIRED = 2
VIDEO_RATE_LIMIT = 10.0
# sampled video frames go through the models in small batches: fewer calls, bounded memory (640² float32 each)
VIDEO_BATCH_SIZE = 4
# sampled batches a streamed check holds while its models catch up (then the pipeline waits for them)
QUEUED_BATCHES = 2


def detect_nsfw_1(output: np.ndarray) -> bool:
	"""YOLO-style [4 + C, N] candidates: flagged when any candidate's best class score exceeds 0.2."""
	class_scores = output[4:]
	return bool(class_scores.size and float(np.max(class_scores)) > 0.2)


def detect_nsfw_2(output: np.ndarray) -> bool:
	"""Two logits (nsfw, safe): flagged when the nsfw logit leads by more than 0.25."""
	logits = np.ravel(output)
	return bool(float(logits[0]) - float(logits[1]) > 0.25)


def detect_nsfw_3(output: np.ndarray) -> bool:
	"""At least four logits: flagged when the two explicit classes lead the two safe ones by more than 10.5."""
	logits = np.ravel(output)
	return bool(float(logits[2] + logits[3]) - float(logits[0] + logits[1]) > 10.5)


@dataclass(frozen=True)
class NsfwModel:
	name: str
	size: int
	mean: Tuple[float, float, float]
	std: Tuple[float, float, float]
	detect: Callable[[np.ndarray], bool]


NSFW_MODELS: List[NsfwModel] = [
	NsfwModel('nsfw_1', 640, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), detect_nsfw_1),
	NsfwModel('nsfw_2', 384, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), detect_nsfw_2),
	NsfwModel('nsfw_3', 448, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711), detect_nsfw_3),
]


def letterbox_frame(frame: VisionFrame, size: int) -> VisionFrame:
	"""Fit the whole frame into size x size keeping its aspect, centred on black: nothing is cropped away, so
	content at the edges is still seen."""
	height, width = frame.shape[:2]
	scale = min(size / width, size / height)
	new_width = min(size, max(1, int(round(width * scale))))
	new_height = min(size, max(1, int(round(height * scale))))
	interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
	resized = cv2.resize(frame, (new_width, new_height), interpolation=interpolation)
	canvas = np.zeros((size, size, 3), dtype=np.uint8)
	top = (size - new_height) // 2
	left = (size - new_width) // 2
	canvas[top:top + new_height, left:left + new_width] = resized
	return canvas


@functools.lru_cache(maxsize=None)
def channel_tables(mean: Tuple[float, ...], std: Tuple[float, ...]) -> np.ndarray:
	"""(3, 256) float32: what (value / 255 - mean) / std gives for every byte value, per RGB channel, through the
	same float32 steps as the arithmetic on a whole frame, so a table lookup equals it bit for bit."""
	values = np.arange(256, dtype=np.float32) / 255
	tables = (values[None, :] - np.asarray(mean, dtype=np.float32)[:, None]) / np.asarray(std, dtype=np.float32)[:, None]
	return np.ascontiguousarray(tables, dtype=np.float32)


def prepare_frame(frame: VisionFrame, size: int, mean: Sequence[float], std: Sequence[float], out: Optional[np.ndarray] = None) -> np.ndarray:
	"""BGR frame to one model's 3 x size x size float32 input: letterbox, RGB, /255, mean/std; into out when given.

	One table lookup per byte instead of four float32 passes over the frame and a transposing copy (a 640² input:
	0.6 ms against 9.7 on one of these cores)."""
	canvas = letterbox_frame(frame, size)
	tables = channel_tables(tuple(float(value) for value in mean), tuple(float(value) for value in std))
	prepared = out if out is not None else np.empty((3, size, size), dtype=np.float32)
	# BGR planes in, RGB planes out: the frame's last plane is the model's first channel
	for channel, plane in enumerate(reversed(cv2.split(canvas))):
		cv2.LUT(plane, tables[channel], dst=prepared[channel])
	return prepared


def prepare_batch(frames: Sequence[VisionFrame], size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
	"""prepare_frame for each frame, written straight into one (N, 3, size, size) batch."""
	batch = np.empty((len(frames), 3, size, size), dtype=np.float32)
	for index, frame in enumerate(frames):
		prepare_frame(frame, size, mean, std, out=batch[index])
	return batch


def sample_step(fps: Optional[float]) -> int:
	"""Every step-th frame is sampled: int(fps), about one a second (25 when the rate is unknown)."""
	return max(1, int(fps)) if fps and fps > 0 else 25


@dataclass
class VideoTally:
	"""The sampled frames of one video counted towards its verdict: refused when more than 10 % are positive. With the
	number of planned samples known, the verdict is certain early: more positives than 10 % of all of them exceed 10 %
	of whatever is analysed in the end."""
	planned: Optional[int]
	analysed: int = 0
	positives: int = 0

	def add(self, verdicts: Sequence[bool]) -> None:
		self.analysed += len(verdicts)
		self.positives += sum(bool(verdict) for verdict in verdicts)

	@property
	def refused_early(self) -> bool:
		return bool(self.planned) and self.positives * 100 > VIDEO_RATE_LIMIT * (self.planned or 0)

	def refused(self) -> bool:
		if self.refused_early:
			get_logger().debug('content analyser: video refused early, %d positive frames', self.positives)
			return True
		rate = self.positives / self.analysed * 100 if self.analysed else 0.0
		get_logger().debug('content analyser: %d of %d sampled frames positive (%.1f %%)', self.positives, self.analysed, rate)
		return rate > VIDEO_RATE_LIMIT


class ContentAnalyser:
	def __init__(self, inference: InferenceManager) -> None:
		self.inference = inference
		# results per (video path, start, end, fps), as 3.5.0 caches them
		self.video_results: Dict[Tuple[str, Optional[int], Optional[int], Optional[float]], bool] = {}

	def knows_video(self, video_path: Union[str, Path]) -> bool:
		"""Whether a verdict on some range of this video is remembered already (a batch-run's repeat, the UI)."""
		return any(key[0] == str(video_path) for key in self.video_results)

	@staticmethod
	def required_models(config: RunConfig) -> List[str]:
		"""All three classifiers, whatever the config: the safeguard cannot be switched off."""
		return [model.name for model in NSFW_MODELS]

	def analyse_frame(self, frame: VisionFrame) -> bool:
		return self.analyse_frames([frame])[0]

	def analyse_frames(self, frames: Sequence[VisionFrame]) -> List[bool]:
		"""Every model sees every frame (one batched call per model); a frame is NSFW on two votes of three."""
		if not frames:
			return []
		votes = np.zeros(len(frames), dtype=np.int32)
		for model in NSFW_MODELS:
			model_session = self.inference.get(model.name)
			size = model_input_size(model_session.input_shapes, model.size)
			batch = prepare_batch(frames, size, model.mean, model.std)
			outputs = model_session.run_batch({model_session.input_names[0]: batch})[0]
			votes += np.array([model.detect(outputs[index]) for index in range(len(frames))], dtype=np.int32)
		return [bool(count >= NSFW_VOTES_REQUIRED) for count in votes]

	def analyse_video(
		self,
		video_path: Union[str, Path],
		trim_frame_start: Optional[int] = None,
		trim_frame_end: Optional[int] = None,
		fps: Optional[float] = None
	) -> bool:
		"""True when more than 10 % of the frames numbered n (start <= n < end, n a multiple of int(fps)) are NSFW.
		Frames are decoded in order, once each, with a single seek to the trim start: seeking per sample would
		re-decode from the previous keyframe every time."""
		key = (str(video_path), trim_frame_start, trim_frame_end, fps)
		if key in self.video_results:
			return self.video_results[key]
		capture = cv2.VideoCapture(str(video_path))
		if not capture.isOpened():
			raise InputError('cannot open video ' + str(video_path))
		try:
			result = self.scan_capture(capture, trim_frame_start, trim_frame_end, fps)
		finally:
			capture.release()
		self.video_results[key] = result
		return result

	def scan_capture(
		self,
		capture: cv2.VideoCapture,
		trim_frame_start: Optional[int],
		trim_frame_end: Optional[int],
		fps: Optional[float]
	) -> bool:
		step = sample_step(fps if fps and fps > 0 else capture.get(cv2.CAP_PROP_FPS))
		frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
		start = max(0, trim_frame_start or 0)
		end: Optional[int] = trim_frame_end
		if end is None and frame_count > 0:
			end = frame_count
		tally = VideoTally(planned_samples(start, end, step))
		if start > 0:
			capture.set(cv2.CAP_PROP_POS_FRAMES, start)
		frame_number = start
		pending: List[VisionFrame] = []
		while end is None or frame_number < end:
			if frame_number % step == 0:
				has_frame, frame = capture.read()
				if not has_frame:
					break
				pending.append(frame)
			elif not capture.grab():
				break
			frame_number += 1
			if len(pending) == VIDEO_BATCH_SIZE:
				tally.add(self.analyse_frames(pending))
				pending = []
				if tally.refused_early:
					return tally.refused()
		if pending:
			tally.add(self.analyse_frames(pending))
		return tally.refused()


def planned_samples(start: int, end: Optional[int], step: int) -> Optional[int]:
	"""How many frames of [start, end) are sampled (numbers that are multiples of step); None for an unknown end."""
	return len(range(start + (-start) % step, end, step)) if end is not None else None


class StreamedVideoCheck:
	"""A video's verdict from frames decoded anyway: a pipeline offers every frame it decodes, and the sampled ones
	(n mod int(fps) == 0 in [start, end), as analyse_video samples them) are analysed in batches in a thread of their
	own while the pipeline goes on. The video is then read once instead of twice, and the first frame is not held
	back until a whole scan of the video is done; FaceFusion 3.8 also takes the check's frames from its reader.

	refused_early turns true as soon as the verdict is certain, so that the run can stop; verdict() waits for the last
	batch and caches the result like analyse_video."""

	def __init__(self, analyser: ContentAnalyser, video_path: Union[str, Path], trim_frame_start: int, trim_frame_end: int, fps: Optional[float]) -> None:
		import queue
		import threading
		self.analyser = analyser
		self.key = (str(video_path), trim_frame_start, trim_frame_end, fps)
		self.start = trim_frame_start
		self.end = trim_frame_end
		self.step = sample_step(fps)
		self.tally = VideoTally(planned_samples(trim_frame_start, trim_frame_end, self.step))
		self.pending: List[VisionFrame] = []
		# bounded: a check slower than the pipeline holds the pipeline back instead of piling up decoded frames
		self.batches: 'queue.Queue[Optional[List[VisionFrame]]]' = queue.Queue(maxsize=QUEUED_BATCHES)
		self.failure: Optional[BaseException] = None
		self.closed = False
		self.abandoned = False
		self.thread = threading.Thread(target=self.analyse_batches, name='content-check', daemon=True)
		self.thread.start()

	def offer(self, frame_index: int, frame: VisionFrame) -> None:
		"""Called for each decoded frame, in order (a device frame is copied to the host only when sampled)."""
		if self.closed or frame_index % self.step != 0 or not self.start <= frame_index < self.end:
			return
		from facefusion.gpu.device import to_host
		self.pending.append(to_host(frame))
		# the range's last sample goes at once: a part batch left for close() would be judged after the last frame,
		# in the run's tail
		last_sample = self.end is not None and frame_index + self.step >= self.end
		if len(self.pending) == VIDEO_BATCH_SIZE or last_sample:
			self.batches.put(self.pending)
			self.pending = []

	@property
	def refused_early(self) -> bool:
		return self.tally.refused_early

	def analyse_batches(self) -> None:
		# the queue is drained to its end whatever happens, so that offer() never waits on a thread that is gone
		while True:
			batch = self.batches.get()
			if batch is None:
				return
			if self.abandoned or self.failure is not None or self.tally.refused_early:
				continue
			try:
				self.tally.add(self.analyser.analyse_frames(batch))
			except BaseException as exception:
				self.failure = exception

	def close(self) -> None:
		"""No more frames: the thread finishes what it was given and ends."""
		if not self.closed:
			self.closed = True
			if self.pending:
				self.batches.put(self.pending)
				self.pending = []
			self.batches.put(None)

	def stop(self) -> None:
		"""The run failed: the batches still queued are dropped, and the thread is waited for (a model call still
		running when the interpreter exits would abort it)."""
		self.abandoned = True
		self.close()
		self.thread.join()

	def verdict(self) -> bool:
		"""True when the video is refused; call once every frame of the range was offered."""
		self.close()
		self.thread.join()
		if self.failure is not None:
			raise self.failure
		result = self.tally.refused()
		self.analyser.video_results[self.key] = result
		return result


def model_input_size(input_shapes: List[List[object]], fallback: int) -> int:
	"""The square side the model's NCHW input declares; the documented size when it is dynamic."""
	shape = input_shapes[0] if input_shapes else []
	if len(shape) == 4 and isinstance(shape[2], int) and shape[2] > 0:
		return int(shape[2])
	return fallback
