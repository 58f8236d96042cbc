"""Upstream's face_swapper.process_frame through this engine's batched swapper.

Upstream selects and scales the target faces and averages the source face as it always does; from there the engine
takes over: every face x pixel-boost tile of the frame in one model call (faces whose paste boxes overlap wait for
the earlier one, so the result is the face-by-face one), IO binding and CuPy when the session runs on CUDA, and a
TensorRT fp16 engine with --face-swapper-use-trt. `--face-swapper-batching never` leaves the call to upstream's own
code, untouched.
"""
import hashlib
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

import numpy
from facefusion_engine.errors import FaceFusionError
from facefusion_engine.face_analyser import FaceAnalyser
from facefusion_engine.face_masker import FaceMasker
from facefusion_engine.inference.manager import InferenceManager
from facefusion_engine.processors.base import ProcessingContext
from facefusion_engine.processors.modules.face_swapper.core import FaceSwapper
from facefusion_engine.processors.modules.face_swapper.identity import uses_source_image
from facefusion_engine.processors.modules.face_swapper.source import SOURCE_EMBEDDING, SOURCE_FRAME, source_embedding_input, source_frame_input
from facefusion_engine.types import Face, FaceLandmarkSet, FaceScoreSet, SourceIdentity
from facefusion_engine.upstream_bridge.engine_config import run_config

UPSTREAM_SWAPPER_MODULE = 'facefusion.processors.modules.face_swapper.core'
MODULE_NAME = 'facefusion_engine.upstream_bridge.swapper'


class SwapperCache:
	"""One engine swapper per (options, source face); upstream calls process_frame from its worker threads."""

	def __init__(self) -> None:
		self.lock = threading.Lock()
		self.key: Optional[str] = None
		self.swapper: Optional[FaceSwapper] = None
		# settings the engine refused (said once): upstream's own code swaps with them
		self.refused: Dict[str, str] = {}

	def get(self, source_face: Any, source_frames: List[Any]) -> Optional[FaceSwapper]:
		config = run_config(processors=['face_swapper'])
		digest = hashlib.sha1(repr(config).encode())
		digest.update(numpy.ascontiguousarray(source_face.embedding).tobytes())
		digest.update(numpy.ascontiguousarray(source_face.landmark_set.get('5/68')).tobytes())
		key = digest.hexdigest()
		with self.lock:
			if key in self.refused:
				return None
			if self.swapper is None or self.key != key:
				from facefusion import logger
				try:
					self.swapper = build_swapper(config, source_face, source_frames)
				except FaceFusionError as error:
					# e.g. a pixel boost upstream lists but that is no multiple of the model size (blendswap 384)
					self.refused[key] = error.message
					logger.warn('batched swapper unavailable (' + error.message + "): using upstream's own swapper", MODULE_NAME)
					return None
				self.key = key
				logger.debug(f'batched swapper ready: {config.face_swapper_model} at {self.swapper.boost_size[0]}px, batching {config.face_swapper_batching}', MODULE_NAME)
			return self.swapper

	def release(self) -> None:
		with self.lock:
			if self.swapper is not None:
				self.swapper.release()
			self.swapper = None
			self.key = None


CACHE = SwapperCache()


def engine_face(face: Any) -> Face:
	"""Upstream's Face namedtuple (dict landmark and score sets) as the engine's record."""
	landmarks = face.landmark_set
	scores = face.score_set or {}
	return Face(
		bounding_box=numpy.asarray(face.bounding_box, dtype=numpy.float32),
		score_set=FaceScoreSet(float(scores.get('detector', 0.0)), float(scores.get('landmarker', 0.0))),
		landmark_set=FaceLandmarkSet(landmarks.get('5'), landmarks.get('5/68'), landmarks.get('68'), landmarks.get('68/5')),
		angle=int(face.angle or 0),
		embedding=face.embedding,
		embedding_norm=face.embedding_norm,
		gender=face.gender,
		age=face.age,
		race=face.race
	)


def build_swapper(config: Any, source_face: Any, source_frames: List[Any]) -> FaceSwapper:
	inference = InferenceManager(config)
	context = ProcessingContext(config, inference, FaceAnalyser(config, inference), FaceMasker(config, inference), source_frames=list(source_frames))
	swapper = FaceSwapper(context)
	face = engine_face(source_face)
	extras = {}
	if uses_source_image(swapper.spec.swapper_type):
		# upstream crops its first source image with the averaged face's landmarks
		extras[SOURCE_FRAME] = source_frame_input(source_frames[0], face, swapper.spec)
	else:
		extras[SOURCE_EMBEDDING] = source_embedding_input(inference, face, swapper.spec)
	swapper.source_identity = SourceIdentity(face=face, frames=list(source_frames), extras=extras)
	return swapper


def takes_over() -> bool:
	from facefusion import state_manager
	return state_manager.get_item('face_swapper_batching') in ('auto', 'always')


def process_frame(inputs: Any) -> Optional[Tuple[Any, Any]]:
	"""The frame and mask upstream's process_frame returns, or None to let upstream's own code run."""
	if not takes_over():
		return None
	upstream = sys.modules[UPSTREAM_SWAPPER_MODULE]
	source_frames = inputs.get('source_vision_frames')
	target_frame = inputs.get('target_vision_frame')
	temp_frame = inputs.get('temp_vision_frame')
	temp_mask = inputs.get('temp_vision_mask')
	source_face = upstream.extract_source_face(source_frames)
	target_faces = upstream.select_faces(inputs.get('reference_vision_frame'), target_frame)
	if not source_face or not target_faces:
		return temp_frame, temp_mask
	faces = [engine_face(upstream.scale_face(target_face, target_frame, temp_frame)) for target_face in target_faces]
	swapper = CACHE.get(source_face, source_frames)
	if swapper is None:
		return None
	# the engine pastes in place; upstream's frame may be held by its caches
	output_frame = swapper.process_frame(temp_frame, faces, numpy.array(temp_frame, copy=True))
	return output_frame, temp_mask


def release() -> None:
	"""From upstream's post_process: drop the swapper with its sessions, as upstream clears its inference pool."""
	CACHE.release()
