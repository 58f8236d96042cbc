"""Processor names → classes, imported only when used.

Each processor module pulls in its own models and helpers; importing them lazily keeps `--help` fast and keeps the
command line working even while a processor module is missing or broken (only a run that asks for it fails).
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Dict, Iterator, List, Sequence, Type

from facefusion.config import RunConfig
from facefusion.errors import ProcessingError
from facefusion.processors.base import ProcessingContext, Processor

# name → 'module:ClassName', in the order of choices.processors
PROCESSOR_PATHS: Dict[str, str] = {
	'face_swapper': 'facefusion.processors.modules.face_swapper:FaceSwapper',
	'face_debugger': 'facefusion.processors.modules.face_debugger:FaceDebugger',
	'face_enhancer': 'facefusion.processors.modules.face_enhancer:FaceEnhancer',
}


def load_processor_class(name: str) -> Type[Processor]:
	if name not in PROCESSOR_PATHS:
		raise ProcessingError(f'unknown processor {name!r} (available: {", ".join(PROCESSOR_PATHS)})')
	module_name, class_name = PROCESSOR_PATHS[name].split(':')
	try:
		module = importlib.import_module(module_name)
	except ModuleNotFoundError as exception:
		# only "this processor's own module is absent" is a build gap; a missing dependency deeper down is a real bug
		if exception.name and module_name.startswith(exception.name):
			raise ProcessingError(f'the {name} processor is not part of this build yet') from exception
		raise
	return getattr(module, class_name)


class LazyProcessors(Mapping):
	"""A read-only mapping whose values are imported on first access."""

	def __getitem__(self, name: str) -> Type[Processor]:
		if name not in PROCESSOR_PATHS:
			raise KeyError(name)
		return load_processor_class(name)

	def __iter__(self) -> Iterator[str]:
		return iter(PROCESSOR_PATHS)

	def __len__(self) -> int:
		return len(PROCESSOR_PATHS)


PROCESSORS: Mapping = LazyProcessors()


def required_models(names: Sequence[str], config: RunConfig) -> List[str]:
	"""The models all named processors need, in order, without repeats."""
	model_names: List[str] = []
	for name in names:
		for model_name in load_processor_class(name).required_models(config):
			if model_name not in model_names:
				model_names.append(model_name)
	return model_names


def create_processors(names: Sequence[str], context: ProcessingContext) -> List[Processor]:
	"""One instance per name, in the order given (the order they run in)."""
	return [load_processor_class(name)(context) for name in names]
