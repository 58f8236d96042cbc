"""Downloads against a real HTTP server on 127.0.0.1 serving small generated ONNX models and their .hash files."""
from __future__ import annotations

import logging
import socket
import time
import zlib
from pathlib import Path
from typing import Dict, Iterator, List

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facefusion.errors import ModelUnavailableError
from facefusion.logger import get_logger
from facefusion.models import fetch, hashing, registry
from facefusion.models.download import ensure_models, force_download, model_path
from facefusion.models.registry import get_model

try:
	from http_server import ModelServer
except ImportError:
	from tests.http_server import ModelServer

DATA_DIR = Path(__file__).resolve().parent / 'data'


def make_model_bytes(name: str, floats: int) -> bytes:
	"""A valid ONNX graph (y = x + w) whose weight makes the file ``floats * 4`` bytes big, unique per name."""
	seed = zlib.crc32(name.encode())
	weight = np.random.default_rng(seed).standard_normal(floats).astype(np.float32)
	graph = helper.make_graph(
		[helper.make_node('Add', ['input', 'weight'], ['output'])], name,
		[helper.make_tensor_value_info('input', TensorProto.FLOAT, [floats])],
		[helper.make_tensor_value_info('output', TensorProto.FLOAT, [floats])],
		[numpy_helper.from_array(weight, 'weight')]
	)
	model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
	onnx.checker.check_model(model)
	return model.SerializeToString()


def crc(content: bytes) -> str:
	return format(zlib.crc32(content), '08x')


def closed_port() -> int:
	with socket.socket() as sock:
		sock.bind(('127.0.0.1', 0))
		return sock.getsockname()[1]


class Hosted:
	"""The server plus the bytes it serves per model name."""

	def __init__(self, server: ModelServer) -> None:
		self.server = server
		self.content: Dict[str, bytes] = {}

	def publish(self, name: str, floats: int = 60000, with_hash: bool = True) -> bytes:
		spec = get_model(name)
		content = make_model_bytes(name, floats)
		self.server.add_file(spec.release, spec.file_name, content)
		if with_hash:
			self.server.add_file(spec.release, spec.hash_file_name, crc(content).encode())
		self.content[name] = content
		return content

	def url_path(self, name: str) -> str:
		spec = get_model(name)
		return '/' + spec.release + '/' + spec.file_name

	def model_requests(self, name: str) -> List:
		return self.server.requests_for(get_model(name).file_name)


@pytest.fixture
def hosted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hosted]:
	server = ModelServer(tmp_path / 'server').start()
	monkeypatch.setenv(registry.BASE_URL_ENVIRONMENT_VARIABLE, server.base_url)
	try:
		yield Hosted(server)
	finally:
		server.stop()


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
	return tmp_path / 'models'


class RecordingHandler(logging.Handler):
	def __init__(self) -> None:
		super().__init__(logging.INFO)
		self.records: List[logging.LogRecord] = []

	def emit(self, record: logging.LogRecord) -> None:
		self.records.append(record)


@pytest.fixture
def log_records() -> Iterator[List[logging.LogRecord]]:
	# listen on the facefusion logger itself: it may not propagate to pytest's handlers (logger.init turns that off)
	logger = get_logger()
	handler = RecordingHandler()
	previous_level = logger.level
	logger.addHandler(handler)
	logger.setLevel(logging.INFO)
	try:
		yield handler.records
	finally:
		logger.removeHandler(handler)
		logger.setLevel(previous_level)


def place(models_dir: Path, name: str, content: bytes, hash_text: str) -> Path:
	spec = get_model(name)
	models_dir.mkdir(parents=True, exist_ok=True)
	(models_dir / spec.file_name).write_bytes(content)
	(models_dir / spec.hash_file_name).write_text(hash_text)
	return models_dir / spec.file_name


# hashing

