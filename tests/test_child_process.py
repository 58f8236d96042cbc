"""Child processes start while other threads edit the environment (numpy's and OpenCV's first imports do, on the
probe and preload threads): before every child got a copy of the environment, about one start in five failed
under such edits with "[Errno 14] Bad address" (Python's vfork path; one video run in a hundred)."""
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from facefusion import child_process
from facefusion.video import ffmpeg
from facefusion.video.io import VideoReader
from facefusion.video.probe import probe_video

CHURN_KEYS = ['FACEFUSION_TEST_CHURN_{}'.format(index) for index in range(40)]


@pytest.fixture
def environment_churn() -> Iterator[threading.Event]:
	"""A thread that adds and removes environment variables as fast as it can (like an import that sets a variable
	and removes it again), until the test ends."""
	stop = threading.Event()

	def churn() -> None:
		while not stop.is_set():
			for key in CHURN_KEYS:
				os.environ[key] = 'x' * 16
			for key in CHURN_KEYS:
				os.environ.pop(key, None)

	thread = threading.Thread(target=churn, name='environment-churn', daemon=True)
	thread.start()
	try:
		yield stop
	finally:
		stop.set()
		thread.join()
		for key in CHURN_KEYS:
			os.environ.pop(key, None)


def start_failures(count: int, start: Callable[[], object]) -> List[str]:
	failures = []
	for _ in range(count):
		try:
			start()
		except OSError as error:
			failures.append(str(error))
	return failures


@pytest.mark.skipif(shutil.which('true') is None, reason='needs the true command')
def test_children_start_while_another_thread_edits_the_environment(environment_churn: threading.Event) -> None:
	true_path = shutil.which('true')
	failures = start_failures(150, lambda: child_process.run([true_path], check=True))
	failures += start_failures(50, lambda: child_process.popen([true_path]).wait())
	assert failures == []


def test_ffmpeg_starts_while_another_thread_edits_the_environment(environment_churn: threading.Event, tmp_path: Path) -> None:
	clip = tmp_path / 'clip.mp4'
	ffmpeg.run_ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=25:duration=0.4', '-pix_fmt', 'yuv420p', str(clip)], 'Making the clip')
	versions = [ffmpeg.run_ffmpeg(['-version'], 'Asking for the version', quiet=False).stdout for _ in range(15)]
	assert all(b'ffmpeg version' in version for version in versions)
	for _ in range(3):
		info = probe_video(str(clip))
		assert info.frame_count == 10
		with VideoReader(info) as reader:
			assert sum(1 for _ in reader) == 10


def test_snapshot_is_whole_while_the_environment_is_edited(environment_churn: threading.Event) -> None:
	path = os.environ['PATH']
	for _ in range(300):
		snapshot = child_process.environment_snapshot()
		assert snapshot['PATH'] == path
		assert all(isinstance(value, str) for value in snapshot.values())


def test_the_callers_environment_is_passed_as_given() -> None:
	environment = dict(child_process.environment_snapshot(), FACEFUSION_TEST_GIVEN='given')
	code = "import os; print(os.environ.get('FACEFUSION_TEST_GIVEN'), os.environ.get('FACEFUSION_TEST_ONLY_HERE'))"
	os.environ['FACEFUSION_TEST_ONLY_HERE'] = 'inherited'
	try:
		given = child_process.run([sys.executable, '-c', code], env=environment, stdout=subprocess.PIPE, text=True, check=True).stdout.split()
		inherited = child_process.popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True).communicate()[0].split()
	finally:
		del os.environ['FACEFUSION_TEST_ONLY_HERE']
	assert given == ['given', 'None']
	assert inherited == ['None', 'inherited']


def test_settle_environment_finishes_the_environment_editing_imports() -> None:
	"""In a fresh interpreter (where neither has loaded): afterwards both are loaded and the environment is as it
	was before them, so a spawned worker inherits a settled one."""
	code = (
		"import os, sys\n"
		"from facefusion import child_process\n"
		"before = dict(os.environ)\n"
		"loaded = [name for name in child_process.ENVIRONMENT_EDITING_MODULES if name in sys.modules]\n"
		"child_process.settle_environment()\n"
		"print(loaded, all(name in sys.modules for name in child_process.ENVIRONMENT_EDITING_MODULES), os.environ.get('OPENBLAS_MAIN_FREE'))\n"
	)
	environment = child_process.environment_snapshot()
	environment.pop('OPENBLAS_MAIN_FREE', None)
	environment['PYTHONPATH'] = str(Path(__file__).resolve().parents[1])
	output = child_process.run([sys.executable, '-c', code], env=environment, stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
	assert output == '[] True None'
