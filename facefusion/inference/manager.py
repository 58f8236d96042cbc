"""Creates model sessions lazily, caches them, and releases them per --video-memory-strategy."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from facefusion.config import PROJECT_DIR, RunConfig
from facefusion.errors import ModelUnavailableError
from facefusion.inference.providers import provider_list
from facefusion.inference.session import ModelSession, create_session
from facefusion.inference.thread_plan import plan_threads
from facefusion.logger import get_logger


class InferenceManager:
	def __init__(self, config: RunConfig, concurrent_calls: Optional[int] = None) -> None:
		"""concurrent_calls: model calls that may run at once (None: the video's process workers; 1 for an image, whose
		calls run one after another and so get every core each)."""
		self.config = config
		self.sessions: Dict[str, ModelSession] = {}
		self.lock = threading.Lock()
		# one lock per model being created: different models load at the same time (ONNX Runtime releases the GIL
		# while it reads and optimises a graph), a model asked for twice loads once
		self.creating: Dict[str, threading.Lock] = {}
		self.preloads: List[threading.Thread] = []
		self.cache_dir = PROJECT_DIR / '.caches'
		# workers × intra-op threads ≤ cores on the CPU provider (the video's process stage sizes its workers by the
		# same plan)
		self.thread_plan = plan_threads(config, concurrent_calls)
		get_logger().debug('thread plan: %s', self.thread_plan.describe())

	def model_file(self, model_name: str) -> Path:
		from facefusion.models.registry import get_model
		return Path(self.config.models_path) / get_model(model_name).file_name

	def get(self, model_name: str) -> ModelSession:
		with self.lock:
			model_session = self.sessions.get(model_name)
			if model_session is not None:
				return model_session
			creating = self.creating.setdefault(model_name, threading.Lock())
		with creating:
			with self.lock:
				model_session = self.sessions.get(model_name)
			if model_session is not None:
				return model_session
			path = self.model_file(model_name)
			if not path.is_file():
				raise ModelUnavailableError('model file ' + str(path) + ' is missing')
			model_session = self.create(model_name, path)
			with self.lock:
				self.sessions[model_name] = model_session
			return model_session

	def preload(self, model_names: Sequence[str]) -> None:
		"""Create these sessions in a thread of their own, in order, while the caller goes on with others (a real
		inswapper_128 is 554 MB: seconds of loading that the source face's analysis need not wait for). A model that
		fails to load is left to the caller's own get(), which raises the error where it belongs."""
		def load() -> None:
			for name in model_names:
				try:
					self.get(name)
				except Exception as exception:
					get_logger().debug('preloading %s failed (%s): it is loaded when it is needed', name, exception)

		thread = threading.Thread(target=load, name='session-preload', daemon=True)
		self.preloads.append(thread)
		thread.start()

	def wait_preloads(self) -> None:
		"""Every preload finished (none may still be inside ONNX Runtime when the sessions go or the process ends)."""
		for thread in self.preloads:
			thread.join()
		self.preloads = []

	@property
	def device_id(self) -> str:
		return self.config.execution_device_ids[0] if self.config.execution_device_ids else '0'

	def create(self, model_name: str, path: Path) -> ModelSession:
		from facefusion.models.registry import get_model
		if get_model(model_name).kind == 'face_swapper':
			return self.create_swapper(model_name, path)
		if get_model(model_name).kind == 'face_enhancer':
			return self.create_enhancer(model_name, path)
		return create_session(model_name, path, provider_list(self.config.execution_providers, device_id=self.device_id, cache_dir=self.cache_dir), self.thread_plan.intra_op_threads)

	def create_swapper(self, model_name: str, path: Path) -> ModelSession:
		"""The swapper is the model that runs most: a fixed batch of 1 is rewritten to a dynamic batch (a verified
		copy beside the original) unless batching is off, and --face-swapper-use-trt builds a TensorRT engine with
		explicit batch profiles."""
		from facefusion.inference.batch_conversion import ensure_dynamic_batch
		if self.config.face_swapper_batching != 'never':
			path = ensure_dynamic_batch(path)
		if self.uses_trt_builder(self.config.face_swapper_use_trt):
			# imported only here: it loads onnx (0.08 s), which a run on a cached conversion does not need
			from facefusion.inference.trt_profiles import create_trt_session
			return create_trt_session(model_name, path, self.config.face_swapper_trt_max_batch, self.device_id, self.cache_dir)
		return create_session(model_name, path, provider_list(self.config.execution_providers, device_id=self.device_id, cache_dir=self.cache_dir), self.thread_plan.intra_op_threads)

	def create_enhancer(self, model_name: str, path: Path) -> ModelSession:
		"""The enhancer batches every face of a window: a fixed batch of 1 becomes dynamic where the graph allows
		(models with a per-call `weight` input keep theirs), and --face-enhancer-use-trt builds its own engine."""
		from facefusion.inference.batch_conversion import ensure_dynamic_batch
		from facefusion.inference.trt_profiles import create_trt_session, read_model_inputs
		if all(len(model_input.shape) == 4 for model_input in read_model_inputs(path)):
			path = ensure_dynamic_batch(path)
		if self.uses_trt_builder(self.config.face_enhancer_use_trt):
			return create_trt_session(model_name, path, self.config.face_enhancer_trt_max_batch, self.device_id, self.cache_dir)
		return create_session(model_name, path, provider_list(self.config.execution_providers, device_id=self.device_id, cache_dir=self.cache_dir), self.thread_plan.intra_op_threads)

	def uses_trt_builder(self, use_trt_option: bool) -> bool:
		"""A batched model on TensorRT goes through the profiled builder whenever TensorRT is asked for, by the model's
		--*-use-trt option or by `--execution-providers tensorrt` alone: a plain TensorRT session has no min/opt/max
		profile and fp16 off, and rebuilds its engine for each new batch size."""
		return use_trt_option or 'tensorrt' in self.config.execution_providers

	def on_gpu(self) -> bool:
		"""Whether the run asked for a GPU provider (batching across frames pays off there)."""
		return self.config.face_swapper_use_trt or self.config.face_enhancer_use_trt or any(name in ('cuda', 'tensorrt') for name in self.config.execution_providers)

	def release(self, model_names: Optional[Iterable[str]] = None) -> None:
		self.wait_preloads()
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