def test_crc32_hex_matches_zlib(tmp_path: Path) -> None:
	content = make_model_bytes('anything', 300000)
	path = tmp_path / 'x.onnx'
	path.write_bytes(content)
	assert hashing.crc32_hex(path) == format(zlib.crc32(content), '08x')
	assert len(content) > hashing.CHUNK_SIZE


def test_validate_is_strict_about_the_hash_format(tmp_path: Path) -> None:
	path = tmp_path / 'scrfd_2.5g.onnx'
	path.write_bytes(b'model bytes')
	hash_file = tmp_path / 'scrfd_2.5g.hash'
	assert not hashing.validate(path)
	hash_file.write_text(crc(b'model bytes'))
	assert hashing.validate(path)
	hash_file.write_text(crc(b'model bytes') + '\n')
	assert not hashing.validate(path)
	hash_file.write_text('ABCDEF01')
	assert hashing.read_hash(hash_file) is None
	hash_file.write_text(crc(b'other bytes'))
	assert not hashing.validate(path)


def test_validate_shipped_yunet() -> None:
	assert hashing.validate(DATA_DIR / 'yunet_2023_mar.onnx')
	assert hashing.crc32_hex(DATA_DIR / 'yunet_2023_mar.onnx') == 'bfdf4e40'


# downloads

def test_good_download(hosted: Hosted, models_dir: Path) -> None:
	hosted.publish('yolo_face')
	hosted.publish('xseg_3')
	paths = ensure_models(['yolo_face', 'xseg_3'], models_dir, ['github', 'huggingface'], show_progress=False)
	assert paths == [models_dir / 'yoloface_8n.onnx', models_dir / 'xseg_3.onnx']
	assert paths[0].read_bytes() == hosted.content['yolo_face']
	assert paths[1].read_bytes() == hosted.content['xseg_3']
	assert (models_dir / 'yoloface_8n.hash').read_bytes() == crc(hosted.content['yolo_face']).encode()
	assert all(hashing.validate(path) for path in paths)
	assert sorted(path.name for path in models_dir.iterdir()) == \
		['xseg_3.hash', 'xseg_3.onnx', 'yoloface_8n.hash', 'yoloface_8n.onnx']
	# the release each file lives in is part of its URL
	paths_requested = {record.path for record in hosted.server.requests}
	assert paths_requested == {'/models-3.0.0/yoloface_8n.hash', '/models-3.0.0/yoloface_8n.onnx',
		'/models-3.2.0/xseg_3.hash', '/models-3.2.0/xseg_3.onnx'}


def test_present_and_valid_makes_no_request(hosted: Hosted, models_dir: Path) -> None:
	content = make_model_bytes('scrfd', 1000)
	place(models_dir, 'scrfd', content, crc(content))
	assert ensure_models(['scrfd'], models_dir, ['github'], show_progress=False) == [models_dir / 'scrfd_2.5g.onnx']
	assert hosted.server.requests == []


