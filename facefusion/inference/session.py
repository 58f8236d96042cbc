"""One ONNX Runtime session with a batch-first call API."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import numpy as np
import onnxruntime

from facefusion.inference.call_samples import RECORDER
from facefusion.inference.providers import ProviderEntry
from facefusion.logger import get_logger, warn_once
from facefusion.stage_timer import STAGE_TIMER

# which pipeline stage a model's time counts toward (the benchmark's stage breakdown)
MODEL_STAGES = ('detect', 'landmark', 'embed', 'classify', 'mask', 'content', 'swap', 'enhance')
STAGE_OF_KIND = {
	'face_detector': 'detect',
	'face_landmarker': 'landmark',
	'face_recognizer': 'embed',
	'face_classifier': 'classify',
	'face_occluder': 'mask',
	'face_parser': 'mask',
	'content_analyser': 'content',
	'face_swapper': 'swap',
	'embedding_converter': 'swap',
	'face_enhancer': 'enhance',
}

GPU_PROVIDERS = ('CUDAExecutionProvider', 'TensorrtExecutionProvider')
BatchInput = Union[np.ndarray, Sequence[np.ndarray]]
# ONNX Runtime's element type names -> NumPy dtypes, for feeding and allocating by a model's declared types
ELEMENT_TYPES: Dict[str, type] = {
	'tensor(float)': np.float32,
	'tensor(float16)': np.float16,
	'tensor(double)': np.float64,
	'tensor(int64)': np.int64,
	'tensor(int32)': np.int32,
	'tensor(int16)': np.int16,
	'tensor(int8)': np.int8,
	'tensor(uint64)': np.uint64,
	'tensor(uint32)': np.uint32,
	'tensor(uint16)': np.uint16,
	'tensor(uint8)': np.uint8,
	'tensor(bool)': np.bool_
}


@dataclass
class ModelSession:
	name: str
	path: Path
	session: onnxruntime.InferenceSession
	requested_providers: List[str] = field(default_factory=list)
	stage: str = 'model'

	@property
	def input_names(self) -> List[str]:
		return [item.name for item in self.session.get_inputs()]

	@property
	def input_shapes(self) -> List[List[Any]]:
		return [list(item.shape) for item in self.session.get_inputs()]

	@property
	def fixed_batch(self) -> bool:
		"""True when the model's batch axis is the integer 1 (e.g. the distributed inswapper_128)."""
		shapes = self.input_shapes
		return bool(shapes and shapes[0] and shapes[0][0] == 1)

	@property
	def active_providers(self) -> List[str]:
		return list(self.session.get_providers())

	@property
	def device_id(self) -> int:
		"""The GPU the session really runs on (its CUDA / TensorRT provider's device_id, from
		--execution-device-ids), 0 on the CPU: IO binding and CuPy must hand ONNX Runtime pointers of this device."""
		options = self.session.get_provider_options()
		for provider in self.active_providers:
			if provider in GPU_PROVIDERS:
				value = str(options.get(provider, {}).get('device_id', '0'))
				return int(value) if value.isdigit() else 0
		return 0

	def run(self, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
		"""One plain call; outputs by position."""
		first = next(iter(feed.values()), None)
		items = int(first.shape[0]) if getattr(first, 'ndim', 0) else 1
		started = time.perf_counter()
		cpu_started = time.thread_time()
		with STAGE_TIMER.measure(self.stage, items):
			outputs = self.session.run(None, feed)
		if RECORDER.enabled:
			RECORDER.record(self.name, self.path, self.stage, feed, items, time.perf_counter() - started, time.thread_time() - cpu_started)
		return outputs

	def run_batch(self, feed: Dict[str, BatchInput]) -> List[np.ndarray]:
		"""Batch-first call: every input carries a leading batch axis N (or is a list of N items); the outputs are
		stacked with a leading axis N. Fixed-batch models are run one item at a time."""
		stacked = {name: value if isinstance(value, np.ndarray) else np.stack(list(value)) for name, value in feed.items()}
		batch_sizes = {value.shape[0] for value in stacked.values()}
		if len(batch_sizes) != 1:
			raise ValueError('all inputs of a batch call need the same batch size, got ' + str(sorted(batch_sizes)))
		batch_size = batch_sizes.pop()
		if not self.fixed_batch or batch_size == 1:
			return self.run(stacked)
		per_item = [self.run({name: value[index:index + 1] for name, value in stacked.items()}) for index in range(batch_size)]
		return [np.concatenate([outputs[position] for outputs in per_item]) for position in range(len(per_item[0]))]


def create_session(
	name: str,
	path: Path,
	providers: List[ProviderEntry],
	thread_count: int = 0
) -> ModelSession:
	options = onnxruntime.SessionOptions()
	options.log_severity_level = 3
	if thread_count > 0:
		options.intra_op_num_threads = thread_count
	if all(provider_name == 'CPUExecutionProvider' for provider_name, _ in providers):
		# several sessions run one after another (and in parallel stages): spinning worker pools of one session
		# steal the cores the next one needs (measured on 2 cores: YuNet + swapper 126 ms per pair spinning, 59 ms not)
		options.add_session_config_entry('session.intra_op.allow_spinning', '0')
		options.add_session_config_entry('session.inter_op.allow_spinning', '0')
	session = onnxruntime.InferenceSession(
		str(path),
		sess_options=options,
		providers=[provider_name for provider_name, _ in providers],
		provider_options=[provider_options for _, provider_options in providers]
	)
	requested = [provider_name for provider_name, _ in providers]
	model_session = ModelSession(name=name, path=path, session=session, requested_providers=requested, stage=stage_of_model(name))
	check_fallback(model_session)
	return model_session


def stage_of_model(name: str) -> str:
	from facefusion.models.registry import get_model
	try:
		return STAGE_OF_KIND.get(get_model(name).kind, 'model')
	except KeyError:
		return 'model'


def check_fallback(model_session: ModelSession) -> None:
	"""onnxruntime falls back to CPU without raising; say so once, loudly."""
	active = set(model_session.active_providers)
	missing = [provider for provider in model_session.requested_providers if provider not in active]
	if missing:
		warn_once(
			'provider-fallback:' + ','.join(missing),
			'execution provider ' + ', '.join(missing) + ' unavailable, running on ' + ', '.join(model_session.active_providers)
		)
	get_logger().debug('session %s on %s', model_session.name, model_session.active_providers)
