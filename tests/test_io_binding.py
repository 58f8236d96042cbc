"""IO binding through ONNX Runtime's CPU device path: same numbers as session.run, output buffers reused per shape;
the pointer-binding calls the CUDA path makes, run here against host memory; CuPy inputs on a lent GPU."""
from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from facefusion.gpu.device import gpu_available
from facefusion.inference.batch_conversion import ensure_dynamic_batch
from facefusion.inference.io_binding import BoundRunner
from facefusion.inference.providers import provider_list
from facefusion.inference.session import ModelSession, create_session
from facefusion.testing.standin_models import write_standin_models

requires_gpu = pytest.mark.skipif(not gpu_available(), reason='needs CuPy and a working CUDA device')


@pytest.fixture(scope='module')
def inswapper_paths(tmp_path_factory: pytest.TempPathFactory) -> tuple:
	directory = tmp_path_factory.mktemp('io_binding')
	original = write_standin_models(directory, ['inswapper_128'])[0]
	return original, ensure_dynamic_batch(original)


@pytest.fixture(scope='module')
def dynamic_session(inswapper_paths: tuple) -> ModelSession:
	return create_session('inswapper_128', inswapper_paths[1], provider_list(['cpu']))


def swapper_feed(batch: int, seed: int = 0) -> dict:
	generator = np.random.default_rng(seed)
	return {
		'target': generator.random((batch, 3, 128, 128), dtype=np.float32),
		'source': generator.standard_normal((batch, 512)).astype(np.float32)
	}


def write_model(path: Path, output_shape: list, input_type: int = TensorProto.FLOAT) -> ModelSession:
	"""y = x * 2 (cast to float first), with the output shape declared as given (possibly wrong or unknowable)."""
	graph = helper.make_graph(
		[
			helper.make_node('Cast', ['x'], ['x32'], to=TensorProto.FLOAT),
			helper.make_node('Mul', ['x32', 'two'], ['y'])
		],
		'double',
		[helper.make_tensor_value_info('x', input_type, ['batch', 4])],
		[helper.make_tensor_value_info('y', TensorProto.FLOAT, output_shape)],
		[helper.make_tensor('two', TensorProto.FLOAT, [1], [2.0])]
	)
	model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
	model.ir_version = 8
	onnx.save(model, str(path))
	return create_session('double', path, provider_list(['cpu']))


@pytest.mark.parametrize('by_pointer', [False, True])
def test_bound_run_equals_session_run_at_every_batch(dynamic_session: ModelSession, by_pointer: bool) -> None:
	runner = BoundRunner(dynamic_session, device='cpu', by_pointer=by_pointer)
	assert runner.device == 'cpu'
	for batch in (1, 4, 7):
		feed = swapper_feed(batch, seed=batch)
		expected = dynamic_session.run(feed)
		outputs = runner.run(feed)
		assert len(outputs) == len(expected)
		assert outputs[0].shape == (batch, 3, 128, 128)
		np.testing.assert_array_equal(outputs[0], expected[0])


def test_output_buffers_are_preallocated_and_reused_per_shape(dynamic_session: ModelSession) -> None:
	runner = BoundRunner(dynamic_session, device='cpu')
	first = runner.run(swapper_feed(4, seed=1), copy=False)[0]
	first_values = first.copy()
	second = runner.run(swapper_feed(4, seed=2), copy=False)[0]
	# the same buffer, overwritten by the second call: no allocation per call
	assert second is first
	assert not np.array_equal(second, first_values)
	other_shape = runner.run(swapper_feed(2, seed=3), copy=False)[0]
	assert other_shape is not first and other_shape.shape[0] == 2
	assert runner.run(swapper_feed(4, seed=4), copy=False)[0] is first
	owned = runner.run(swapper_feed(4, seed=5))[0]
	assert owned is not first
	np.testing.assert_array_equal(owned, first)


def test_inputs_are_cast_to_the_declared_type(tmp_path: Path) -> None:
	session = write_model(tmp_path / 'double.onnx', ['batch', 4], TensorProto.FLOAT16)
	runner = BoundRunner(session, device='cpu')
	rows = np.arange(12, dtype=np.float64).reshape(3, 4)
	np.testing.assert_array_equal(runner.run({'x': rows})[0], rows.astype(np.float32) * 2)


def test_unknown_output_shape_is_learned_on_the_first_call(tmp_path: Path) -> None:
	session = write_model(tmp_path / 'unknown.onnx', ['rows', 'columns'])
	runner = BoundRunner(session, device='cpu')
	assert runner.predict_output_shapes({'x': np.zeros((2, 4), np.float32)}) is None
	rows = np.arange(8, dtype=np.float32).reshape(2, 4)
	first = runner.run({'x': rows}, copy=False)[0]
	np.testing.assert_array_equal(first, rows * 2)
	second = runner.run({'x': rows + 1}, copy=False)[0]
	assert second is first
	np.testing.assert_array_equal(second, (rows + 1) * 2)


