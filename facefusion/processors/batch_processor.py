"""The one place that decides how big a model call may be .

Callers decide what goes into a batch (the sub-images of every face of a frame, faces from a window of frames); the
BatchProcessor splits the items into calls no larger than the current limit, runs them in order and puts the
results back together. The limit starts from free device memory and the model's per-item cost (capped by
max_batch). When a call runs out of memory the processor halves the batch and runs the same items again, so nothing
is lost; the halved limit sticks for the rest of the run. A single item that still runs out of memory raises the
original error. Statistics (calls, mean batch size, out-of-memory retries, time per item) are logged at debug level
by log_stats(), which the video loop calls at the end of a run.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, List, Optional, Sequence, TypeVar

from facefusion.gpu.device import Array, array_module_of, free_device_memory
from facefusion.logger import get_logger

Item = TypeVar('Item')
Result = TypeVar('Result')

# share of the free device memory a batch may take: ONNX Runtime's arena, CuPy's pool and the video pipeline
# all allocate beside the model call
MEMORY_SHARE = 0.6
OUT_OF_MEMORY_MESSAGES = (
	'out of memory',
	'failed to allocate',
	'cudaerrormemoryallocation',
	'cuda_error_out_of_memory',
	'cudnn_status_alloc_failed',
	'cublas_status_alloc_failed',
	'bad_alloc',
	# ONNX Runtime's BFC arena at its limit (CPU arena config, or the CUDA provider's gpu_mem_limit)
	'is smaller than requested bytes'
)


def onnxruntime_error_types() -> tuple:
	"""ONNX Runtime's pybind exception classes (they derive from Exception, not RuntimeError)."""
	state = sys.modules.get('onnxruntime.capi.onnxruntime_pybind11_state')
	if state is None:
		return ()
	return tuple(getattr(state, name) for name in ('Fail', 'RuntimeException', 'EPFail') if hasattr(state, name))


def is_out_of_memory(exception: BaseException) -> bool:
	"""MemoryError, CuPy's / PyTorch's OutOfMemoryError, and ONNX Runtime failures whose message says
	the allocation failed."""
	if isinstance(exception, MemoryError):
		return True
	exception_type = type(exception)
	if exception_type.__name__ == 'OutOfMemoryError' and exception_type.__module__.split('.')[0] in ('cupy', 'cupy_backends', 'torch'):
		return True
	if isinstance(exception, onnxruntime_error_types() + (RuntimeError,)):
		message = str(exception).lower()
		return any(text in message for text in OUT_OF_MEMORY_MESSAGES)
	return False


def release_cached_memory() -> None:
	"""Give CuPy's cached blocks back to the driver before a retry, so ONNX Runtime can take them."""
	cupy = sys.modules.get('cupy')
	if cupy is None:
		return
	try:
		cupy.get_default_memory_pool().free_all_blocks()
	except Exception:
		pass


@dataclass
class BatchStats:
	calls: int = 0
	items: int = 0
	oom_retries: int = 0
	seconds: float = 0.0
	largest_batch: int = 0
	# the calls the model really ran: a fixed-batch model runs a call of 8 items as 8 calls of 1
	model_calls: int = 0

	@property
	def mean_batch_size(self) -> float:
		"""Items per model call (what the model really ran, not what was handed to run_fn)."""
		calls = self.model_calls or self.calls
		return self.items / calls if calls else 0.0

	@property
	def seconds_per_item(self) -> float:
		return self.seconds / self.items if self.items else 0.0


