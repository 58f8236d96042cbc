"""The inference layer on real ONNX Runtime sessions built from small generated graphs."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from facefusion import logger as facefusion_logger
from facefusion.config import RunConfig
from facefusion.inference.manager import InferenceManager
from facefusion.inference.providers import available_execution_providers, provider_list
from facefusion.inference.session import create_session


def write_scale_model(path: Path, batch: Optional[int]) -> Path:
	"""out = input * 2 + sum over the features (so rows of a batch must stay apart)."""
	batch_dim: object = batch if batch is not None else 'batch'
	graph = helper.make_graph(
		[
			helper.make_node('Mul', ['input', 'two'], ['doubled']),
			helper.make_node('ReduceSum', ['input', 'axes'], ['total'], keepdims=1),
			helper.make_node('Add', ['doubled', 'total'], ['output'])
		],
		'scale',
		[helper.make_tensor_value_info('input', TensorProto.FLOAT, [batch_dim, 4])],
		[helper.make_tensor_value_info('output', TensorProto.FLOAT, [batch_dim, 4])],
		[helper.make_tensor('two', TensorProto.FLOAT, [1], [2.0]), helper.make_tensor('axes', TensorProto.INT64, [1], [1])]
	)
	model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
	model.ir_version = 9
	onnx.save(model, str(path))
	return path


def expected(rows: np.ndarray) -> np.ndarray:
	return rows * 2 + rows.sum(axis=1, keepdims=True)


@pytest.mark.parametrize('batch', [None, 1])
def test_run_batch_stacks_and_matches_per_item(tmp_path: Path, batch: Optional[int]) -> None:
	session = create_session('scale', write_scale_model(tmp_path / 'scale.onnx', batch), provider_list(['cpu']))
	assert session.fixed_batch is (batch == 1)
	rows = np.arange(12, dtype=np.float32).reshape(3, 4)
	output = session.run_batch({'input': rows})[0]
	assert output.shape == (3, 4)
	np.testing.assert_allclose(output, expected(rows))
	# a list of items is stacked the same way
	np.testing.assert_allclose(session.run_batch({'input': list(rows)})[0], expected(rows))


def test_run_batch_rejects_mismatched_batches(tmp_path: Path) -> None:
	session = create_session('scale', write_scale_model(tmp_path / 'scale.onnx', None), provider_list(['cpu']))
	with pytest.raises(ValueError):
		session.run_batch({'input': np.zeros((2, 4), np.float32), 'other': np.zeros((3, 4), np.float32)})


def test_provider_options_for_gpu_providers() -> None:
	entries = dict(provider_list(['tensorrt', 'cuda'], device_id='1', cache_dir=Path('.caches'), trt_fp16=True))
	assert entries['TensorrtExecutionProvider']['trt_fp16_enable'] is True
	assert entries['TensorrtExecutionProvider']['trt_engine_cache_path'] == '.caches'
	assert entries['CUDAExecutionProvider']['device_id'] == '1'
	# CPU is always the last resort
	assert list(entries)[-1] == 'CPUExecutionProvider'
	assert 'cpu' in available_execution_providers()


class ListHandler(logging.Handler):
	def __init__(self) -> None:
		super().__init__()
		self.messages: List[str] = []

	def emit(self, record: logging.LogRecord) -> None:
		self.messages.append(record.getMessage())


def test_fallback_from_cuda_is_reported_once(tmp_path: Path) -> None:
	if 'cuda' in available_execution_providers():
		pytest.skip('CUDA is available here, nothing falls back')
	model_path = write_scale_model(tmp_path / 'scale.onnx', None)
	handler = ListHandler()
	facefusion_logger.get_logger().addHandler(handler)
	facefusion_logger._warned_keys.clear()
	try:
		first = create_session('scale', model_path, provider_list(['cuda']))
		create_session('scale', model_path, provider_list(['cuda']))
	finally:
		facefusion_logger.get_logger().removeHandler(handler)
	# onnxruntime did not raise; the session runs on CPU and the fallback was said exactly once
	assert first.active_providers == ['CPUExecutionProvider']
	warnings = [message for message in handler.messages if 'CUDAExecutionProvider' in message]
	assert len(warnings) == 1
	np.testing.assert_allclose(first.run({'input': np.ones((1, 4), np.float32)})[0], expected(np.ones((1, 4), np.float32)))


@pytest.mark.parametrize('strategy, kept', [('strict', set()), ('moderate', {'fan_68_5'}), ('tolerant', {'fan_68_5', 'arcface_w600k_r50'})])
def test_memory_strategy_release(tmp_path: Path, strategy: str, kept: set) -> None:
	write_scale_model(tmp_path / 'fan_68_5.onnx', None)
	write_scale_model(tmp_path / 'arcface_w600k_r50.onnx', None)
	manager = InferenceManager(RunConfig(models_path=str(tmp_path), video_memory_strategy=strategy))
	first = manager.get('fan_68_5')
	assert manager.get('fan_68_5') is first
	manager.get('arcface_w600k_r50')
	manager.release_for_strategy(['arcface_w600k_r50'])
	assert set(manager.sessions) == kept


def test_cudnn_search_is_heuristic() -> None:
	"""EXHAUSTIVE benchmarks every algorithm for each new batch size: seconds of stall per size on early frames."""
	options = dict(provider_list(['cuda']))['CUDAExecutionProvider']
	assert options['cudnn_conv_algo_search'] == 'HEURISTIC'


@pytest.mark.parametrize('providers, use_trt, profiled', [(['tensorrt'], False, True), (['cpu'], True, True), (['cuda'], False, False), (['cpu'], False, False)])
def test_every_tensorrt_swapper_session_goes_through_the_profiled_builder(tmp_path: Path, providers: List[str], use_trt: bool, profiled: bool) -> None:
	"""`--execution-providers tensorrt` alone must not make a plain TensorRT session (no batch profile, fp16 off:
	an engine rebuild per batch size); the profiled builder warms the session up, which it logs."""
	from facefusion.testing.standin_models import write_standin_models
	write_standin_models(tmp_path, ['inswapper_128'])
	handler = ListHandler()
	log = facefusion_logger.get_logger()
	previous_level = log.level
	log.setLevel(logging.DEBUG)
	log.addHandler(handler)
	try:
		manager = InferenceManager(RunConfig(models_path=str(tmp_path), execution_providers=providers, face_swapper_use_trt=use_trt))
		session = manager.get('inswapper_128')
	finally:
		log.removeHandler(handler)
		log.setLevel(previous_level)
	assert manager.uses_trt_builder(use_trt) is profiled
	assert any('warm-up of inswapper_128' in message for message in handler.messages) is profiled
	assert session.run_batch({'target': np.zeros((2, 3, 128, 128), np.float32), 'source': np.zeros((2, 512), np.float32)})[0].shape == (2, 3, 128, 128)


# which CUDA major PyPI's onnxruntime-gpu wheels are built for (their [cuda] extra's nvidia-cuda-runtime, read from
# each release's metadata on 2026-12-01): 1.21 to 1.26 CUDA 12, 1.27 on CUDA 13; 1.20 has no [cuda] extra at all
ONNXRUNTIME_GPU_CUDA_MAJORS = {'1.20.2': None, '1.21.0': 12, '1.24.4': 12, '1.26.0': 12, '1.27.0': 13, '1.28.0': 13, '1.31.1': 13}


def test_gpu_extras_pair_onnxruntime_and_cupy_of_one_cuda_major() -> None:
	"""Each GPU extra admits only onnxruntime-gpu releases built for the CUDA major of its CuPy wheel (two CUDA runtimes
	in one process break IO binding's shared pointers), only releases whose [cuda,cudnn] extras bring the libraries,
	and no future major of onnxruntime-gpu."""
	import tomllib
	from packaging.requirements import Requirement
	extras = tomllib.loads((Path(__file__).resolve().parent.parent / 'pyproject.toml').read_text(encoding='utf-8'))['project']['optional-dependencies']
	for name, cuda_major in (('gpu', 13), ('gpu-cuda13', 13), ('gpu-cuda12', 12)):
		requirements = [Requirement(text) for text in extras[name]]
		cupy = [requirement.name for requirement in requirements if requirement.name.startswith('cupy-cuda')]
		assert cupy == ['cupy-cuda{}x'.format(cuda_major)], name
		runtime = next(requirement for requirement in requirements if requirement.name == 'onnxruntime-gpu')
		assert runtime.extras == {'cuda', 'cudnn'}, name
		admitted = {version for version in ONNXRUNTIME_GPU_CUDA_MAJORS if runtime.specifier.contains(version)}
		assert admitted and all(ONNXRUNTIME_GPU_CUDA_MAJORS[version] == cuda_major for version in admitted), (name, admitted)
		assert not runtime.specifier.contains('2.0.0'), name


def test_preloaded_sessions_load_once_beside_the_callers_own(tmp_path: Path, debug_records: List[logging.LogRecord]) -> None:
	"""A preload creates its sessions in a thread while the caller creates others; a session asked for by both loads
	once and is the same object; a model that cannot load is reported by the caller's own get(), not by the preload."""
	import threading

	from facefusion.errors import ModelUnavailableError
	from facefusion.testing.standin_models import write_standin_models
	write_standin_models(tmp_path, ['inswapper_128', 'arcface_w600k_r50', 'nsfw_1'])
	manager = InferenceManager(RunConfig(models_path=str(tmp_path)))
	manager.preload(['inswapper_128', 'nsfw_1', 'fan_68_5'])
	# the caller's own models meanwhile, and the preloaded one asked for from two threads at once
	asked = {}
	askers = [threading.Thread(target=lambda index=index: asked.__setitem__(index, manager.get('inswapper_128'))) for index in range(2)]
	for asker in askers:
		asker.start()
	recognizer = manager.get('arcface_w600k_r50')
	for asker in askers:
		asker.join()
	manager.wait_preloads()
	assert asked[0] is asked[1] is manager.get('inswapper_128') and recognizer is manager.get('arcface_w600k_r50')
	loads = [record.getMessage().split()[1] for record in debug_records if record.getMessage().startswith('session ')]
	assert sorted(loads) == ['arcface_w600k_r50', 'inswapper_128', 'nsfw_1']
	assert any('preloading fan_68_5 failed' in record.getMessage() for record in debug_records)
	with pytest.raises(ModelUnavailableError):
		manager.get('fan_68_5')
	manager.release()
	assert manager.sessions == {}
