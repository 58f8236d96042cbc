"""The NSFW safeguard: three independent classifiers vote on a frame; images and videos that they flag are refused.

Same models, preprocessing and thresholds as FaceFusion 3.5.0: a frame is NSFW when at least two of nsfw_1, nsfw_2 and
nsfw_3 say so, and a video is refused when more than 10 % of its frames sampled about once per second are NSFW. There is
deliberately no switch to turn this off.
"""
from __future__ import annotations

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


def prepare_frame(frame: VisionFrame, size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
	"""BGR frame to one model's 3 x size x size float32 input: letterbox, RGB, /255, mean/std."""
	canvas = letterbox_frame(frame, size)
	rgb = canvas[:, :, ::-1].astype(np.float32) / 255
	normalised = (rgb - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
	return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)


class ContentAnalyser:
	def __init__(self, inference: InferenceManager) -> None:
		self.inference = inference
		# results per (video path, start, end, fps), as 3.5.0 caches them
		self.video_results: Dict[Tuple[str, Optional[int], Optional[int], Optional[float]], bool] = {}

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
			batch = np.stack([prepare_frame(frame, size, model.mean, model.std) for frame in frames])
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
		video_fps = fps if fps and fps > 0 else capture.get(cv2.CAP_PROP_FPS)
		step = max(1, int(video_fps)) if video_fps and video_fps > 0 else 25
		frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
		start = max(0, trim_frame_start or 0)
		end: Optional[int] = trim_frame_end
		if end is None and frame_count > 0:
			end = frame_count
		# when the range is known the verdict can come early: more positives than 10 % of all planned samples
		# already exceed 10 % of whatever is analysed in the end
		planned = len(range(start + (-start) % step, end, step)) if end is not None else None
		if start > 0:
			capture.set(cv2.CAP_PROP_POS_FRAMES, start)
		frame_number = start
		analysed = 0
		positives = 0
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
				positives += sum(self.analyse_frames(pending))
				analysed += len(pending)
				pending = []
				if planned and positives * 100 > VIDEO_RATE_LIMIT * planned:
					get_logger().debug('content analyser: video refused early, %d positive frames', positives)
					return True
		if pending:
			positives += sum(self.analyse_frames(pending))
			analysed += len(pending)
		rate = positives / analysed * 100 if analysed else 0.0
		get_logger().debug('content analyser: %d of %d sampled frames positive (%.1f %%)', positives, analysed, rate)
		return rate > VIDEO_RATE_LIMIT


def model_input_size(input_shapes: List[List[object]], fallback: int) -> int:
	"""The square side the model's NCHW input declares; the documented size when it is dynamic."""
	shape = input_shapes[0] if input_shapes else []
	if len(shape) == 4 and isinstance(shape[2], int) and shape[2] > 0:
		return int(shape[2])
	return fallback
