"""One lock per job, so two commands never run or edit the same job at once.

The lock is `<jobs-path>/.locks/<job id>.lock`, held with an operating-system file lock (flock on POSIX, msvcrt on
Windows) for as long as the command works on the job, and the holder's pid is written into it for the refusal message.
The kernel drops the lock when its process ends, however it ends (SIGKILL included), so the file a killed process
leaves behind is a stale lock that the next command simply takes over.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType
from typing import Optional, Type

from facefusion import logger
from facefusion.errors import FaceFusionError

try:
	import fcntl
except ImportError:
	fcntl = None  # type: ignore[assignment]
try:
	import msvcrt
except ImportError:
	msvcrt = None  # type: ignore[assignment]

LOCKS_FOLDER = '.locks'
# the pid is written after the first byte: on Windows the locked byte itself cannot be read by others
PID_OFFSET = 1


class JobLockedError(FaceFusionError):
	"""The job is held by another live process."""


def process_alive(pid: int) -> bool:
	if pid <= 0:
		return False
	if os.name == 'nt':
		# no safe probe without extra packages (os.kill would end the process); the OS lock decides there
		return True
	try:
		os.kill(pid, 0)
	except ProcessLookupError:
		return False
	except PermissionError:
		return True
	return True


def read_pid(descriptor: int) -> int:
	try:
		os.lseek(descriptor, PID_OFFSET, os.SEEK_SET)
		text = os.read(descriptor, 32).decode('ascii', errors='replace').strip()
		return int(text) if text.isdigit() else 0
	except OSError:
		return 0


def try_os_lock(descriptor: int) -> bool:
	if fcntl is not None:
		try:
			fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
		except (BlockingIOError, PermissionError):
			return False
		return True
	if msvcrt is not None:
		os.lseek(descriptor, 0, os.SEEK_SET)
		try:
			msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
		except OSError:
			return False
		return True
	raise FaceFusionError('job locks need fcntl or msvcrt, and this Python has neither')


class JobLock:
	"""Held with `with JobLock(jobs_path, job_id, 'run'):`; refused at once (or after wait_s) when another process
	holds it."""

	def __init__(self, jobs_path: str, job_id: str, purpose: str, wait_s: float = 0.0) -> None:
		self.path = Path(jobs_path) / LOCKS_FOLDER / (job_id + '.lock')
		self.job_id = job_id
		self.purpose = purpose
		self.wait_s = wait_s
		self.descriptor: Optional[int] = None

	def acquire(self) -> None:
		self.path.parent.mkdir(parents=True, exist_ok=True)
		deadline = time.monotonic() + self.wait_s
		while True:
			descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_BINARY', 0), 0o666)
			if try_os_lock(descriptor):
				if self.same_file_as_path(descriptor):
					self.take(descriptor)
					return
				# the holder removed the file between our open and our lock: lock the new one instead
				os.close(descriptor)
				continue
			holder = read_pid(descriptor)
			os.close(descriptor)
			if time.monotonic() >= deadline:
				holder_text = f' by process {holder}' if holder else ''
				raise JobLockedError(f'job {self.job_id} is in use{holder_text}: it is being run or edited; {self.purpose} refused')
			time.sleep(0.05)

	def same_file_as_path(self, descriptor: int) -> bool:
		try:
			return os.path.samestat(os.fstat(descriptor), os.stat(self.path))
		except OSError:
			return False

	def take(self, descriptor: int) -> None:
		previous = read_pid(descriptor)
		if previous and previous != os.getpid() and not process_alive(previous):
			logger.get_logger().info(f'job {self.job_id}: taking over the lock of process {previous}, which has ended')
		os.ftruncate(descriptor, 0)
		os.lseek(descriptor, PID_OFFSET, os.SEEK_SET)
		os.write(descriptor, str(os.getpid()).encode('ascii'))
		self.descriptor = descriptor

	def release(self) -> None:
		if self.descriptor is None:
			return
		descriptor, self.descriptor = self.descriptor, None
		if os.name != 'nt':
			# removed while still held, so a waiting process that opened the old file notices and retries
			try:
				os.remove(self.path)
			except OSError:
				pass
		os.close(descriptor)

	def __enter__(self) -> 'JobLock':
		self.acquire()
		return self

	def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException], trace: Optional[TracebackType]) -> None:
		self.release()
