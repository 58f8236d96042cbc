"""Creates model sessions lazily, caches them, and releases them per --video-memory-strategy."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Dict, Iterable, Optional

from facefusion.config import PROJECT_DIR, RunConfig
from facefusion.errors import ModelUnavailableError
from facefusion.inference.providers import provider_list
from facefusion.inference.session import ModelSession, create_session


class InferenceManager:
	def __init__(self, config: RunConfig) -> None:
		self.config = config
		self.sessions: Dict[str, ModelSession] = {}
		self.lock = threading.Lock()
		self.cache_dir = PROJECT_DIR / '.caches'

	def model_file(self, model_name: str) -> Path:
		from facefusion.models.registry import get_model
		return Path(self.config.models_path) / get_model(model_name).file_name

	def get(self, model_name: str) -> ModelSession:
		with self.lock:
			model_session = self.sessions.get(model_name)
			if model_session is None:
				path = self.model_file(model_name)
				if not path.is_file():
					raise ModelUnavailableError('model file ' + str(path) + ' is missing')
				providers = provider_list(
					self.config.execution_providers,
					device_id=self.config.execution_device_ids[0] if self.config.execution_device_ids else '0',
					cache_dir=self.cache_dir
				)
				model_session = create_session(model_name, path, providers)
				self.sessions[model_name] = model_session
			return model_session

	def release(self, model_names: Optional[Iterable[str]] = None) -> None:
		with self.lock:
			names = list(self.sessions) if model_names is None else [name for name in model_names if name in self.sessions]
			for name in names:
				del self.sessions[name]

	def release_for_strategy(self, processor_models: Iterable[str]) -> None:
		"""After a run: strict drops every session, moderate drops the processors' sessions, tolerant keeps all."""
		strategy = self.config.video_memory_strategy
		if strategy == 'strict':
			self.release()
		elif strategy == 'moderate':
			self.release(processor_models)
