"""Facts about installed binaries kept on disk (ffmpeg, onnxruntime): asked once per binary, asked again for another or
a changed one, and a folder that cannot be written only means asking again."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import List

import pytest

from facefusion import binary_facts
from facefusion.video import audio_timing, ffmpeg


def test_a_fact_is_learnt_once_per_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setenv(binary_facts.CACHE_ENVIRONMENT_KEY, str(tmp_path / 'cache'))
	binary = tmp_path / 'ffmpeg'
	shutil.copyfile(ffmpeg.find_ffmpeg(), binary)
	asked: List[int] = []

	def learn() -> List[str]:
		asked.append(1)
		return ['libx264', 'aac']

	assert binary_facts.remembered(str(binary), 'list-encoders', learn) == ['libx264', 'aac']
	assert binary_facts.remembered(str(binary), 'list-encoders', learn) == ['libx264', 'aac']
	assert len(asked) == 1
	stored = json.loads((tmp_path / 'cache' / 'binary-facts.json').read_text())
	assert list(stored.values()) == [{'list-encoders': ['libx264', 'aac']}]
	# an upgraded binary (another modification time) is asked afresh
	status = os.stat(binary)
	os.utime(binary, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
	binary_facts.remembered(str(binary), 'list-encoders', learn)
	assert len(asked) == 2
	# an answer not worth keeping (a check that could not run) is asked again
	binary_facts.remembered(str(binary), 'audio-delay x .y', lambda: None, keep=lambda value: value is not None)
	assert 'audio-delay x .y' not in json.loads((tmp_path / 'cache' / 'binary-facts.json').read_text()).popitem()[1]


def test_an_unwritable_cache_folder_only_means_asking_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	blocker = tmp_path / 'not-a-folder'
	blocker.write_text('')
	monkeypatch.setenv(binary_facts.CACHE_ENVIRONMENT_KEY, str(blocker / 'cache'))
	assert binary_facts.remembered(ffmpeg.find_ffmpeg(), 'version', lambda: 'x') == 'x'
	assert binary_facts.remembered(ffmpeg.find_ffmpeg(), 'version', lambda: 'y') == 'y'


def test_the_real_lists_and_audio_timing_come_back_the_same_from_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setenv(binary_facts.CACHE_ENVIRONMENT_KEY, str(tmp_path))
	ffmpeg.reset_caches()
	audio_timing._measure.cache_clear()
	try:
		asked = (ffmpeg.available_encoders(), ffmpeg.ffmpeg_version(), audio_timing.muxed_audio_delay('aac', 'out.avi'))
		ffmpeg.reset_caches()
		audio_timing._measure.cache_clear()

		def no_more_runs(*arguments: object, **options: object) -> None:
			raise AssertionError('ffmpeg was asked again')
		# from the file now: any ffmpeg run would fail the test
		monkeypatch.setattr(ffmpeg, 'run_ffmpeg', no_more_runs)
		remembered = (ffmpeg.available_encoders(), ffmpeg.ffmpeg_version(), audio_timing.muxed_audio_delay('aac', 'out.avi'))
	finally:
		monkeypatch.undo()
		ffmpeg.reset_caches()
		audio_timing._measure.cache_clear()
	assert remembered == asked and 'libx264' in asked[0]
	facts = json.loads((tmp_path / 'binary-facts.json').read_text())
	assert {'list-encoders', 'version', 'audio-delay aac .avi'} <= set(facts[binary_facts.binary_key(ffmpeg.find_ffmpeg())])


def test_onnxruntime_providers_are_remembered_per_build(tmp_path: Path) -> None:
	"""The --execution-providers choices need the build's providers: the first run asks onnxruntime, later runs read
	them from disk and parse the command line without importing onnxruntime at all."""
	import subprocess
	import sys

	import onnxruntime

	from facefusion.config import PROJECT_DIR
	from facefusion.inference.installed_providers import native_module
	script = 'import sys; from facefusion.inference.installed_providers import installed_providers; print(installed_providers()); print("onnxruntime" in sys.modules)'
	environment = dict(os.environ, **{binary_facts.CACHE_ENVIRONMENT_KEY: str(tmp_path)})
	runs = [subprocess.run([sys.executable, '-c', script], cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, check=True).stdout.split('\n') for _ in range(2)]
	assert runs[0][0] == runs[1][0] == str(onnxruntime.get_available_providers())
	assert (runs[0][1], runs[1][1]) == ('True', 'False')
	stored = json.loads((tmp_path / binary_facts.FACTS_FILE_NAME).read_text())
	assert stored[binary_facts.binary_key(native_module())]['onnxruntime-providers'] == onnxruntime.get_available_providers()
