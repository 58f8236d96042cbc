"""The source identity, computed once per run: the averaged source face and what the chosen model is fed as
`source` before the per-face identity weight (an embedding in the model's identity space, or a cropped image).
"""
from __future__ import annotations

import hashlib
import io
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional

import numpy as np

from facefusion.errors import InputError, ProcessingError
from facefusion.face_helper import warp_face_by_face_landmark_5
from facefusion.gpu.array_ops import prepare_source_image
from facefusion.logger import get_logger
from facefusion.models.registry import ModelSpec
from facefusion.processors.modules.face_swapper.identity import prepare_source_embedding, uses_converter, uses_source_image
from facefusion.types import Embedding, Face, SourceIdentity, VisionFrame

if TYPE_CHECKING:
	from facefusion.inference.manager import InferenceManager
	from facefusion.processors.base import ProcessingContext

# SourceIdentity.extras keys
SOURCE_EMBEDDING = 'embedding'
SOURCE_FRAME = 'frame'


def read_emap(model_path: str) -> np.ndarray:
	"""inswapper's 512×512 identity projection: the last initializer of its graph (also in the fp16 file)."""
	stat = os.stat(model_path)
	# keyed by size and mtime too, so a replaced file is read again instead of serving a stale matrix
	return _read_emap(os.path.abspath(model_path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _read_emap(model_path: str, size: int, mtime_ns: int) -> np.ndarray:
	"""From a copy kept on disk per model file version when there is one: reading it out of the model means parsing
	the whole graph (the real inswapper_128 is 554 MB), and importing onnx to do so, at every start."""
	kept = emap_copy_path(model_path, size, mtime_ns)
	emap = read_kept_emap(kept)
	if emap is None:
		emap = read_emap_from_model(model_path)
		keep_emap(kept, emap)
	emap.setflags(write=False)
	return emap


def emap_copy_path(model_path: str, size: int, mtime_ns: int) -> Path:
	from facefusion.binary_facts import cache_folder
	key = hashlib.sha256('{}|{}|{}'.format(os.path.realpath(model_path), size, mtime_ns).encode('utf-8')).hexdigest()[:32]
	return cache_folder() / 'emaps' / (key + '.npy')


def read_kept_emap(path: Path) -> Optional[np.ndarray]:
	try:
		emap = np.load(path, allow_pickle=False)
	except (OSError, ValueError):
		return None
	return emap if emap.shape == (512, 512) and emap.dtype in (np.float32, np.float16) else None


def keep_emap(path: Path, emap: np.ndarray) -> None:
	"""Best effort: a folder that cannot be written only means reading the model again next time."""
	from facefusion.partial_files import replace_atomically
	buffer = io.BytesIO()
	np.save(buffer, emap, allow_pickle=False)
	try:
		path.parent.mkdir(parents=True, exist_ok=True)
		replace_atomically(path, buffer.getvalue())
	except OSError as exception:
		get_logger().debug('inswapper emap not kept in %s: %s', path, exception)


def read_emap_from_model(model_path: str) -> np.ndarray:
	# onnx is imported here: only a first inswapper run needs it, and it adds to every start-up otherwise
	import onnx
	from onnx import numpy_helper
	model = onnx.load(model_path)
	if not model.graph.initializer:
		raise ProcessingError('model ' + model_path + ' has no initializer to read the inswapper emap from')
	emap = numpy_helper.to_array(model.graph.initializer[-1])
	if emap.shape != (512, 512):
		raise ProcessingError('model ' + model_path + ' has a last initializer of shape ' + str(emap.shape) + ', not 512x512')
	return emap


def clear_emap_cache() -> None:
	"""Drop the cached matrices (3.5.0 clears its initializer cache with the strict and moderate memory strategies)."""
	_read_emap.cache_clear()


def convert_embedding(inference: 'InferenceManager', converter_name: str, embedding: Embedding) -> np.ndarray:
	"""Raw arcface embedding -> the crossface_* converter's output (1×512)."""
	session = inference.get(converter_name)
	input_name = 'input' if 'input' in session.input_names else session.input_names[0]
	return session.run({input_name: embedding.reshape(1, -1).astype(np.float32)})[0]


def build_source_identity(context: 'ProcessingContext', spec: ModelSpec) -> SourceIdentity:
	"""Average the largest face of every source image (as 3.5.0) and prepare the model's `source` input from it."""
	frames = list(context.source_frames)
	if not frames:
		raise InputError('face_swapper needs a source image (--source-paths)')
	face = context.analyser.get_average_face(frames)
	if face is None:
		raise ProcessingError('no face detected in source ' + describe_sources(context))
	extras: Dict[str, np.ndarray] = {}
	if uses_source_image(spec.swapper_type):
		extras[SOURCE_FRAME] = source_frame_input(first_frame_with_face(context, frames), face, spec)
	else:
		extras[SOURCE_EMBEDDING] = source_embedding_input(context.inference, face, spec)
	return SourceIdentity(face=face, frames=frames, extras=extras)


def first_frame_with_face(context: 'ProcessingContext', frames: List[VisionFrame]) -> VisionFrame:
	"""The source image the averaged face's landmarks belong to: the first one holding a face.

	3.5.0 always crops the first source path, which is the same image unless that one holds no face (then it crops
	an image with another image's landmarks); looking again costs a detection only when there are several sources.
	"""
	if len(frames) == 1:
		return frames[0]
	for frame in frames:
		if context.analyser.get_many_faces(frame):
			return frame
	return frames[0]


def source_frame_input(frame: VisionFrame, face: Face, spec: ModelSpec) -> np.ndarray:
	"""blendswap / uniface: the source face cropped with the model's source template (1×3×H×W, RGB, / 255), using
	the averaged face's 5/68 landmarks (those of the first source face found)."""
	crop, _ = warp_face_by_face_landmark_5(frame, face.landmark_set.five_68, spec.source_template, spec.source_size)
	return prepare_source_image(crop)


def source_embedding_input(inference: 'InferenceManager', face: Face, spec: ModelSpec) -> np.ndarray:
	if face.embedding is None or face.embedding_norm is None:
		raise ProcessingError('the source face has no embedding')
	converted = None
	emap = None
	if uses_converter(spec.swapper_type):
		converted = convert_embedding(inference, spec.converter, face.embedding)
	if spec.swapper_type == 'inswapper':
		emap = read_emap(str(inference.get(spec.name).path))
	return prepare_source_embedding(spec.swapper_type, face.embedding, face.embedding_norm, converted, emap)


def describe_sources(context: 'ProcessingContext') -> str:
	paths = list(context.config.source_paths)
	return ', '.join(paths) if paths else '(' + str(len(context.source_frames)) + ' image(s))'
