"""One frame processed with the current settings (the preview), and the faces of a frame (the reference gallery),
in the UI's own process. Sessions stay loaded between previews; only a change of models or providers reopens them."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

from facefusion.config import RunConfig
from facefusion.errors import InputError

if TYPE_CHECKING:
	from facefusion.inference.manager import InferenceManager
	from facefusion.types import VisionFrame
	from facefusion.workflows.engine import Engine

# what the sessions depend on: a change here reopens them
SESSION_KEYS: Tuple[str, ...] = (
	'models_path', 'execution_providers', 'execution_device_ids', 'execution_thread_count', 'face_swapper_use_trt',
	'face_swapper_trt_max_batch', 'face_swapper_batching', 'face_enhancer_use_trt', 'face_enhancer_trt_max_batch', 'download_providers'
)
GALLERY_CROP_SIZE = 128


def frame_count_of(target_path: Optional[str]) -> int:
	"""Frames of a video target, 1 for an image, 0 for nothing."""
	from facefusion import filesystem
	if not target_path:
		return 0
	if filesystem.media_status(target_path) == 'video':
		from facefusion.video.probe import probe_video
		return max(probe_video(target_path).frame_count, 1)
	return 1


def read_target_frame(target_path: str, frame_number: int) -> 'VisionFrame':
	from facefusion import filesystem, vision
	status = filesystem.media_status(target_path)
	if status == 'video':
		from facefusion.video.io import read_video_frame
		from facefusion.video.probe import probe_video
		info = probe_video(target_path)
		return read_video_frame(info, min(max(int(frame_number), 0), max(info.frame_count - 1, 0)))
	if status == 'image':
		return vision.read_image(target_path)
	raise InputError(f'target is not an image or a video this build reads: {target_path}')


class PreviewEngine:
	def __init__(self) -> None:
		self.lock = threading.Lock()
		self.inference: Optional['InferenceManager'] = None
		self.session_key: Optional[Tuple[Any, ...]] = None
		self.checked_models: set = set()

	def engine(self, config: RunConfig) -> 'Engine':
		from facefusion.content_analyser import ContentAnalyser
		from facefusion.face_analyser import FaceAnalyser
		from facefusion.face_masker import FaceMasker
		from facefusion.inference.manager import InferenceManager
		from facefusion.models.download import ensure_models
		from facefusion.workflows.engine import Engine, collect_required_models

		key = tuple(repr(getattr(config, name)) for name in SESSION_KEYS)
		if key != self.session_key or self.inference is None:
			if self.inference is not None:
				self.inference.release()
			# one frame: its model calls run one after another, each on every core
			self.inference, self.session_key, self.checked_models = InferenceManager(config, concurrent_calls=1), key, set()
		models = [name for name in collect_required_models(config) if name not in self.checked_models]
		if models:
			ensure_models(models, config.models_path, config.download_providers)
			self.checked_models.update(models)
		# the analysers read the config's thresholds and models: cheap to build, sessions are shared
		self.inference.config = config
		return Engine(self.inference, ContentAnalyser(self.inference), FaceAnalyser(config, self.inference), FaceMasker(config, self.inference))

	def render(self, config: RunConfig, source_paths: Sequence[str], target_path: str, frame_number: int) -> 'VisionFrame':
		"""The frame at frame_number processed as the job would process it, in RGB."""
		import cv2

		from facefusion import face_selector
		from facefusion.workflows.engine import build_processors, needs_target_embeddings, select_reference_faces
		from facefusion.workflows.image import CONTENT_REFUSED_MESSAGE

		target_frame = read_target_frame(target_path, frame_number)
		with self.lock:
			engine = self.engine(config)
			if engine.content_analyser.analyse_frame(target_frame):
				raise InputError(CONTENT_REFUSED_MESSAGE)
			reference_frame = target_frame if config.reference_frame_number == frame_number else read_target_frame(target_path, config.reference_frame_number)
			reference_faces = select_reference_faces(reference_frame, engine, config)
			source_frames = read_source_images(source_paths)
			processors = build_processors(config, engine, reference_faces, source_frames)
			try:
				faces = face_selector.select_faces(target_frame, engine.analyser, config, reference_faces)
				if faces and needs_target_embeddings(processors):
					engine.analyser.ensure_embeddings(target_frame, faces)
				output_frame = target_frame.copy()
				for processor in processors if faces else []:
					output_frame = processor.process_frame(target_frame, faces, output_frame)
			finally:
				for processor in processors:
					processor.release()
		return cv2.cvtColor(output_frame, cv2.COLOR_BGR2RGB)

	def faces(self, config: RunConfig, target_path: str, frame_number: int) -> List['VisionFrame']:
		"""Crops (RGB) of the faces of a frame in --face-selector-order, filtered as the selector filters them: the
		gallery's index is --reference-face-position."""
		import cv2

		from facefusion.face_analyser import needs_classification
		from facefusion.face_selector import sort_and_filter_faces

		frame = read_target_frame(target_path, frame_number)
		with self.lock:
			engine = self.engine(config)
			faces = sort_and_filter_faces(engine.analyser.get_many_faces(frame, with_classification=needs_classification(config)), config)
		crops = []
		height, width = frame.shape[:2]
		for face in faces:
			left, top, right, bottom = [int(round(value)) for value in face.bounding_box[:4]]
			margin = int(max(right - left, bottom - top) * 0.15)
			crop = frame[max(top - margin, 0):min(bottom + margin, height), max(left - margin, 0):min(right + margin, width)]
			if crop.size:
				crops.append(cv2.cvtColor(cv2.resize(crop, (GALLERY_CROP_SIZE, GALLERY_CROP_SIZE)), cv2.COLOR_BGR2RGB))
		return crops

	def close(self) -> None:
		with self.lock:
			if self.inference is not None:
				self.inference.release()
			self.inference = None


def read_source_images(source_paths: Sequence[str]) -> List['VisionFrame']:
	"""The source images (an audio source has no face to read)."""
	from facefusion import filesystem, vision
	return [vision.read_image(path) for path in source_paths if filesystem.media_status(path) != 'audio']
