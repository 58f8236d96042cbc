"""TensorRT for the swapper (`--face-swapper-use-trt`, `--face-swapper-trt-max-batch`): provider options with explicit
shape profiles, the engine and timing caches, the warm-up, and the one log line while an engine is built.

TensorRT builds an engine per shape profile. Left to itself, ONNX Runtime's TensorRT provider rebuilds the engine
whenever a call brings a shape outside the profile it has (a minute or more, per new batch size). Pinning the
profile to min = batch 1, opt = the usual batch, max = --face-swapper-trt-max-batch for every input means one build,
cached on disk under `<project>/.caches`, and no rebuild for any batch the batch processor can send. fp16 is on:
the engine is the speed path; the warm-up checks that fp16 did not turn outputs into NaN / inf (a known TensorRT
risk) and falls back to an fp32 engine once, loudly, when it did.

The TensorRT provider comes first, then CUDA (for the nodes TensorRT does not take), then the CPU.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import onnx
import onnxruntime

from facefusion.config import PROJECT_DIR
from facefusion.inference.providers import ProviderEntry, provider_list
from facefusion.inference.session import ELEMENT_TYPES, ModelSession, create_session
from facefusion.logger import get_logger, warn_once

Dim = Union[int, str, None]
TRT_CACHE_DIR = PROJECT_DIR / '.caches'
TRT_PROVIDER = 'TensorrtExecutionProvider'
MAX_BATCH_RANGE = (1, 64)


@dataclass(frozen=True)
class ModelInput:
	name: str
	shape: Tuple[Dim, ...]


def read_model_inputs(model_path: os.PathLike[str] | str) -> List[ModelInput]:
	"""Graph inputs (initializers excluded) with their declared shapes, from the file (no session needed: the
	provider options must be known before the session exists). Parsing a 500 MB model takes a while, so the
	answer is kept per file version."""
	path = Path(model_path)
	stat = path.stat()
	return list(read_model_inputs_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns))


@lru_cache(maxsize=32)
def read_model_inputs_of(path: str, size: int, mtime_ns: int) -> Tuple[ModelInput, ...]:
	model = onnx.load(path, load_external_data=False)
	initializer_names = {tensor.name for tensor in model.graph.initializer}
	inputs: List[ModelInput] = []
	for value in model.graph.input:
		if value.name in initializer_names:
			continue
		dims: List[Dim] = []
		for dim in value.type.tensor_type.shape.dim:
			if dim.HasField('dim_value'):
				dims.append(int(dim.dim_value))
			else:
				dims.append(dim.dim_param or None)
		inputs.append(ModelInput(value.name, tuple(dims)))
	return tuple(inputs)


def profile_shapes(
	inputs: Sequence[ModelInput],
	max_batch: int,
	opt_batch: Optional[int] = None,
	dim_values: Optional[Dict[str, int]] = None
) -> Dict[str, str]:
	"""The three trt_profile_* options, e.g. {'trt_profile_min_shapes': 'target:1x3x128x128,source:1x512', ...}.

	Every input's leading axis is the batch (1, opt, max); the other dimensions must be fixed or named in
	dim_values. A model whose batch is fixed at 1 gets a profile only for max_batch 1: convert it first
	(ensure_dynamic_batch)."""
	low, high = MAX_BATCH_RANGE
	if not low <= max_batch <= high:
		raise ValueError('TensorRT max batch must be in ' + str(low) + '..' + str(high) + ', got ' + str(max_batch))
	opt = min(max(opt_batch or max_batch, 1), max_batch)
	dim_values = dim_values or {}
	fields: Dict[str, List[str]] = {'min': [], 'opt': [], 'max': []}
	for model_input in inputs:
		if not model_input.shape:
			raise ValueError('input ' + model_input.name + ' has no batch axis')
		batch_dim = model_input.shape[0]
		if isinstance(batch_dim, int) and batch_dim != 1:
			raise ValueError('input ' + model_input.name + ' has a fixed batch of ' + str(batch_dim))
		if isinstance(batch_dim, int) and max_batch > 1:
			raise ValueError('input ' + model_input.name + ' has its batch fixed at 1; convert the model with ensure_dynamic_batch first')
		rest: List[str] = []
		for dim in model_input.shape[1:]:
			if isinstance(dim, int):
				rest.append(str(dim))
			elif dim in dim_values:
				rest.append(str(int(dim_values[dim])))
			else:
				raise ValueError('input ' + model_input.name + ' has a dynamic dimension ' + str(dim) + ' without a value for the profile')
		for key, batch in (('min', 1), ('opt', opt), ('max', max_batch)):
			fields[key].append(model_input.name + ':' + 'x'.join([str(batch)] + rest))
	return {'trt_profile_' + key + '_shapes': ','.join(values) for key, values in fields.items()}


def fixed_batch(inputs: Sequence[ModelInput]) -> bool:
	return any(model_input.shape and model_input.shape[0] == 1 for model_input in inputs)


def effective_max_batch(model_path: os.PathLike[str] | str, max_batch: int) -> int:
	"""What the engine is built for: max_batch, or 1 for a fixed-batch model."""
	return 1 if fixed_batch(read_model_inputs(model_path)) else max_batch


def tensorrt_available() -> bool:
	return TRT_PROVIDER in onnxruntime.get_available_providers()


def trt_provider_entries(
	model_path: os.PathLike[str] | str,
	max_batch: int,
	device_id: str = '0',
	cache_dir: Optional[os.PathLike[str] | str] = None,
	opt_batch: Optional[int] = None,
	fp16: bool = True
) -> List[ProviderEntry]:
	"""tensorrt (fp16, profiles, engine + timing cache) -> cuda -> cpu, for create_session."""
	cache = Path(cache_dir) if cache_dir is not None else TRT_CACHE_DIR
	cache.mkdir(parents=True, exist_ok=True)
	inputs = read_model_inputs(model_path)
	if max_batch > 1 and fixed_batch(inputs):
		# a model the dynamic-batch conversion refused runs one item at a time: an engine for batch 1 alone
		get_logger().debug('%s has its batch fixed at 1: TensorRT profile for batch 1 only', Path(model_path).name)
		max_batch = opt_batch = 1
	profile = profile_shapes(inputs, max_batch, opt_batch)
	entries = provider_list(['tensorrt', 'cuda', 'cpu'], device_id=device_id, cache_dir=cache, trt_fp16=fp16, trt_profile=profile)
	for name, options in entries:
		if name == TRT_PROVIDER:
			# normalisation layers keep fp32 in an fp16 engine: where fp16 NaNs and colour shifts come from
			options['trt_layer_norm_fp32_fallback'] = True
	return entries


def engine_marker(cache_dir: Path, model_path: Path, max_batch: int, fp16: bool) -> Path:
	"""Our own note that an engine for this file, batch range and precision was built and warmed up (ONNX Runtime's
	engine file names carry internal hashes, so they cannot be predicted)."""
	return cache_dir / (model_path.stem + '.trt-b' + str(max_batch) + ('-fp16' if fp16 else '-fp32') + '.ready')


def marker_valid(marker: Path, model_path: Path) -> bool:
	try:
		record = json.loads(marker.read_text(encoding='utf-8'))
		stat = model_path.stat()
	except (OSError, ValueError):
		return False
	return record.get('size') == stat.st_size and record.get('mtime_ns') == stat.st_mtime_ns


def write_marker(marker: Path, model_path: Path, seconds: float) -> None:
	stat = model_path.stat()
	try:
		marker.write_text(json.dumps({'size': stat.st_size, 'mtime_ns': stat.st_mtime_ns, 'build_seconds': round(seconds, 1)}), encoding='utf-8')
	except OSError as exception:
		get_logger().debug('cannot write %s: %s', marker, exception)


def warm_up(model_session: ModelSession, batch_sizes: Sequence[int]) -> Tuple[Dict[int, float], bool]:
	"""One call per batch size before timed work (TensorRT's first calls are slow), with deterministic inputs in
	0..1. Returns the seconds per batch size and whether every output was finite."""
	generator = np.random.default_rng(7)
	timings: Dict[int, float] = {}
	finite = True
	sizes = [1] if model_session.fixed_batch else sorted(set(int(size) for size in batch_sizes if size >= 1))
	for size in sizes:
		feed: Dict[str, np.ndarray] = {}
		for item in model_session.session.get_inputs():
			shape = [size] + [dim if isinstance(dim, int) else 1 for dim in list(item.shape)[1:]]
			dtype = ELEMENT_TYPES.get(item.type, np.float32)
			feed[item.name] = generator.random(shape).astype(dtype)
		started = time.perf_counter()
		outputs = model_session.run(feed)
		timings[size] = time.perf_counter() - started
		finite = finite and all(bool(np.isfinite(np.asarray(output, dtype=np.float64)).all()) for output in outputs if np.issubdtype(np.asarray(output).dtype, np.floating))
	return timings, finite


def create_trt_session(
	name: str,
	model_path: os.PathLike[str] | str,
	max_batch: int,
	device_id: str = '0',
	cache_dir: Optional[os.PathLike[str] | str] = None,
	opt_batch: Optional[int] = None,
	fp16: bool = True
) -> ModelSession:
	"""A warmed-up session on TensorRT (falling back to CUDA, then CPU, loudly). The first run for a model and batch
	range builds the engine, which takes minutes: one log line says so; later runs load it from the cache."""
	path = Path(model_path)
	cache = Path(cache_dir) if cache_dir is not None else TRT_CACHE_DIR
	if not tensorrt_available():
		fallback = 'CUDA' if 'CUDAExecutionProvider' in onnxruntime.get_available_providers() else 'the CPU'
		warn_once('tensorrt-missing', 'TensorRT is not available in this onnxruntime (needs onnxruntime-gpu and the TensorRT libraries); ' + name + ' runs on ' + fallback)
	max_batch = effective_max_batch(path, max_batch)
	installed = set(onnxruntime.get_available_providers())
	# providers this onnxruntime lacks are left out (the line above said so once); asking for them anyway only adds
	# onnxruntime's own warning per session
	entries = [entry for entry in trt_provider_entries(path, max_batch, device_id, cache, opt_batch, fp16) if entry[0] in installed]
	marker = engine_marker(cache, path, max_batch, fp16)
	started = time.perf_counter()
	model_session = create_session(name, path, entries)
	on_trt = TRT_PROVIDER in model_session.active_providers
	# the engine is built at the first calls of the warm-up below, and only when ONNX Runtime really took the
	# TensorRT provider (it falls back silently when the TensorRT libraries do not load)
	building = on_trt and not marker_valid(marker, path)
	if building:
		get_logger().info(
			'building TensorRT engine for %s (batch 1..%d, %s), this takes a few minutes once; cached in %s',
			path.name, max_batch, 'fp16' if fp16 else 'fp32', cache
		)
	opt = min(max(opt_batch or max_batch, 1), max_batch)
	timings, finite = warm_up(model_session, [1, opt, max_batch])
	if on_trt and fp16 and not finite:
		warn_once('tensorrt-fp16-nan:' + path.name, 'TensorRT fp16 engine for ' + path.name + ' produced NaN / inf; rebuilding it in fp32')
		return create_trt_session(name, path, max_batch, device_id, cache, opt_batch, fp16=False)
	elapsed = time.perf_counter() - started
	if building:
		write_marker(marker, path, elapsed)
		get_logger().info('TensorRT engine for %s ready in %.0f s', path.name, elapsed)
	get_logger().debug('warm-up of %s on %s: %s', name, model_session.active_providers, ', '.join('batch ' + str(size) + ' ' + format(seconds * 1000, '.1f') + ' ms' for size, seconds in timings.items()))
	return model_session
