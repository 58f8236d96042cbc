"""Names of the files a run writes before they are complete, and the removal of those a killed run left behind.

Every output is written under a hidden name beside its final name and renamed at the end, so an interrupted run
never leaves a broken file under the final name. SIGINT, SIGTERM and SIGHUP remove the hidden file on the way out;
SIGKILL (or a power cut) cannot, so the names carry the writer's process id and the next run in the same folder
removes the files whose writer is gone:

	.<stem>.<pid>.<token>.<label><ext>   video writer and audio mux (label 'partial' or 'audio'; the extension is
	                                     kept because ffmpeg picks the muxer by it)
	.<name>.<pid>.<token>.tmp            atomic image writes
	<stem>.<pid>.<random>/               disk-workflow temp frame folders under <temp-path>/facefusion/ (renamed
	                                     <stem>.<random>.kept when --keep-temp keeps them)

Older builds wrote ``.<stem>.<token>.<label><ext>`` without a pid; such a file is removed only when it has not been
written to for STALE_UNNAMED_SECONDS before this run started (a live writer touches its file every few frames).
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import List, Optional, Union

from facefusion.logger import get_logger

PARTIAL_LABELS = ('partial', 'audio', 'audio-ahead')
STALE_UNNAMED_SECONDS = 600.0
_MEDIA_PATTERN = re.compile(r'^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.(?:partial|audio|audio-ahead)(?:\.[^.]+)?$')
_IMAGE_PATTERN = re.compile(r'^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$')
_UNNAMED_MEDIA_PATTERN = re.compile(r'^\..+\.[0-9a-f]{8}\.(?:partial|audio|audio-ahead)(?:\.[^.]+)?$')
# tempfile.mkdtemp's random part: 8 characters of [a-z0-9_]
_TEMP_FOLDER_PATTERN = re.compile(r'^(?P<stem>.*)\.(?P<pid>\d+)\.(?P<random>[a-z0-9_]{8})$')
# when this process started, as the clock of file modification times sees it
PROCESS_START = time.time()


def partial_media_name(output_path: Union[str, Path], label: str = 'partial') -> Path:
	"""A unique hidden name beside the output that keeps its extension and names this process."""
	output = Path(output_path)
	return output.with_name('.{}.{}.{}.{}{}'.format(output.stem, os.getpid(), secrets.token_hex(4), label, output.suffix))


def partial_image_name(output_path: Union[str, Path]) -> Path:
	output = Path(output_path)
	return output.with_name('.{}.{}.{}.tmp'.format(output.name, os.getpid(), secrets.token_hex(4)))


def replace_atomically(path: Union[str, Path], content: bytes, sync: bool = False) -> None:
	"""Write content so the file appears whole or keeps what it had: a pid-named hidden temp file beside it (a killed
	writer's leftover is recognisable), then os.replace. sync: flush to the disk before the rename (job files, which
	must survive a power cut). The temp file is removed on any failure, KeyboardInterrupt included; OSError is raised
	for the caller to word."""
	target = Path(path)
	temp_path = partial_image_name(target)
	try:
		# os.open with 0o666 lets the umask decide permissions, as a plain open() would for the final file
		descriptor = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
		with os.fdopen(descriptor, 'wb') as handle:
			handle.write(content)
			if sync:
				handle.flush()
				os.fsync(handle.fileno())
		os.replace(temp_path, target)
	except BaseException:
		try:
			os.remove(temp_path)
		except OSError:
			pass
		raise


def temp_folder_prefix(stem: str) -> str:
	"""The prefix of a temp frame folder (tempfile.mkdtemp adds the random part)."""
	return '{}.{}.'.format(stem, os.getpid())


def kept_temp_folder_name(name: str) -> Optional[str]:
	"""What a temp frame folder kept by --keep-temp is renamed to: ``<stem>.<random>.kept``, without the pid, so no
	later run takes it for a killed run's leftover. None for a name this module did not make."""
	match = _TEMP_FOLDER_PATTERN.match(name)
	if match is None:
		return None
	return '{}.{}.kept'.format(match.group('stem'), match.group('random'))


def process_alive(pid: int) -> bool:
	"""Whether a process with this id exists. Unknown means alive: a file is only ever removed when its writer is
	known to be gone."""
	if pid == os.getpid():
		return True
	if sys.platform == 'win32' or pid <= 0:
		# os.kill(pid, 0) terminates the process on Windows
		return True
	try:
		os.kill(pid, 0)
	except ProcessLookupError:
		return False
	except OSError:
		return True
	return True


def _writer_pid(name: str, is_directory: bool) -> Optional[int]:
	pattern_list = (_TEMP_FOLDER_PATTERN,) if is_directory else (_MEDIA_PATTERN, _IMAGE_PATTERN)
	for pattern in pattern_list:
		match = pattern.match(name)
		if match:
			return int(match.group('pid'))
	return None


def stale_partial_files(directory: Union[str, Path]) -> List[Path]:
	"""The hidden partial files in directory whose writer is gone."""
	stale: List[Path] = []
	try:
		entries = list(os.scandir(directory))
	except OSError:
		return stale
	for entry in entries:
		if not entry.name.startswith('.') or not entry.is_file(follow_symlinks=False):
			continue
		pid = _writer_pid(entry.name, False)
		if pid is not None:
			if not process_alive(pid):
				stale.append(Path(entry.path))
		elif _UNNAMED_MEDIA_PATTERN.match(entry.name):
			try:
				modified = entry.stat(follow_symlinks=False).st_mtime
			except OSError:
				continue
			if modified < PROCESS_START - STALE_UNNAMED_SECONDS:
				stale.append(Path(entry.path))
	return sorted(stale)


def stale_temp_folders(directory: Union[str, Path]) -> List[Path]:
	"""The disk-workflow temp frame folders under directory (<temp-path>/facefusion) whose run is gone."""
	stale: List[Path] = []
	try:
		entries = list(os.scandir(directory))
	except OSError:
		return stale
	for entry in entries:
		if not entry.is_dir(follow_symlinks=False):
			continue
		pid = _writer_pid(entry.name, True)
		if pid is not None and not process_alive(pid):
			stale.append(Path(entry.path))
	return sorted(stale)


def remove_stale_partial_files(directory: Union[str, Path]) -> int:
	"""Remove what killed runs left in an output folder; says so in one line. Returns how many were removed."""
	removed = 0
	for path in stale_partial_files(directory):
		try:
			path.unlink()
			removed += 1
		except OSError:
			pass
	if removed:
		get_logger().info('removed %d stale partial file%s left by an interrupted run in %s', removed, '' if removed == 1 else 's', directory)
	return removed


def remove_stale_temp_folders(directory: Union[str, Path]) -> int:
	removed = 0
	for path in stale_temp_folders(directory):
		shutil.rmtree(path, ignore_errors=True)
		if not path.exists():
			removed += 1
	if removed:
		get_logger().info('removed %d stale temp frame folder%s left by an interrupted run in %s', removed, '' if removed == 1 else 's', directory)
	return removed