def test_a_wrong_shape_prediction_falls_back_once(tmp_path: Path) -> None:
	session = write_model(tmp_path / 'double.onnx', ['batch', 4])
	runner = BoundRunner(session, device='cpu')
	# as if the declared shapes were stale: ONNX Runtime refuses the buffer, the runner lets it allocate and learns
	runner.predict_output_shapes = lambda prepared: [(1, 4)]
	rows = np.arange(12, dtype=np.float32).reshape(3, 4)
	np.testing.assert_array_equal(runner.run({'x': rows})[0], rows * 2)
	assert list(runner.learned_shapes.values()) == [[(3, 4)]]
	np.testing.assert_array_equal(runner.run({'x': rows - 1})[0], (rows - 1) * 2)


def slow_tag_model(path: Path) -> ModelSession:
	"""y = x + (a long chain of no-op work): each call takes long enough that threads really overlap inside ONNX
	Runtime (which releases the GIL), and every output row is a function of its own input row only."""
	nodes = [helper.make_node('MatMul', ['x', 'eye'], ['h0'])]
	for index in range(40):
		nodes.append(helper.make_node('MatMul', ['h' + str(index), 'eye'], ['h' + str(index + 1)]))
	nodes.append(helper.make_node('Identity', ['h40'], ['y']))
	graph = helper.make_graph(
		nodes, 'slow_tag',
		[helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 256])],
		[helper.make_tensor_value_info('y', TensorProto.FLOAT, ['batch', 256])],
		[helper.make_tensor('eye', TensorProto.FLOAT, [256, 256], np.eye(256, dtype=np.float32).ravel().tolist())]
	)
	model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
	model.ir_version = 8
	onnx.save(model, str(path))
	return create_session('slow_tag', path, provider_list(['cpu']))


@pytest.mark.parametrize('by_pointer', [False, True])
def test_many_threads_through_one_runner_get_their_own_outputs(tmp_path: Path, by_pointer: bool) -> None:
	"""Process workers share one runner: the copy out of the shared output buffers must happen inside the lock, or
	thread B's run overwrites them while thread A still reads (a face of one frame pasted into another)."""
	runner = BoundRunner(slow_tag_model(tmp_path / 'slow_tag.onnx'), device='cpu', by_pointer=by_pointer)
	mismatches: list = []
	barrier = threading.Barrier(6)

	def work(worker: int) -> None:
		barrier.wait()
		for call in range(25):
			tag = float(worker * 1000 + call)
			output = runner.run_batch({'x': np.full((4, 256), tag, dtype=np.float32)})[0]
			if not np.all(output == tag):
				mismatches.append((worker, call, float(output.min()), float(output.max())))

	threads = [threading.Thread(target=work, args=(worker,)) for worker in range(6)]
	for thread in threads:
		thread.start()
	for thread in threads:
		thread.join()
	assert mismatches == []
	assert runner.calls == 6 * 25


def test_first_call_keeps_the_output_type_onnx_runtime_produced(tmp_path: Path) -> None:
	"""An int16 output of unknowable shape: the first call learns it; its copy must stay int16, not float32."""
	graph = helper.make_graph(
		[helper.make_node('Cast', ['x'], ['y'], to=TensorProto.INT16)],
		'int16_out',
		[helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 4])],
		[helper.make_tensor_value_info('y', TensorProto.INT16, ['rows', 'columns'])]
	)
	model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
	model.ir_version = 8
	onnx.save(model, str(tmp_path / 'int16.onnx'))
	session = create_session('int16', tmp_path / 'int16.onnx', provider_list(['cpu']))
	rows = np.array([[1.0, -2.0, 300.0, 40000.0]], dtype=np.float32)
	expected = session.session.run(None, {'x': rows})[0]
	for by_pointer in (False, True):
		runner = BoundRunner(session, device='cpu', by_pointer=by_pointer)
		for _ in range(2):
			output = runner.run({'x': rows})[0]
			assert output.dtype == expected.dtype == np.int16
			np.testing.assert_array_equal(output, expected)


def test_device_id_comes_from_the_session_providers(dynamic_session: ModelSession) -> None:
	"""--execution-device-ids 1: the session's CUDA provider runs on GPU 1, so must every pointer bound to it."""
	inner = dynamic_session.session
	on_gpu_one = SimpleNamespace(
		get_providers=lambda: ['CUDAExecutionProvider', 'CPUExecutionProvider'],
		get_provider_options=lambda: {'CUDAExecutionProvider': {'device_id': '1'}, 'CPUExecutionProvider': {}},
		get_inputs=inner.get_inputs, get_outputs=inner.get_outputs, io_binding=inner.io_binding
	)
	stand_in = ModelSession('inswapper_128', dynamic_session.path, on_gpu_one)
	assert stand_in.device_id == 1
	assert dynamic_session.device_id == 0
	runner = BoundRunner(stand_in, device='cuda' if gpu_available(1) else 'cpu')
	assert runner.device_id == (1 if runner.device == 'cuda' else 0)


