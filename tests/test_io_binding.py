"""IO binding through ONNX Runtime's CPU device path: same numbers as session.run, output buffers reused per shape;
the pointer-binding calls the CUDA path makes, run here against host memory; CuPy inputs on a lent GPU."""
from __future__ import annotations

from pathlib import Path

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
	first = runner.run(swapper_feed(4, seed=1))[0]
	first_values = first.copy()
	second = runner.run(swapper_feed(4, seed=2))[0]
	# the same buffer, overwritten by the second call: no allocation per call
	assert second is first
	assert not np.array_equal(second, first_values)
	other_shape = runner.run(swapper_feed(2, seed=3))[0]
	assert other_shape is not first and other_shape.shape[0] == 2
	assert runner.run(swapper_feed(4, seed=4))[0] is first
	owned = runner.run(swapper_feed(4, seed=5), copy=True)[0]
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
	first = runner.run({'x': rows})[0]
	np.testing.assert_array_equal(first, rows * 2)
	second = runner.run({'x': rows + 1})[0]
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
	outputs = runner.run({name: cupy.asarray(value) for name, value in feed.items()})
	assert isinstance(outputs[0], cupy.ndarray)
	again = runner.run({name: cupy.asarray(value) for name, value in feed.items()})
	assert again[0].data.ptr == outputs[0].data.ptr
	np.testing.assert_allclose(cupy.asnumpy(outputs[0]), cpu_session.run(feed)[0], rtol=1e-3, atol=1e-3)
