"""Shared fixtures: the test photos, a folder of stand-in models (plus the real YuNet), and a runner for the CLI as a
real subprocess (`python facefusion.py ...`), isolated from the network and from the user's own model folder."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_DIR / 'tests' / 'data'
ENTRY_POINT = PROJECT_DIR / 'facefusion.py'
# a local port nothing listens on: a download attempt fails at once instead of reaching the internet
UNREACHABLE_MIRROR = 'http://127.0.0.1:9'

CliRunner = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(autouse=True)
def fresh_facefusion_logger() -> Iterator[None]:
	"""Each test starts without the engine's log handler. logger.init() binds its handler to the sys.stderr of the
	moment; under pytest that is one test's capture, and a later test's capsys would miss every log line."""
	engine_logger = logging.getLogger('facefusion')
	for handler in list(engine_logger.handlers):
		engine_logger.removeHandler(handler)
	yield
	for handler in list(engine_logger.handlers):
		engine_logger.removeHandler(handler)


@pytest.fixture(scope='session')
def data_dir() -> Path:
	return DATA_DIR


@pytest.fixture(scope='session')
def yunet_path() -> Path:
	return DATA_DIR / 'yunet_2023_mar.onnx'


@pytest.fixture(scope='session')
def standin_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
	"""Every stand-in model with its .hash, and the real YuNet (which finds real faces) in place of its stand-in."""
	from facefusion.testing.standin_models import write_standin_models
	directory = tmp_path_factory.mktemp('standin_models')
	write_standin_models(directory)
	for suffix in ('.onnx', '.hash'):
		shutil.copyfile(DATA_DIR / ('yunet_2023_mar' + suffix), directory / ('yunet_2023_mar' + suffix))
	return directory


def cli_environment(models_path: Path) -> Dict[str, str]:
	environment = dict(os.environ)
	environment['FACEFUSION_MODELS_PATH'] = str(models_path)
	environment['FACEFUSION_DOWNLOAD_BASE_URL'] = UNREACHABLE_MIRROR
	environment['PYTHONIOENCODING'] = 'utf-8'
	environment.pop('COLUMNS', None)
	return environment


@pytest.fixture
def run_cli(tmp_path_factory: pytest.TempPathFactory) -> CliRunner:
	"""run_cli(*args, models_path=None, cwd=None, timeout=300) → CompletedProcess with text stdout / stderr.

	Without models_path the run sees an empty model folder, so anything that gets as far as loading models fails
	(quickly: downloads go to an unreachable local mirror). Without cwd it runs in a fresh empty folder, so no
	facefusion.ini of the developer's is picked up; pass absolute paths.
	"""
	def run(*arguments: str, models_path: Optional[Path] = None, cwd: Optional[Path] = None, timeout: float = 300) -> subprocess.CompletedProcess:
		if models_path is None:
			models_path = tmp_path_factory.mktemp('empty_models')
		command: Sequence[str] = [sys.executable, str(ENTRY_POINT), *[str(argument) for argument in arguments]]
		return subprocess.run(
			command, cwd=str(cwd or tmp_path_factory.mktemp('cwd')), env=cli_environment(models_path), capture_output=True, text=True,
			encoding='utf-8', timeout=timeout
		)
	return run


@pytest.fixture
def debug_records() -> Iterator[List[logging.LogRecord]]:
	"""The engine's log records at debug level, whatever an earlier test did to the logger's propagation."""
	records: List[logging.LogRecord] = []

	class Collect(logging.Handler):
		def emit(self, record: logging.LogRecord) -> None:
			records.append(record)

	engine_logger = logging.getLogger('facefusion')
	handler = Collect(level=logging.DEBUG)
	previous = engine_logger.level
	engine_logger.addHandler(handler)
	engine_logger.setLevel(logging.DEBUG)
	yield records
	engine_logger.removeHandler(handler)
	engine_logger.setLevel(previous)


def count_model_calls(swapper: Any) -> Any:
	"""Put a counting copy of the swapper's real session in its place; its batch_sizes lists every ONNX Runtime call
	that reaches it (no mock: the calls run)."""
	from facefusion.inference.session import ModelSession

	class CountingSession(ModelSession):
		batch_sizes: List[int]

		def run(self, feed: Dict[str, Any]) -> List[Any]:
			self.batch_sizes.append(len(feed['target']))
			return super().run(feed)

	inference = swapper.context.inference
	original = inference.get(swapper.spec.name)
	counting = CountingSession(original.name, original.path, original.session, original.requested_providers, original.stage)
	counting.batch_sizes = []
	inference.sessions[swapper.spec.name] = counting
	return counting


def clip_maker(tmp_path_factory: pytest.TempPathFactory, folder: str, options: Dict[str, Dict[str, Any]]) -> Callable[[str], Any]:
	"""get(name) -> a SyntheticClip made once per module from options[name] (clips are slow to encode)."""
	from facefusion.testing.synthetic_video import make_synthetic_video
	directory = tmp_path_factory.mktemp(folder)
	made: Dict[str, Any] = {}

	def get(name: str) -> Any:
		if name not in made:
			made[name] = make_synthetic_video(directory / name, **options[name])
		return made[name]
	return get


@pytest.fixture(scope='module')
def cluster() -> Iterator[Any]:
	"""A real Ray cluster (head, 2 CPUs) on loopback in network and pid namespaces of its own, for one test module
	(facefusion/testing/ray_cluster.py); stopped and removed afterwards, whatever the tests did."""
	from facefusion.testing.ray_cluster import LoopbackRayCluster
	ray_cluster = LoopbackRayCluster(num_cpus=2)
	try:
		ray_cluster.start()
		yield ray_cluster
	finally:
		ray_cluster.stop()


def read_frames(path: Path) -> List[Any]:
	"""Every frame of a video as BGR pixels, decoded by the engine's reader."""
	from facefusion.video.io import VideoReader
	with VideoReader(str(path)) as reader:
		return [frame.pixels for frame in reader]


@pytest.fixture(scope='module')
def three_shots(tmp_path_factory: pytest.TempPathFactory) -> Any:
	"""60 frames in three shots (cuts at 20 and 40), with audio: a video that splits into exactly three segments."""
	from facefusion.testing.synthetic_video import make_synthetic_video
	path = tmp_path_factory.mktemp('three_shots') / 'three_shots.mp4'
	return make_synthetic_video(path, photos=('obama.jpg', 'biden.jpg'), width=320, height=240, frame_count=60, cut_at=20, more_cuts=(40,), beep_times=(0.5, 1.9))