def test_present_and_valid_works_offline(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setenv(registry.BASE_URL_ENVIRONMENT_VARIABLE, 'http://127.0.0.1:' + str(closed_port()))
	content = make_model_bytes('fan_68_5', 1000)
	place(models_dir, 'fan_68_5', content, crc(content))
	assert ensure_models(['fan_68_5'], models_dir, [], show_progress=False) == [models_dir / 'fan_68_5.onnx']


def test_corrupt_file_is_moved_aside_and_downloaded_again(hosted: Hosted, models_dir: Path,
	log_records: List[logging.LogRecord]) -> None:
	good = hosted.publish('hyperswap_1a_256')
	corrupt = bytearray(good)
	corrupt[len(corrupt) // 2] ^= 0xff
	path = place(models_dir, 'hyperswap_1a_256', bytes(corrupt), crc(good))
	ensure_models(['hyperswap_1a_256'], models_dir, ['github'], show_progress=False)
	assert path.read_bytes() == good
	aside = models_dir / 'hyperswap_1a_256.onnx.corrupt'
	assert aside.read_bytes() == bytes(corrupt)
	assert not (models_dir / 'hyperswap_1a_256.onnx.part').exists()
	assert any('moved aside' in record.getMessage() and record.levelno == logging.WARNING for record in log_records)
	# the hash was there already: only the model was fetched
	assert hosted.server.requests_for('hyperswap_1a_256.hash') == []


def test_second_corrupt_copy_does_not_overwrite_the_first(hosted: Hosted, models_dir: Path) -> None:
	good = hosted.publish('xseg_1', floats=2000)
	place(models_dir, 'xseg_1', b'first bad copy', crc(good))
	ensure_models(['xseg_1'], models_dir, ['github'], show_progress=False)
	(models_dir / 'xseg_1.onnx').write_bytes(b'second bad copy')
	ensure_models(['xseg_1'], models_dir, ['github'], show_progress=False)
	assert (models_dir / 'xseg_1.onnx.corrupt').read_bytes() == b'first bad copy'
	assert (models_dir / 'xseg_1.onnx.corrupt.1').read_bytes() == b'second bad copy'
	assert (models_dir / 'xseg_1.onnx').read_bytes() == good


def test_interrupted_download_resumes_with_range(hosted: Hosted, models_dir: Path) -> None:
	content = hosted.publish('inswapper_128', floats=80000)
	hosted.server.drop_after[hosted.url_path('inswapper_128')] = 100000
	paths = ensure_models(['inswapper_128'], models_dir, ['github'], show_progress=False)
	assert paths[0].read_bytes() == content
	assert hashing.validate(paths[0])
	requests = hosted.model_requests('inswapper_128')
	assert [record.range for record in requests] == [None, 'bytes=100000-']
	assert not (models_dir / 'inswapper_128.onnx.part').exists()


def test_part_left_by_an_earlier_run_is_resumed(hosted: Hosted, models_dir: Path) -> None:
	content = hosted.publish('simswap_256', floats=50000)
	models_dir.mkdir()
	(models_dir / 'simswap_256.onnx.part').write_bytes(content[:70000])
	ensure_models(['simswap_256'], models_dir, ['github'], show_progress=False)
	assert (models_dir / 'simswap_256.onnx').read_bytes() == content
	assert [record.range for record in hosted.model_requests('simswap_256')] == ['bytes=70000-']


def test_interrupted_run_leaves_no_partial_under_the_final_name(hosted: Hosted, models_dir: Path,
	monkeypatch: pytest.MonkeyPatch) -> None:
	content = hosted.publish('ghost_1_256', floats=50000)
	hosted.server.drop_after[hosted.url_path('ghost_1_256')] = 30000
	# one try per URL: the drop ends this run, the .part waits for the next
	monkeypatch.setattr(fetch, 'ATTEMPTS_PER_URL', 1)
	with pytest.raises(ModelUnavailableError):
		ensure_models(['ghost_1_256'], models_dir, ['github'], show_progress=False)
	assert not (models_dir / 'ghost_1_256.onnx').exists()
	assert (models_dir / 'ghost_1_256.onnx.part').stat().st_size == 30000
	ensure_models(['ghost_1_256'], models_dir, ['github'], show_progress=False)
	assert (models_dir / 'ghost_1_256.onnx').read_bytes() == content
	assert hosted.model_requests('ghost_1_256')[-1].range == 'bytes=30000-'


def test_partial_under_the_final_name_is_resumed(hosted: Hosted, models_dir: Path) -> None:
	# what 3.5.0's in-place resume leaves behind after an interruption
	content = hosted.publish('uniface_256', floats=50000)
	place(models_dir, 'uniface_256', content[:50000], crc(content))
	ensure_models(['uniface_256'], models_dir, ['github'], show_progress=False)
	assert (models_dir / 'uniface_256.onnx').read_bytes() == content
	assert [record.range for record in hosted.model_requests('uniface_256')] == ['bytes=50000-']
	# its bytes live on in the completed model, so the aside copy is gone
	assert not (models_dir / 'uniface_256.onnx.corrupt').exists()


def test_server_without_range_support_sends_everything_again(hosted: Hosted, models_dir: Path) -> None:
	content = hosted.publish('2dfan4', floats=50000)
	hosted.server.support_ranges = False
	hosted.server.drop_after[hosted.url_path('2dfan4')] = 40000
	ensure_models(['2dfan4'], models_dir, ['github'], show_progress=False)
	assert (models_dir / '2dfan4.onnx').read_bytes() == content
	assert len(hosted.model_requests('2dfan4')) == 2


def test_missing_on_the_server_names_files_and_folder(hosted: Hosted, models_dir: Path) -> None:
	hosted.publish('yolo_face')
	with pytest.raises(ModelUnavailableError) as caught:
		ensure_models(['yolo_face', 'fairface', 'nsfw_2'], models_dir, ['github'], show_progress=False)
	message = caught.value.message
	assert '\n' not in message
	for file_name in ('fairface.onnx', 'fairface.hash', 'nsfw_2.onnx', 'nsfw_2.hash'):
		assert file_name in message
	assert 'yoloface_8n' not in message
	assert str(models_dir.resolve()) in message
	assert '.hash' in message and '404' in message
	# what could be fetched was
	assert hashing.validate(models_dir / 'yoloface_8n.onnx')


def test_hash_present_model_missing_fetches_only_the_model(hosted: Hosted, models_dir: Path) -> None:
	content = hosted.publish('peppa_wutz', floats=1000)
	models_dir.mkdir()
	(models_dir / 'peppa_wutz.hash').write_text(crc(content))
	ensure_models(['peppa_wutz'], models_dir, ['github'], show_progress=False)
	assert hosted.server.requests_for('peppa_wutz.hash') == []
	assert hashing.validate(models_dir / 'peppa_wutz.onnx')


def test_malformed_local_hash_is_replaced_and_model_kept(hosted: Hosted, models_dir: Path) -> None:
	content = hosted.publish('bisenet_resnet_18', floats=1000)
	path = place(models_dir, 'bisenet_resnet_18', content, crc(content) + '\n')
	ensure_models(['bisenet_resnet_18'], models_dir, ['github'], show_progress=False)
	assert (models_dir / 'bisenet_resnet_18.hash').read_text() == crc(content)
	assert hosted.model_requests('bisenet_resnet_18') == []
	assert not (models_dir / 'bisenet_resnet_18.onnx.corrupt').exists()
	assert path.read_bytes() == content


def test_remote_file_not_matching_its_hash_is_refused(hosted: Hosted, models_dir: Path) -> None:
	spec = get_model('nsfw_1')
	hosted.server.add_file(spec.release, spec.file_name, make_model_bytes('nsfw_1', 1000))
	hosted.server.add_file(spec.release, spec.hash_file_name, b'00000000')
	with pytest.raises(ModelUnavailableError) as caught:
		ensure_models(['nsfw_1'], models_dir, ['github'], show_progress=False)
	assert 'nsfw_1.onnx' in caught.value.message and 'fails its hash' in caught.value.message
	assert sorted(path.name for path in models_dir.iterdir()) == ['nsfw_1.hash']


def test_next_url_after_an_unreachable_one(hosted: Hosted, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	content = hosted.publish('arcface_w600k_r50', floats=1000)
	dead = 'http://127.0.0.1:' + str(closed_port())
	monkeypatch.setenv(registry.BASE_URL_ENVIRONMENT_VARIABLE, dead + ',' + hosted.server.base_url)
	ensure_models(['arcface_w600k_r50'], models_dir, ['github'], show_progress=False)
	assert (models_dir / 'arcface_w600k_r50.onnx').read_bytes() == content


def test_offline_fails_fast_with_one_line(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setenv(registry.BASE_URL_ENVIRONMENT_VARIABLE, 'http://127.0.0.1:' + str(closed_port()))
	names = ['yolo_face', '2dfan4', 'fan_68_5', 'arcface_w600k_r50', 'hyperswap_1a_256']
	started = time.monotonic()
	with pytest.raises(ModelUnavailableError) as caught:
		ensure_models(names, models_dir, ['github', 'huggingface'], show_progress=False)
	assert time.monotonic() - started < 3
	message = caught.value.message
	assert '\n' not in message
	for name in names:
		assert get_model(name).file_name in message and get_model(name).hash_file_name in message
	assert str(models_dir.resolve()) in message


def test_silent_host_times_out_once(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	# a listening socket that never answers: connections succeed, reads stall until the timeout
	with socket.socket() as silent:
		silent.bind(('127.0.0.1', 0))
		silent.listen(16)
		monkeypatch.setenv(registry.BASE_URL_ENVIRONMENT_VARIABLE, 'http://127.0.0.1:' + str(silent.getsockname()[1]))
		started = time.monotonic()
		with pytest.raises(ModelUnavailableError) as caught:
			ensure_models(['yolo_face', 'scrfd', 'retinaface'], models_dir, ['github'], False, timeout=0.3)
		elapsed = time.monotonic() - started
	# one timeout, then the host is skipped for the other models
	assert elapsed < 1.5
	assert 'timed out' in caught.value.message


def test_offline_leaves_a_corrupt_file_in_place(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setenv(registry.BASE_URL_ENVIRONMENT_VARIABLE, 'http://127.0.0.1:' + str(closed_port()))
	place(models_dir, 'xseg_2', b'not the model', '12345678')
	with pytest.raises(ModelUnavailableError) as caught:
		ensure_models(['xseg_2'], models_dir, ['github'], show_progress=False)
	assert 'xseg_2.onnx' in caught.value.message and 'xseg_2.hash' not in caught.value.message
	assert sorted(path.name for path in models_dir.iterdir()) == ['xseg_2.hash', 'xseg_2.onnx']


def test_unknown_model_name() -> None:
	with pytest.raises(KeyError):
		ensure_models(['no_such_model'], '/nonexistent', ['github'], show_progress=False)


def test_progress_bar_runs(hosted: Hosted, models_dir: Path, capsys: pytest.CaptureFixture) -> None:
	hosted.publish('yunet', floats=1000)
	ensure_models(['yunet'], models_dir, ['github'], show_progress=True)
	assert 'yunet_2023_mar.onnx' in capsys.readouterr().err


def test_model_path() -> None:
	assert model_path('/models', get_model('scrfd')) == Path('/models/scrfd_2.5g.onnx')


# force-download

def test_force_download_fetches_every_model_of_the_scope(hosted: Hosted, models_dir: Path) -> None:
	for spec in registry.models_for_scope('lite'):
		hosted.publish(spec.name, floats=16)
	assert force_download('lite', models_dir, ['github', 'huggingface'], show_progress=False) == 0
	for spec in registry.all_models():
		assert hashing.validate(model_path(models_dir, spec))
	requests_before = len(hosted.server.requests)
	assert force_download('full', models_dir, ['github'], show_progress=False) == 0
	assert len(hosted.server.requests) == requests_before


def test_force_download_failure_prints_one_line(hosted: Hosted, models_dir: Path,
	capsys: pytest.CaptureFixture) -> None:
	for spec in registry.models_for_scope('lite'):
		if spec.name != 'nsfw_3':
			hosted.publish(spec.name, floats=16)
	assert force_download('lite', models_dir, ['github'], show_progress=False) == 1
	error = capsys.readouterr().err
	assert error.startswith('[FACEFUSION] ') and error.count('\n') == 1
	assert 'nsfw_3.onnx' in error and 'Traceback' not in error
	assert force_download('huge', models_dir, ['github'], show_progress=False) == 1
