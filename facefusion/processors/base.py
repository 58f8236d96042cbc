"""What every processor is: a step that turns the picture so far into the next picture, one frame at a time.

Core analyses each target frame once and hands every processor the same selected faces; a processor never runs the
detector itself. Heavy things a processor needs for the whole run (the source identity, model sessions) are made
once in prepare(), not per frame.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, List, Tuple

from facefusion.config import RunConfig
from facefusion.types import Face, VisionFrame

if TYPE_CHECKING:
	from facefusion.face_analyser import FaceAnalyser
	from facefusion.face_masker import FaceMasker
	from facefusion.inference.manager import InferenceManager


@dataclass
class ProcessingContext:
	"""Everything a processor may use, shared by all processors of a run."""
	config: RunConfig
	inference: 'InferenceManager'
	analyser: 'FaceAnalyser'
	masker: 'FaceMasker'
	# faces the reference face selector matches against (empty unless --face-selector-mode reference)
	reference_faces: List[Face] = field(default_factory=list)
	# the decoded source images, in --source-paths order (BGR uint8)
	source_frames: List[VisionFrame] = field(default_factory=list)


class Processor(abc.ABC):
	# the --processors name
	name: ClassVar[str] = ''

	def __init__(self, context: ProcessingContext) -> None:
		self.context = context
		self.config = context.config

	@staticmethod
	@abc.abstractmethod
	def required_models(config: RunConfig) -> List[str]:
		"""Model names (registry keys) this processor needs with this config; core downloads them before any work."""

	def prepare(self) -> None:
		"""Validate the sources and compute what stays fixed for the run (raise InputError for bad sources)."""

	def observe(self, target_frame: VisionFrame, faces: List[Face]) -> None:
		"""Called by the video analyse stage for every frame, in frame order, with its selected faces: where a
		processor keeps state along a track (colour statistics), so that it does not depend on the worker count."""

	def needs_target_embeddings(self) -> bool:
		"""True when this processor reads the target faces' embeddings: the workflow then fills face.embedding and
		face.embedding_norm before process_frame(s), in the analyse stage that owns the faces."""
		return False

	@abc.abstractmethod
	def process_frame(self, target_frame: VisionFrame, faces: List[Face], output_frame: VisionFrame) -> VisionFrame:
		"""target_frame: the untouched input; faces: the selected target faces; output_frame: the result so far.

		Returns the new result (may be output_frame changed in place). The faces are read, never written: they
		belong to the analyse stage, and processors run in parallel worker threads.
		"""

	def process_frames(self, items: List[Tuple[VisionFrame, List[Face], VisionFrame]]) -> List[VisionFrame]:
		"""A window of frames at once, each item (target_frame, faces, output_frame); processors whose model calls
		gain from bigger batches override this to gather the work of every frame into few calls."""
		return [self.process_frame(target_frame, faces, output_frame) for target_frame, faces, output_frame in items]

	def release(self) -> None:
		"""Drop per-run state after the run (optional; sessions belong to the inference manager)."""

	def __repr__(self) -> str:
		return f'{type(self).__name__}({self.name!r})'