class BatchProcessor(Generic[Item, Result]):
	"""run_fn takes a list of items and returns one result per item, in order (process), or takes a feed dict of
	arrays with a leading batch axis and returns a list of output arrays with that axis (process_feed)."""

	def __init__(
		self,
		run_fn: Callable[[Any], Any],
		per_item_bytes: Optional[int] = None,
		max_batch: int = 64,
		free_memory_fn: Optional[Callable[[], Optional[int]]] = None,
		name: str = 'batch',
		model_batch: Optional[int] = None
	) -> None:
		if max_batch < 1:
			raise ValueError('max_batch must be at least 1, got ' + str(max_batch))
		self.run_fn = run_fn
		self.per_item_bytes = per_item_bytes
		self.max_batch = max_batch
		# the device's free memory by default (None on the CPU, where the batch is capped by max_batch alone)
		self.free_memory_fn = free_memory_fn if free_memory_fn is not None else free_device_memory
		self.name = name
		# the most items one model call really takes (1 for a model whose batch stayed fixed, which run_fn then runs
		# item by item); None: whatever run_fn is given
		self.model_batch = model_batch
		# lowered by out-of-memory failures, never raised again: retrying a size that failed costs a failed call
		self.ceiling = max_batch
		self.stats = BatchStats()
		self.lock = threading.Lock()

	def batch_size(self) -> int:
		"""The largest batch allowed now: the learned ceiling, and what the free memory holds at per_item_bytes."""
		size = self.ceiling
		if self.per_item_bytes:
			free = self.free_memory_fn()
			if free is not None:
				size = min(size, max(1, int(free * MEMORY_SHARE) // int(self.per_item_bytes)))
		return max(1, size)

	def process(self, items: Sequence[Item]) -> List[Result]:
		"""Results of run_fn over items, in order, in as few calls as the limit allows."""
		item_list = list(items)
		results: List[Result] = []

		def call(start: int, stop: int) -> int:
			chunk = list(self.run_fn(item_list[start:stop]))
			if len(chunk) != stop - start:
				raise ValueError(self.name + ': run_fn returned ' + str(len(chunk)) + ' results for ' + str(stop - start) + ' items')
			results.extend(chunk)
			return stop - start

		self.run_ranges(len(item_list), call)
		return results

	def process_feed(self, feed: Dict[str, Array]) -> List[Array]:
		"""Outputs of run_fn over a batch-first feed (NumPy or CuPy), sliced along the batch axis.

		When the feed needs several calls, each call's outputs are copied into the result at once: an IO-binding
		runner hands back the same buffers for every call of one shape, so they must not be kept across calls.
		A feed that fits one call returns run_fn's outputs as they are (for a BoundRunner: its buffers)."""
		sizes = {int(value.shape[0]) for value in feed.values()}
		if len(sizes) != 1:
			raise ValueError(self.name + ': all inputs need the same batch size, got ' + str(sorted(sizes)))
		total = sizes.pop()
		whole: List[List[Array]] = []
		gathered: List[Array] = []

		def call(start: int, stop: int) -> int:
			outputs = list(self.run_fn({name: value[start:stop] for name, value in feed.items()}))
			if start == 0 and stop == total:
				whole.append(outputs)
				return stop - start
			if not gathered:
				for output in outputs:
					xp = array_module_of(output)
					gathered.append(xp.empty((total,) + tuple(output.shape[1:]), dtype=output.dtype))
			for target, output in zip(gathered, outputs):
				target[start:stop] = output
			return stop - start

		self.run_ranges(total, call)
		return whole[0] if whole else gathered

	def run_ranges(self, total: int, call: Callable[[int, int], int]) -> None:
		"""call(start, stop) for consecutive ranges covering 0..total; on out-of-memory the same start is tried
		again with half the size (results are only recorded by a call that succeeded)."""
		start = 0
		size = self.batch_size()
		while start < total:
			stop = min(total, start + size)
			started = time.perf_counter()
			try:
				call(start, stop)
			except Exception as exception:
				if not is_out_of_memory(exception) or stop - start <= 1:
					raise
				size = max(1, (stop - start) // 2)
				with self.lock:
					self.ceiling = min(self.ceiling, size)
					self.stats.oom_retries += 1
				get_logger().debug('%s: out of memory at batch %d, retrying at %d', self.name, stop - start, size)
				release_cached_memory()
				continue
			with self.lock:
				self.stats.calls += 1
				self.stats.model_calls += -(-(stop - start) // self.model_batch) if self.model_batch else 1
				self.stats.items += stop - start
				self.stats.seconds += time.perf_counter() - started
				self.stats.largest_batch = max(self.stats.largest_batch, stop - start)
			start = stop

	def log_stats(self) -> None:
		get_logger().debug(self.describe_stats())

	def describe_stats(self) -> str:
		stats = self.stats
		largest = min(stats.largest_batch, self.model_batch) if self.model_batch else stats.largest_batch
		fixed = ', fixed-batch model: one item per model call' if self.model_batch == 1 else ''
		return (
			self.name + ': ' + str(stats.calls) + ' batches, ' + str(stats.model_calls or stats.calls) + ' model calls, ' + str(stats.items) + ' items, mean batch '
			+ format(stats.mean_batch_size, '.1f') + ' (largest ' + str(largest) + ', limit ' + str(self.ceiling) + fixed + '), '
			+ str(stats.oom_retries) + ' out-of-memory retries, ' + format(stats.seconds_per_item * 1000, '.2f') + ' ms per item'
		)

def estimate_per_item_bytes(input_shapes: Sequence[Sequence[Any]], output_shapes: Sequence[Sequence[Any]], bytes_per_value: int = 4, activation_factor: int = 64) -> int:
	"""A rough per-item device cost from the model's tensor sizes: inputs and outputs (batch axis dropped, dynamic
	dimensions counted as 1) times an activation factor. The out-of-memory back-off corrects an estimate that is
	too small; one that is too large only caps the batch early."""
	def values(shape: Sequence[Any]) -> int:
		count = 1
		for dim in list(shape)[1:]:
			count *= dim if isinstance(dim, int) and dim > 0 else 1
		return count
	total = sum(values(shape) for shape in input_shapes) + sum(values(shape) for shape in output_shapes)
	return int(total * bytes_per_value * activation_factor)
