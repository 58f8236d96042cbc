"""Facts about the ffmpeg binary kept on disk: asked once per binary, asked again for another or a changed one, and a
folder that cannot be written only means asking again."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import List

import pytest

from facefusion.video import audio_timing, ffmpeg, ffmpeg_facts


def test_a_fact_is_learnt_once_per_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setenv(ffmpeg_facts.CACHE_ENVIRONMENT_KEY, str(tmp_path / 'cache'))
	binary = tmp_path / 'ffmpeg'
	shutil.copyfile(ffmpeg.find_ffmpeg(), binary)
	asked: List[int] = []

	def learn() -> List[str]:
		asked.append(1)
		return ['libx264', 'aac']

	assert ffmpeg_facts.remembered(str(binary), 'list-encoders', learn) == ['libx264', 'aac']
	assert ffmpeg_facts.remembered(str(binary), 'list-encoders', learn) == ['libx264', 'aac']
	assert len(asked) == 1
	stored = json.loads((tmp_path / 'cache' / 'ffmpeg-facts.json').read_text())
	assert list(stored.values()) == [{'list-encoders': ['libx264', 'aac']}]
	# an upgraded binary (another modification time) is asked afresh
	status = os.stat(binary)
	os.utime(binary, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
	ffmpeg_facts.remembered(str(binary), 'list-encoders', learn)
	assert len(asked) == 2
	# an answer not worth keeping (a check that could not run) is asked again
	ffmpeg_facts.remembered(str(binary), 'audio-delay x .y', lambda: None, keep=lambda value: value is not None)
	assert 'audio-delay x .y' not in json.loads((tmp_path / 'cache' / 'ffmpeg-facts.json').read_text()).popitem()[1]


def test_an_unwritable_cache_folder_only_means_asking_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	blocker = tmp_path / 'not-a-folder'
	blocker.write_text('')
	monkeypatch.setenv(ffmpeg_facts.CACHE_ENVIRONMENT_KEY, str(blocker / 'cache'))
	assert ffmpeg_facts.remembered(ffmpeg.find_ffmpeg(), 'version', lambda: 'x') == 'x'
	assert ffmpeg_facts.remembered(ffmpeg.find_ffmpeg(), 'version', lambda: 'y') == 'y'


def test_the_real_lists_and_audio_timing_come_back_the_same_from_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setenv(ffmpeg_facts.CACHE_ENVIRONMENT_KEY, str(tmp_path))
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
	facts = json.loads((tmp_path / 'ffmpeg-facts.json').read_text())
	assert {'list-encoders', 'version', 'audio-delay aac .avi'} <= set(facts[ffmpeg_facts.binary_key(ffmpeg.find_ffmpeg())])
