"""The batch processor: splitting, memory-based sizing, out-of-memory recovery with real failures from real ONNX
Runtime sessions, batched == one-by-one, statistics."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List

import numpy as np
import onnxruntime
import pytest

from facefusion.inference.batch_conversion import ensure_dynamic_batch
from facefusion.inference.providers import provider_list
from facefusion.inference.session import ModelSession, create_session
from facefusion.processors.batch_processor import BatchProcessor, estimate_per_item_bytes, is_out_of_memory
from facefusion.testing.standin_models import write_standin_models

# a process-wide CPU arena of 4 MiB, used only by sessions that opt in: the stand-in swapper runs batch 1 and 2 in
# it and fails to allocate at batch 8, with ONNX Runtime's own out-of-memory error
ARENA_BYTES = 4 * 1024 * 1024
_arena_registered: List[bool] = []


@pytest.fixture(scope='module')
def swapper_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
	directory = tmp_path_factory.mktemp('batch_processor')
	return ensure_dynamic_batch(write_standin_models(directory, ['inswapper_128'])[0])


@pytest.fixture(scope='module')
def swapper(swapper_path: Path) -> ModelSession:
	return create_session('inswapper_128', swapper_path, provider_list(['cpu']))


@pytest.fixture(scope='module')
def small_arena_session(swapper_path: Path) -> onnxruntime.InferenceSession:
	if not _arena_registered:
		memory_info = onnxruntime.OrtMemoryInfo('Cpu', onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, onnxruntime.OrtMemType.DEFAULT)
		onnxruntime.create_and_register_allocator(memory_info, onnxruntime.OrtArenaCfg(ARENA_BYTES, 0, -1, -1))
		_arena_registered.append(True)
	options = onnxruntime.SessionOptions()
	options.add_session_config_entry('session.use_env_allocators', '1')
	options.log_severity_level = 4
	return onnxruntime.InferenceSession(str(swapper_path), sess_options=options, providers=['CPUExecutionProvider'])





def swapper_feed(batch: int, seed: int = 0) -> Dict[str, np.ndarray]:
	generator = np.random.default_rng(seed)
	return {
		'target': generator.random((batch, 3, 128, 128), dtype=np.float32),
		'source': generator.standard_normal((batch, 512)).astype(np.float32)
	}


def one_by_one(session: ModelSession, feed: Dict[str, np.ndarray]) -> np.ndarray:
	count = len(feed['target'])
	return np.concatenate([session.run({name: value[index:index + 1] for name, value in feed.items()})[0] for index in range(count)])


def test_items_are_split_into_batches_in_order() -> None:
	seen: List[int] = []

	def run(items: List[int]) -> List[int]:
		seen.append(len(items))
		return [item * 10 for item in items]

	processor = BatchProcessor(run, max_batch=4, free_memory_fn=lambda: None)
	assert processor.process(list(range(10))) == [item * 10 for item in range(10)]
	assert seen == [4, 4, 2]
	assert processor.stats.calls == 3 and processor.stats.items == 10
	assert processor.stats.mean_batch_size == pytest.approx(10 / 3)
	assert processor.process([]) == []


def test_batch_size_follows_free_memory_and_per_item_cost() -> None:
	free = {'bytes': 10_000}
	processor = BatchProcessor(lambda items: items, per_item_bytes=1_000, max_batch=64, free_memory_fn=lambda: free['bytes'])
	# 60 % of the free memory: 6 items
	assert processor.batch_size() == 6
	free['bytes'] = 10 ** 12
	assert processor.batch_size() == 64
	free['bytes'] = 10
	assert processor.batch_size() == 1
	# without a device (free memory unknown) only max_batch limits
	assert BatchProcessor(lambda items: items, per_item_bytes=1_000, max_batch=8, free_memory_fn=lambda: None).batch_size() == 8


def test_batched_feed_equals_one_by_one(swapper: ModelSession) -> None:
	feed = swapper_feed(11, seed=4)
	processor = BatchProcessor(swapper.run, max_batch=4, free_memory_fn=lambda: None, name='swapper')
	outputs = processor.process_feed(feed)
	assert outputs[0].shape == (11, 3, 128, 128)
	np.testing.assert_allclose(outputs[0], one_by_one(swapper, feed), rtol=1e-5, atol=1e-5)
	assert processor.stats.calls == 3


def test_io_binding_buffers_are_not_aliased_across_batches(swapper: ModelSession) -> None:
	"""A BoundRunner hands back one buffer per shape; three calls of batch 4 must still give three different parts."""
	from facefusion.inference.io_binding import BoundRunner
	runner = BoundRunner(swapper, device='cpu')
	feed = swapper_feed(12, seed=8)
	outputs = BatchProcessor(runner.run, max_batch=4, free_memory_fn=lambda: None).process_feed(feed)
	np.testing.assert_allclose(outputs[0], one_by_one(swapper, feed), rtol=1e-5, atol=1e-5)
	whole = BatchProcessor(runner.run, max_batch=16, free_memory_fn=lambda: None).process_feed(feed)
	np.testing.assert_allclose(whole[0], outputs[0], rtol=1e-6, atol=1e-6)


def test_real_onnxruntime_out_of_memory_halves_and_loses_nothing(small_arena_session: onnxruntime.InferenceSession, swapper: ModelSession, debug_records: List[logging.LogRecord]) -> None:
	def run(feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
		return small_arena_session.run(None, feed)

	feed = swapper_feed(10, seed=5)
	# the arena really is too small for 8: the failure is ONNX Runtime's own
	with pytest.raises(Exception) as failure:
		run(swapper_feed(8))
	assert is_out_of_memory(failure.value)
	processor = BatchProcessor(run, max_batch=8, free_memory_fn=lambda: None, name='swapper')
	outputs = processor.process_feed(feed)
	np.testing.assert_allclose(outputs[0], one_by_one(swapper, feed), rtol=1e-5, atol=1e-5)
	# how far it must go down depends on what the shared arena already holds: 4 or 2
	assert processor.stats.oom_retries >= 1
	assert processor.ceiling <= 4
	assert processor.stats.items == 10
	assert any('out of memory at batch 8' in record.getMessage() for record in debug_records)
	# the lowered limit sticks: the next frame starts at the size that worked
	retries = processor.stats.oom_retries
	processor.process_feed(swapper_feed(4, seed=6))
	assert processor.stats.oom_retries == retries


class LimitedSession:
	"""A real session behind a memory limit of our own: above max_items it raises the error type given."""

	def __init__(self, session: ModelSession, max_items: int, error: Exception) -> None:
		self.session = session
		self.max_items = max_items
		self.error = error
		self.calls: List[int] = []

	def run(self, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
		size = len(feed['target'])
		self.calls.append(size)
		if size > self.max_items:
			raise self.error
		return self.session.run(feed)


def onnxruntime_failure(message: str) -> Exception:
	from onnxruntime.capi.onnxruntime_pybind11_state import Fail
	return Fail(message)


@pytest.mark.parametrize('error', [
	RuntimeError('CUDA error: out of memory'),
	onnxruntime_failure('[ONNXRuntimeError] : 1 : FAIL : CUDA failure 2: out of memory'),
	onnxruntime_failure('[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer of size 123'),
	MemoryError()
])
def test_out_of_memory_of_every_kind_is_recovered(swapper: ModelSession, error: Exception) -> None:
	limited = LimitedSession(swapper, 3, error)
	feed = swapper_feed(9, seed=7)
	processor = BatchProcessor(limited.run, max_batch=16, free_memory_fn=lambda: None)
	outputs = processor.process_feed(feed)
	np.testing.assert_allclose(outputs[0], one_by_one(swapper, feed), rtol=1e-5, atol=1e-5)
	# 16 is cut to 9 items, fails; 4 fails; 2 works from then on
	assert limited.calls[:3] == [9, 4, 2]
	assert processor.stats.oom_retries == 2


def test_out_of_memory_at_batch_one_is_raised(swapper: ModelSession) -> None:
	limited = LimitedSession(swapper, 0, MemoryError('nothing fits'))
	processor = BatchProcessor(limited.run, max_batch=4, free_memory_fn=lambda: None)
	with pytest.raises(MemoryError, match='nothing fits'):
		processor.process_feed(swapper_feed(3))
	assert limited.calls == [3, 1]


def test_other_errors_are_not_retried(swapper: ModelSession) -> None:
	limited = LimitedSession(swapper, 0, ValueError('bad input'))
	processor = BatchProcessor(limited.run, max_batch=4, free_memory_fn=lambda: None)
	with pytest.raises(ValueError, match='bad input'):
		processor.process_feed(swapper_feed(4))
	assert limited.calls == [4]
	assert processor.stats.oom_retries == 0


def test_out_of_memory_classification() -> None:
	class OutOfMemoryError(Exception):
		pass

	OutOfMemoryError.__module__ = 'cupy.cuda.memory'
	assert is_out_of_memory(OutOfMemoryError('Out of memory allocating 1,024 bytes'))
	assert is_out_of_memory(RuntimeError('CUDNN_STATUS_ALLOC_FAILED'))
	assert is_out_of_memory(onnxruntime_failure('Available memory of 655104 is smaller than requested bytes of 786432'))
	assert not is_out_of_memory(onnxruntime_failure('Invalid rank for input: target'))
	assert not is_out_of_memory(ValueError('out of memory'))
	assert not is_out_of_memory(KeyError('target'))


def test_wrong_result_count_is_an_error() -> None:
	processor = BatchProcessor(lambda items: items[:-1], max_batch=4, free_memory_fn=lambda: None)
	with pytest.raises(ValueError, match='3 results for 4 items'):
		processor.process([1, 2, 3, 4])


def test_stats_are_logged_at_debug(debug_records: List[logging.LogRecord]) -> None:
	processor = BatchProcessor(lambda items: items, max_batch=3, free_memory_fn=lambda: None, name='face_swapper')
	processor.process(list(range(7)))
	processor.log_stats()
	message = debug_records[-1].getMessage()
	assert debug_records[-1].levelno == logging.DEBUG
	assert message.startswith('face_swapper: 3 batches, 3 model calls, 7 items, mean batch 2.3')
	assert '0 out-of-memory retries' in message and 'ms per item' in message


def test_stats_count_what_a_fixed_batch_model_really_ran(tmp_path: Path, debug_records: List[logging.LogRecord]) -> None:
	"""The conformance inswapper stand-in hard-codes batch 1 in its graph: handed 7 items in calls of 3, it runs
	7 model calls of one item, and the log must not claim a mean batch of 2.3."""
	session = create_session('inswapper_128', write_scale_model_fixed(tmp_path / 'fixed.onnx'), provider_list(['cpu']))
	assert session.fixed_batch
	processor = BatchProcessor(session.run_batch, max_batch=3, free_memory_fn=lambda: None, name='face_swapper', model_batch=1 if session.fixed_batch else None)
	outputs = processor.process_feed({'input': np.arange(28, dtype=np.float32).reshape(7, 4)})
	np.testing.assert_array_equal(outputs[0], np.arange(28, dtype=np.float32).reshape(7, 4) * 2)
	assert processor.stats.calls == 3 and processor.stats.model_calls == 7
	assert processor.stats.mean_batch_size == 1.0
	processor.log_stats()
	message = debug_records[-1].getMessage()
	assert 'mean batch 1.0 (largest 1' in message and 'one item per model call' in message


def write_scale_model_fixed(path: Path) -> Path:
	"""output = input * 2 with the batch fixed at 1."""
	from onnx import TensorProto, helper, save
	graph = helper.make_graph(
		[helper.make_node('Mul', ['input', 'two'], ['output'])], 'fixed',
		[helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 4])],
		[helper.make_tensor_value_info('output', TensorProto.FLOAT, [1, 4])],
		[helper.make_tensor('two', TensorProto.FLOAT, [1], [2.0])]
	)
	model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
	model.ir_version = 8
	save(model, str(path))
	return path


def test_per_item_estimate_ignores_the_batch_axis() -> None:
	estimate = estimate_per_item_bytes([['batch', 3, 128, 128], ['batch', 512]], [['batch', 3, 128, 128]], activation_factor=1)
	assert estimate == (3 * 128 * 128 * 2 + 512) * 4
