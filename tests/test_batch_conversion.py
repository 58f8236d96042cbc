"""Fixed batch -> dynamic batch conversion: the inswapper stand-in converts and agrees item for item; graphs that
hard-code the batch inside are refused (and run one by one), never silently batched."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import List

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from facefusion.inference import batch_conversion
from facefusion.inference.batch_conversion import convert_dynamic_batch, ensure_dynamic_batch
from facefusion.testing.standin_models import inswapper_emap, write_standin_models


def cpu_session(path: Path) -> onnxruntime.InferenceSession:
	return onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])


def digest(path: Path) -> str:
	return hashlib.sha256(path.read_bytes()).hexdigest()


def save(graph: onnx.GraphProto, path: Path) -> Path:
	model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
	model.ir_version = 8
	onnx.checker.check_model(model)
	onnx.save(model, str(path))
	return path


def flatten_model(path: Path) -> Path:
	"""x [1,3,4,4] -> Reshape [1, 48] -> MatMul [48, 8] -> y [1, 8]: the batch is hard-coded in the Reshape target,
	but "copy the input's batch" (0) fixes it."""
	weights = np.random.default_rng(3).standard_normal((48, 8)).astype(np.float32)
	graph = helper.make_graph(
		[
			helper.make_node('Reshape', ['x', 'shape'], ['flat']),
			helper.make_node('MatMul', ['flat', 'weights'], ['y'])
		],
		'flatten',
		[helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 4, 4])],
		[helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 8])],
		[numpy_helper.from_array(np.array([1, 48], np.int64), 'shape'), numpy_helper.from_array(weights, 'weights')]
	)
	return save(graph, path)


def transposed_reshape_model(path: Path) -> Path:
	"""x [1,6] -> Reshape [1,2,3] -> Transpose [1,0,2] -> Reshape [1,6]: the 1 that the last Reshape hard-codes is not
	the batch any more after the transpose, so no rewrite can save it; batched it fails."""
	graph = helper.make_graph(
		[
			helper.make_node('Reshape', ['x', 'split'], ['grid']),
			helper.make_node('Transpose', ['grid'], ['swapped'], perm=[1, 0, 2]),
			helper.make_node('Reshape', ['swapped', 'merge'], ['y'])
		],
		'transposed',
		[helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 6])],
		[helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 6])],
		[numpy_helper.from_array(np.array([1, 2, 3], np.int64), 'split'), numpy_helper.from_array(np.array([1, 6], np.int64), 'merge')]
	)
	return save(graph, path)


def batch_mixing_model(path: Path) -> Path:
	"""y = x - mean(x over every axis): at batch 1 a per-item centring, batched it silently mixes the items (no
	error, no shape change: only comparing values finds it)."""
	graph = helper.make_graph(
		[
			helper.make_node('ReduceMean', ['x'], ['mean'], keepdims=1),
			helper.make_node('Sub', ['x', 'mean'], ['y'])
		],
		'mixing',
		[helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 4])],
		[helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 4])]
	)
	return save(graph, path)





@pytest.fixture(scope='module')
def inswapper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
	directory = tmp_path_factory.mktemp('inswapper')
	write_standin_models(directory, ['inswapper_128'])
	return directory


def test_inswapper_converts_beside_the_original_and_agrees_item_for_item(inswapper_dir: Path) -> None:
	original = inswapper_dir / 'inswapper_128.onnx'
	before = digest(original)
	assert cpu_session(original).get_inputs()[0].shape[0] == 1
	result = convert_dynamic_batch(original)
	assert result.converted
	assert result.path == inswapper_dir / 'inswapper_128.dynamic_batch.onnx'
	assert digest(original) == before
	converted = cpu_session(result.path)
	assert all(isinstance(item.shape[0], str) for item in converted.get_inputs())
	assert isinstance(converted.get_outputs()[0].shape[0], str)
	# FaceFusion reads inswapper's emap as the last initializer: the copy must keep it there
	model = onnx.load(str(result.path))
	np.testing.assert_array_equal(numpy_helper.to_array(model.graph.initializer[-1]), inswapper_emap())
	generator = np.random.default_rng(11)
	target = generator.random((5, 3, 128, 128), dtype=np.float32)
	source = generator.standard_normal((5, 512)).astype(np.float32)
	batched = converted.run(None, {'target': target, 'source': source})[0]
	reference = cpu_session(original)
	one_by_one = np.concatenate([reference.run(None, {'target': target[index:index + 1], 'source': source[index:index + 1]})[0] for index in range(5)])
	assert batched.shape == (5, 3, 128, 128)
	np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-5)


def test_second_call_uses_the_cached_copy_without_verifying(inswapper_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	original = inswapper_dir / 'inswapper_128.onnx'
	first = ensure_dynamic_batch(original)

	def no_verification(*arguments: object) -> None:
		raise AssertionError('a cached verdict must not be verified again')

	monkeypatch.setattr(batch_conversion, 'verify_batched', no_verification)
	monkeypatch.setattr(batch_conversion, 'run_one_by_one', no_verification)
	# in this process the verdict is remembered
	assert convert_dynamic_batch(original).path == first
	# a new process (nothing remembered) reads the record beside the copy
	monkeypatch.setattr(batch_conversion, '_verdicts', {})
	result = convert_dynamic_batch(original)
	assert result.converted and result.path == first
	assert result.reason.startswith('cached')


def test_the_verdict_is_cached_by_the_model_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	original = write_standin_models(tmp_path, ['inswapper_128'])[0]
	assert convert_dynamic_batch(original).converted
	record = json.loads((tmp_path / 'inswapper_128.dynamic_batch.json').read_text())
	assert record['source_sha256'] == hashlib.sha256(original.read_bytes()).hexdigest()
	# touched (a copy, a checkout): same bytes, new modification time -> the cached verdict holds
	monkeypatch.setattr(batch_conversion, '_verdicts', {})
	stat = original.stat()
	os.utime(original, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
	assert convert_dynamic_batch(original).reason.startswith('cached')
	# other bytes of the same size -> verified again
	monkeypatch.setattr(batch_conversion, '_verdicts', {})
	model = onnx.load(str(original))
	tensor = next(tensor for tensor in model.graph.initializer if tensor.data_type == TensorProto.FLOAT and numpy_helper.to_array(tensor).size > 4)
	values = numpy_helper.to_array(tensor).copy()
	values.flat[0] += 1.0
	tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
	size = original.stat().st_size
	onnx.save(model, str(original))
	assert original.stat().st_size == size
	result = convert_dynamic_batch(original)
	assert result.converted and not result.reason.startswith('cached')


def test_conformance_inswapper_with_shared_unit_reshape_targets_runs_batched(tmp_path: Path) -> None:
	"""The conformance inswapper_128 stand-in reshapes its style vectors with a [1, 256, 1, 1] target shared by two
	Reshape nodes each: converted, batch 3 gives exactly what three calls of one give."""
	# the conformance kit sits beside the project (shared/conformance), in CI as here
	source = Path(__file__).resolve().parents[2] / 'shared' / 'conformance' / 'models' / 'inswapper_128.onnx'
	if not source.is_file():
		pytest.skip(f'the conformance kit is not beside the project: {source} is missing')
	result = convert_dynamic_batch(source, cache_dir=tmp_path)
	assert result.converted, result.reason
	assert 'Reshape' in result.reason and result.max_difference == 0.0
	original = onnxruntime.InferenceSession(str(source), providers=['CPUExecutionProvider'])
	batched = onnxruntime.InferenceSession(str(result.path), providers=['CPUExecutionProvider'])
	generator = np.random.default_rng(5)
	target = generator.random((3, 3, 128, 128), dtype=np.float32)
	embedding = generator.standard_normal((3, 512)).astype(np.float32)
	together = batched.run(None, {'target': target, 'source': embedding})[0]
	one_by_one = np.concatenate([original.run(None, {'target': target[index:index + 1], 'source': embedding[index:index + 1]})[0] for index in range(3)])
	np.testing.assert_array_equal(together, one_by_one)


def test_already_dynamic_model_is_returned_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	"""No copy is made; the verdict is recorded, so that the next run does not parse the model again."""
	original = write_standin_models(tmp_path, ['simswap_256'])[0]
	assert ensure_dynamic_batch(original) == original
	assert sorted(path.name for path in tmp_path.iterdir()) == ['simswap_256.dynamic_batch.json', 'simswap_256.hash', 'simswap_256.onnx']
	monkeypatch.setattr(batch_conversion, '_verdicts', {})
	import onnx

	def no_parsing(*arguments: object, **keywords: object) -> None:
		raise AssertionError('a recorded verdict must not parse the model again')
	monkeypatch.setattr(onnx, 'load', no_parsing)
	assert ensure_dynamic_batch(original) == original


def test_reshape_with_a_hard_coded_batch_is_rewritten_and_verified(tmp_path: Path) -> None:
	original = flatten_model(tmp_path / 'flatten.onnx')
	result = convert_dynamic_batch(original)
	assert result.converted, result.reason
	assert 'Reshape' in result.reason
	rows = np.random.default_rng(5).random((4, 3, 4, 4), dtype=np.float32)
	batched = cpu_session(result.path).run(None, {'x': rows})[0]
	reference = cpu_session(original)
	expected = np.concatenate([reference.run(None, {'x': rows[index:index + 1]})[0] for index in range(4)])
	np.testing.assert_allclose(batched, expected, rtol=1e-5, atol=1e-5)


def test_graph_that_cannot_be_batched_is_refused_and_runs_one_by_one(tmp_path: Path, debug_records: List[logging.LogRecord]) -> None:
	original = transposed_reshape_model(tmp_path / 'transposed.onnx')
	before = digest(original)
	result = convert_dynamic_batch(original)
	assert not result.converted
	assert result.path == original
	assert 'hard-codes its batch' in result.reason
	assert digest(original) == before
	assert not (tmp_path / 'transposed.dynamic_batch.onnx').exists()
	messages = [record.getMessage() for record in debug_records if record.levelno == logging.DEBUG]
	assert any('transposed.onnx' in message and 'one item at a time' in message for message in messages)
	# the refusal is remembered: the next call answers from the record
	assert ensure_dynamic_batch(original) == original


def test_silent_batch_mixing_is_caught_by_comparing_values(tmp_path: Path) -> None:
	original = batch_mixing_model(tmp_path / 'mixing.onnx')
	result = convert_dynamic_batch(original)
	assert not result.converted
	assert 'differs from the one-by-one run' in result.reason


def test_cache_folder_is_used_when_given_or_when_the_model_folder_is_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	models = tmp_path / 'models'
	original = write_standin_models(models, ['inswapper_128'])[0]
	cache = tmp_path / 'cache'
	assert ensure_dynamic_batch(original, cache) == cache / 'inswapper_128.dynamic_batch.onnx'
	monkeypatch.setattr(batch_conversion.os, 'access', lambda path, mode: False)
	monkeypatch.setattr(batch_conversion, 'PROJECT_DIR', tmp_path / 'project')
	assert ensure_dynamic_batch(original) == tmp_path / 'project' / '.caches' / 'inswapper_128.dynamic_batch.onnx'
	assert not (models / 'inswapper_128.dynamic_batch.onnx').exists()


def test_session_on_the_converted_copy_batches_instead_of_looping(inswapper_dir: Path) -> None:
	from facefusion.inference.providers import provider_list
	from facefusion.inference.session import create_session
	original = inswapper_dir / 'inswapper_128.onnx'
	fixed = create_session('inswapper_128', original, provider_list(['cpu']))
	dynamic = create_session('inswapper_128', ensure_dynamic_batch(original), provider_list(['cpu']))
	assert fixed.fixed_batch and not dynamic.fixed_batch
	generator = np.random.default_rng(2)
	feed = {'target': generator.random((3, 3, 128, 128), dtype=np.float32), 'source': generator.standard_normal((3, 512)).astype(np.float32)}
	np.testing.assert_allclose(dynamic.run_batch(feed)[0], fixed.run_batch(feed)[0], rtol=1e-5, atol=1e-5)



# --- TensorRT shape profiles for the converted model ----------------------------------------------------------------


def test_trt_profiles_pin_the_batch_range_of_every_input(inswapper_dir: Path) -> None:
	from facefusion.inference.trt_profiles import profile_shapes, read_model_inputs
	converted = ensure_dynamic_batch(inswapper_dir / 'inswapper_128.onnx')
	profile = profile_shapes(read_model_inputs(converted), max_batch=32, opt_batch=16)
	assert profile == {
		'trt_profile_min_shapes': 'target:1x3x128x128,source:1x512',
		'trt_profile_opt_shapes': 'target:16x3x128x128,source:16x512',
		'trt_profile_max_shapes': 'target:32x3x128x128,source:32x512'
	}
	# a fixed-batch file needs converting first, and the CLI's 1..64 range holds
	with pytest.raises(ValueError, match='ensure_dynamic_batch'):
		profile_shapes(read_model_inputs(inswapper_dir / 'inswapper_128.onnx'), max_batch=8)
	assert profile_shapes(read_model_inputs(inswapper_dir / 'inswapper_128.onnx'), max_batch=1)['trt_profile_max_shapes'] == 'target:1x3x128x128,source:1x512'
	with pytest.raises(ValueError, match='1..64'):
		profile_shapes(read_model_inputs(converted), max_batch=65)


def test_trt_provider_entries_are_tensorrt_cuda_cpu_with_fp16_and_caches(inswapper_dir: Path, tmp_path: Path) -> None:
	from facefusion.inference.trt_profiles import trt_provider_entries
	converted = ensure_dynamic_batch(inswapper_dir / 'inswapper_128.onnx')
	entries = trt_provider_entries(converted, max_batch=16, device_id='0', cache_dir=tmp_path / '.caches')
	assert [name for name, _ in entries] == ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
	options = entries[0][1]
	assert options['trt_fp16_enable'] is True
	assert options['trt_engine_cache_enable'] and options['trt_timing_cache_enable']
	assert options['trt_engine_cache_path'] == str(tmp_path / '.caches') == options['trt_timing_cache_path']
	assert options['trt_profile_max_shapes'] == 'target:16x3x128x128,source:16x512'
	assert (tmp_path / '.caches').is_dir()
	# a model the conversion refused (still fixed at 1) gets an engine for batch 1 alone
	fixed_options = trt_provider_entries(inswapper_dir / 'inswapper_128.onnx', max_batch=16, cache_dir=tmp_path / '.caches')[0][1]
	assert fixed_options['trt_profile_max_shapes'] == 'target:1x3x128x128,source:1x512'
	assert fixed_options['trt_profile_opt_shapes'] == 'target:1x3x128x128,source:1x512'


def test_trt_session_without_tensorrt_warns_warms_up_and_runs(inswapper_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debug_records: List[logging.LogRecord]) -> None:
	from facefusion.inference import trt_profiles
	converted = ensure_dynamic_batch(inswapper_dir / 'inswapper_128.onnx')
	warnings: List[str] = []
	monkeypatch.setattr(trt_profiles, 'warn_once', lambda key, message: warnings.append(message))
	session = trt_profiles.create_trt_session('inswapper_128', converted, max_batch=4, cache_dir=tmp_path)
	assert session.active_providers == ['CPUExecutionProvider']
	assert any('TensorRT is not available' in message for message in warnings)
	# no engine is built on the CPU, so no build line and no marker
	assert not any('building TensorRT engine' in record.getMessage() for record in debug_records)
	assert not list(tmp_path.glob('*.ready'))
	assert any('warm-up of inswapper_128' in record.getMessage() for record in debug_records)


def test_trt_build_line_only_when_onnx_runtime_took_tensorrt(inswapper_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debug_records: List[logging.LogRecord]) -> None:
	"""onnxruntime-gpu lists TensorRT even where its libraries do not load; the session then runs on CUDA / the CPU
	and no engine is built: the 'building' line (minutes of waiting announced) must not appear then."""
	from facefusion.inference import trt_profiles
	converted = ensure_dynamic_batch(inswapper_dir / 'inswapper_128.onnx')
	monkeypatch.setattr(trt_profiles, 'tensorrt_available', lambda: True)
	session = trt_profiles.create_trt_session('inswapper_128', converted, max_batch=4, cache_dir=tmp_path)
	assert trt_profiles.TRT_PROVIDER not in session.active_providers
	assert not any('building TensorRT engine' in record.getMessage() for record in debug_records)
	assert not list(tmp_path.glob('*.ready'))


@pytest.mark.gpu
@pytest.mark.skipif('TensorrtExecutionProvider' not in onnxruntime.get_available_providers(), reason='needs onnxruntime-gpu with TensorRT')
def test_trt_build_line_is_logged_when_an_engine_must_be_built(inswapper_dir: Path, tmp_path: Path, debug_records: List[logging.LogRecord]) -> None:
	from facefusion.inference import trt_profiles
	converted = ensure_dynamic_batch(inswapper_dir / 'inswapper_128.onnx')
	session = trt_profiles.create_trt_session('inswapper_128', converted, max_batch=4, cache_dir=tmp_path)
	if trt_profiles.TRT_PROVIDER not in session.active_providers:
		pytest.skip('the TensorRT libraries did not load')
	build_lines = [record for record in debug_records if 'building TensorRT engine' in record.getMessage()]
	assert len(build_lines) == 1 and build_lines[0].levelno == logging.INFO
	assert 'batch 1..4' in build_lines[0].getMessage()
	# the marker written by that build silences the line
	debug_records.clear()
	trt_profiles.create_trt_session('inswapper_128', converted, max_batch=4, cache_dir=tmp_path)
	assert not any('building TensorRT engine' in record.getMessage() for record in debug_records)


def test_warm_up_runs_every_batch_size_and_checks_outputs(inswapper_dir: Path) -> None:
	from facefusion.inference.providers import provider_list
	from facefusion.inference.session import create_session
	from facefusion.inference.trt_profiles import warm_up
	session = create_session('inswapper_128', ensure_dynamic_batch(inswapper_dir / 'inswapper_128.onnx'), provider_list(['cpu']))
	timings, finite = warm_up(session, [1, 8, 4, 8])
	assert sorted(timings) == [1, 4, 8] and finite


@pytest.mark.parametrize('variant, rewrite', [('pinned', 'rebuilt from Shape(input)[0]'), ('heavy-pinned', 'Reshape targets [1, ...] -> [0, ...]')])
def test_pinned_standin_swapper_runs_batched_with_equal_outputs(tmp_path: Path, variant: str, rewrite: str) -> None:
	"""The pinned stand-ins hard-code batch 1 in Reshape targets (constant, shared, and Concat-built): the
	conversion rewrites them and batch 4 gives exactly what four calls of one give."""
	original = write_standin_models(tmp_path, ['inswapper_128'], variant=variant)[0]
	plain = onnx.load(str(original))
	batch_conversion.make_batch_dynamic(plain)
	generator = np.random.default_rng(11)
	target = generator.random((4, 3, 128, 128), dtype=np.float32)
	embedding = generator.standard_normal((4, 512)).astype(np.float32)
	with pytest.raises(Exception):
		# without the rewrite the graph cannot run a batch
		onnxruntime.InferenceSession(plain.SerializeToString(), providers=['CPUExecutionProvider']).run(None, {'target': target, 'source': embedding})
	result = convert_dynamic_batch(original)
	assert result.converted and rewrite in result.reason, result.reason
	batched = onnxruntime.InferenceSession(str(result.path), providers=['CPUExecutionProvider'])
	single = onnxruntime.InferenceSession(str(original), providers=['CPUExecutionProvider'])
	together = batched.run(None, {'target': target, 'source': embedding})[0]
	one_by_one = np.concatenate([single.run(None, {'target': target[index:index + 1], 'source': embedding[index:index + 1]})[0] for index in range(4)])
	np.testing.assert_allclose(together, one_by_one, rtol=0, atol=1e-5)


def write_slice_expand_model(path: Path) -> Path:
	"""x [1, 4] -> Slice axis 0 [0:1] -> Expand to [1, 4] (+ a [1, 4] bias): batch 1 hard-coded in Slice and Expand."""
	graph = helper.make_graph(
		[
			helper.make_node('Slice', ['x', 'starts', 'ends', 'axes'], ['head']),
			helper.make_node('Expand', ['bias', 'shape'], ['wide']),
			helper.make_node('Add', ['head', 'wide'], ['y'])
		],
		'slice_expand',
		[helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 4])],
		[helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 4])],
		[
			numpy_helper.from_array(np.array([0], np.int64), 'starts'),
			numpy_helper.from_array(np.array([1], np.int64), 'ends'),
			numpy_helper.from_array(np.array([0], np.int64), 'axes'),
			numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(1, 4), 'bias'),
			numpy_helper.from_array(np.array([1, 4], np.int64), 'shape'),
		]
	)
	model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
	model.ir_version = 8
	onnx.save(model, str(path))
	return path


def test_slice_and_expand_that_hard_code_batch_one_are_rebuilt(tmp_path: Path) -> None:
	"""Batched, the plain edit slices the batch down to one item; the batch-shape rewrite keeps every item."""
	result = convert_dynamic_batch(write_slice_expand_model(tmp_path / 'slice_expand.onnx'))
	assert result.converted and 'Shape(input)[0]' in result.reason, result.reason
	rows = np.arange(12, dtype=np.float32).reshape(3, 4)
	output = onnxruntime.InferenceSession(str(result.path), providers=['CPUExecutionProvider']).run(None, {'x': rows})[0]
	np.testing.assert_array_equal(output, rows + np.arange(4, dtype=np.float32))


def test_rewritten_inswapper_keeps_its_emap_as_the_last_initializer(tmp_path: Path) -> None:
	"""The swapper reads the inswapper's emap as the graph's last initializer: added shape constants go first."""
	original = write_standin_models(tmp_path, ['inswapper_128'], variant='pinned')[0]
	result = convert_dynamic_batch(original)
	assert result.converted
	last = onnx.load(str(result.path)).graph.initializer[-1]
	np.testing.assert_array_equal(numpy_helper.to_array(last), inswapper_emap())
