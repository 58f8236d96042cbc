"""A cluster worker's folder (copies of its inputs) is removed by the next worker once its owner is gone, and only
then: ownership is a lock the owner's process holds, not a pid (pids repeat across pid namespaces)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from facefusion.cluster.ray_worker import FOLDER_PREFIX, hold_folder, remove_stale_folders

HOLD_UNTIL_STDIN_CLOSES = """
import sys
from pathlib import Path

import pytest
from facefusion.cluster.ray_worker import hold_folder
handle = hold_folder(Path(sys.argv[1]))
print('held', flush=True)
sys.stdin.read()
"""


def test_a_held_folder_stays_and_a_folder_left_by_a_dead_worker_goes(tmp_path: Path) -> None:
	live = tmp_path / (FOLDER_PREFIX + '1-live')
	dead = tmp_path / (FOLDER_PREFIX + '1-dead')
	unrelated = tmp_path / (FOLDER_PREFIX + 'without-lock')
	for folder in (live, dead, unrelated):
		folder.mkdir()
	holder = subprocess.Popen([sys.executable, '-c', HOLD_UNTIL_STDIN_CLOSES, str(live)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(Path(__file__).resolve().parents[1]))
	try:
		assert holder.stdout.readline().strip() == 'held'
		# the dead worker's lock file is there, but nobody holds it any more
		hold_folder(dead).close()
		remove_stale_folders(str(tmp_path))
		assert live.is_dir() and not dead.exists() and unrelated.is_dir()
	finally:
		holder.stdin.close()
		holder.wait(timeout=30)
	remove_stale_folders(str(tmp_path))
	assert not live.exists()


def test_a_folder_being_taken_is_never_seen_as_a_dead_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	"""Two workers start at once: the second one's clean-up runs in the moment between the first one's lock file
	appearing and its lock being taken. The first one's folder must survive that (it used to be removed under it, and
	its first task failed on a missing folder)."""
	import fcntl

	from facefusion.cluster import ray_worker
	folder = tmp_path / (FOLDER_PREFIX + '2-starting')
	folder.mkdir()
	real_flock = fcntl.flock
	seen_during_take = []

	def flock_after_the_other_worker_cleaned_up(handle: object, operation: int) -> None:
		if not seen_during_take:
			seen_during_take.append(None)
			# the other worker's clean-up (its own flock calls are the real ones), just before this worker's lock is
			# taken
			monkeypatch.setattr(ray_worker.fcntl, 'flock', real_flock)
			remove_stale_folders(str(tmp_path))
			seen_during_take[0] = folder.is_dir()
		real_flock(handle, operation)

	monkeypatch.setattr(ray_worker.fcntl, 'flock', flock_after_the_other_worker_cleaned_up)
	handle = hold_folder(folder)
	monkeypatch.setattr(ray_worker.fcntl, 'flock', real_flock)
	try:
		assert seen_during_take == [True] and folder.is_dir() and (folder / ray_worker.LOCK_NAME).is_file()
		# and once taken, it is held: a clean-up leaves it
		remove_stale_folders(str(tmp_path))
		assert folder.is_dir()
	finally:
		handle.close()
	remove_stale_folders(str(tmp_path))
	assert not folder.exists()