def test_fixed_batch_model_runs_item_by_item(inswapper_paths: tuple) -> None:
	fixed = create_session('inswapper_128', inswapper_paths[0], provider_list(['cpu']))
	assert fixed.fixed_batch
	runner = BoundRunner(fixed, device='cpu')
	feed = swapper_feed(3, seed=9)
	np.testing.assert_allclose(runner.run_batch(feed)[0], fixed.run_batch(feed)[0], rtol=1e-6, atol=1e-6)


def test_missing_input_is_named(dynamic_session: ModelSession) -> None:
	with pytest.raises(ValueError, match='source'):
		BoundRunner(dynamic_session, device='cpu').run({'target': np.zeros((1, 3, 128, 128), np.float32)})


def test_cpu_session_defaults_to_the_cpu_device(dynamic_session: ModelSession) -> None:
	assert BoundRunner(dynamic_session).device == 'cpu'


@pytest.mark.gpu
@requires_gpu
def test_cupy_inputs_run_through_a_cpu_session(dynamic_session: ModelSession) -> None:
	"""What the lent GPU machines can do without onnxruntime-gpu: CuPy arrays in, host binding, same numbers."""
	import cupy
	feed = swapper_feed(4, seed=21)
	expected = dynamic_session.run(feed)[0]
	outputs = BoundRunner(dynamic_session, device='cpu').run({name: cupy.asarray(value) for name, value in feed.items()})
	np.testing.assert_array_equal(outputs[0], expected)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.skipif('CUDAExecutionProvider' not in onnxruntime.get_available_providers(), reason='needs onnxruntime-gpu')
def test_cuda_binding_by_device_pointer(inswapper_paths: tuple) -> None:
	import cupy
	cuda_session = create_session('inswapper_128', inswapper_paths[1], provider_list(['cuda']))
	cpu_session = create_session('inswapper_128', inswapper_paths[1], provider_list(['cpu']))
	runner = BoundRunner(cuda_session)
	assert runner.device == 'cuda'
	feed = swapper_feed(8, seed=22)
	outputs = runner.run({name: cupy.asarray(value) for name, value in feed.items()}, copy=False)
	assert isinstance(outputs[0], cupy.ndarray)
	again = runner.run({name: cupy.asarray(value) for name, value in feed.items()}, copy=False)
	assert again[0].data.ptr == outputs[0].data.ptr
	np.testing.assert_allclose(cupy.asnumpy(outputs[0]), cpu_session.run(feed)[0], rtol=1e-3, atol=1e-3)


class RecordingBinding:
	"""ONNX Runtime's IOBinding, counting the calls that end in cudaDeviceSynchronize()."""

	def __init__(self, binding: object) -> None:
		self.binding = binding
		self.device_synchronizations = 0

	def synchronize_inputs(self) -> None:
		self.device_synchronizations += 1
		self.binding.synchronize_inputs()

	def synchronize_outputs(self) -> None:
		self.device_synchronizations += 1
		self.binding.synchronize_outputs()

	def __getattr__(self, name: str) -> object:
		return getattr(self.binding, name)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.skipif('CUDAExecutionProvider' not in onnxruntime.get_available_providers(), reason='needs onnxruntime-gpu')
def test_cuda_runs_synchronise_streams_not_the_device_and_threads_keep_their_outputs(inswapper_paths: tuple) -> None:
	import cupy
	cuda_session = create_session('inswapper_128', inswapper_paths[1], provider_list(['cuda']))
	cpu_session = create_session('inswapper_128', inswapper_paths[1], provider_list(['cpu']))
	runner = BoundRunner(cuda_session)
	recording = RecordingBinding(runner.binding)
	runner.binding = recording
	feeds = [swapper_feed(4, seed=30 + worker) for worker in range(4)]
	expected = [cpu_session.run(feed)[0] for feed in feeds]
	failures: list = []

	def work(worker: int) -> None:
		for _ in range(10):
			output = cupy.asnumpy(runner.run({name: cupy.asarray(value) for name, value in feeds[worker].items()})[0])
			if not np.allclose(output, expected[worker], rtol=1e-3, atol=1e-3):
				failures.append(worker)

	threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
	for thread in threads:
		thread.start()
	for thread in threads:
		thread.join()
	assert failures == []
	assert recording.device_synchronizations == 0
