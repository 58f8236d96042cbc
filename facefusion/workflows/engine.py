"""What stays loaded across the targets of a batch (Engine), and the setup the image and video workflows share:
models present, reference faces, processors prepared and released."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence

from facefusion import logger
from facefusion.config import RunConfig

if TYPE_CHECKING:
	from facefusion.content_analyser import ContentAnalyser
	from facefusion.face_analyser import FaceAnalyser
	from facefusion.face_masker import FaceMasker
	from facefusion.inference.manager import InferenceManager
	from facefusion.processors.base import Processor
	from facefusion.types import Face, VisionFrame


@dataclass
class Engine:
	"""Sessions and the analysers built on them."""
	inference: 'InferenceManager'
	content_analyser: 'ContentAnalyser'
	analyser: 'FaceAnalyser'
	masker: 'FaceMasker'

	def close(self) -> None:
		self.inference.release()


@dataclass
class EngineCache:
	"""One Engine for consecutive targets whose options differ only in their paths (a batch's items, a job's steps,
	the segments a worker process is given); other options start a new one."""
	engine: Optional[Engine] = None
	key: Optional[RunConfig] = None

	def get(self, config: RunConfig) -> Engine:
		key = config.with_changes(source_paths=[], target_path=None, output_path=None, trim_frame_start=None, trim_frame_end=None)
		if self.engine is None or key != self.key:
			self.close()
			self.engine = start_engine(config)
			self.key = key
		return self.engine

	def close(self) -> None:
		if self.engine is not None:
			self.engine.close()
		self.engine, self.key = None, None


def collect_required_models(config: RunConfig) -> List[str]:
	"""Every model the run needs, once each: content analyser, face analysis, masks, then the processors."""
	from facefusion.content_analyser import ContentAnalyser
	from facefusion.face_analyser import FaceAnalyser
	from facefusion.face_masker import FaceMasker
	from facefusion.processors import registry

	names = ContentAnalyser.required_models(config) + FaceAnalyser.required_models(config) + FaceMasker.required_models(config)
	names += registry.required_models(config.processors, config)
	return list(dict.fromkeys(names))


def start_engine(config: RunConfig, concurrent_calls: Optional[int] = None) -> Engine:
	"""Download what is missing (or fail naming every missing file), then open the sessions lazily; concurrent_calls
	sizes the thread plan (1 for an image target: its model calls run one at a time, each on every core)."""
	from facefusion.content_analyser import ContentAnalyser
	from facefusion.face_analyser import FaceAnalyser
	from facefusion.face_masker import FaceMasker
	from facefusion.inference.manager import InferenceManager
	from facefusion.models.download import ensure_models

	model_names = collect_required_models(config)
	logger.get_logger().debug('models: ' + ', '.join(model_names))
	ensure_models(model_names, config.models_path, config.download_providers)
	inference = InferenceManager(config, concurrent_calls)
	return Engine(
		inference=inference,
		content_analyser=ContentAnalyser(inference),
		analyser=FaceAnalyser(config, inference),
		masker=FaceMasker(config, inference),
	)


@contextmanager
def engine_for(config: RunConfig, engine: Optional[Engine], concurrent_calls: Optional[int] = None) -> Iterator[Engine]:
	"""The caller's engine (a batch keeps one for all its items), or one of its own, closed at the end."""
	if engine is not None:
		yield engine
		return
	own_engine = start_engine(config, concurrent_calls)
	try:
		yield own_engine
	finally:
		own_engine.close()


def select_reference_faces(reference_frame: 'VisionFrame', engine: Engine, config: RunConfig) -> List['Face']:
	"""The faces --face-selector-mode reference matches against; none in the other modes."""
	from facefusion import face_selector
	if config.face_selector_mode != 'reference':
		return []
	return face_selector.get_reference_faces(reference_frame, engine.analyser, config)


def build_processors(config: RunConfig, engine: Engine, reference_faces: Sequence['Face'], source_frames: Sequence['VisionFrame']) -> List['Processor']:
	"""The --processors in their order, each prepared (source identity computed once; a bad source fails here)."""
	from facefusion.processors.base import ProcessingContext
	from facefusion.processors.registry import create_processors
	context = ProcessingContext(
		config=config,
		inference=engine.inference,
		analyser=engine.analyser,
		masker=engine.masker,
		reference_faces=list(reference_faces),
		source_frames=list(source_frames),
	)
	processors = create_processors(config.processors, context)
	for processor in processors:
		processor.prepare()
	return processors


def preload_sessions(config: RunConfig, engine: Engine, content_target: Optional[str] = None) -> None:
	"""Start loading, in a thread of its own, the sessions a run needs after the source face: the processors' models
	(the swapper is the largest file of a run), then, given content_target, the content check's unless its verdict for
	that target is known already (a batch-run's repeat, the UI). The source face's own models (and an image's content
	check) load meanwhile on the caller's thread."""
	from facefusion.content_analyser import ContentAnalyser
	from facefusion.processors import registry
	names = registry.required_models(config.processors, config)
	if content_target is not None and not engine.content_analyser.knows_video(content_target):
		names += ContentAnalyser.required_models(config)
	engine.inference.preload(list(dict.fromkeys(names)))


def release_processors(config: RunConfig, engine: Engine, processors: Sequence['Processor']) -> None:
	"""After a target: the processors drop their per-run state and --video-memory-strategy decides which sessions
	go (strict: all, moderate: the processors', tolerant: none); a batch-run loads what it needs again lazily."""
	from facefusion.processors import registry
	for processor in processors:
		processor.release()
	engine.inference.release_for_strategy(registry.required_models(config.processors, config))


def needs_target_embeddings(processors: Sequence['Processor']) -> bool:
	"""Whether the analysis must hand the processors faces with their embedding filled in."""
	return any(processor.needs_target_embeddings() for processor in processors)
