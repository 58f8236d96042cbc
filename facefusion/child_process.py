"""Starting child processes (ffmpeg, a UI job) from a process whose other threads may be changing its environment.

A child started with the inherited environment reads the parent's ``environ`` array while it is being replaced by
the new program, and on Linux (Python's vfork path, which since 3.11.6 lets other threads run meanwhile) that is
the same memory the other threads see. numpy's first import sets and then removes ``OPENBLAS_MAIN_FREE``, OpenCV's
rewrites ``LD_LIBRARY_PATH``: when such an import runs on one thread (the probe, the session preload) while
another starts ffmpeg, the array shrinks between the kernel counting its entries and copying them, and the start
fails with "[Errno 14] Bad address" (about one run in a hundred of a short video). Every child therefore gets a
copy of the environment taken in Python, which the kernel reads from memory no other thread touches.

multiprocessing's spawn start method cannot be given an environment: settle_environment() runs those imports on the
calling thread first, so that no other thread is still inside one when the worker process starts.
"""
import importlib
import os
import subprocess
from typing import Any, Dict, Sequence, Union

Command = Sequence[Union[str, bytes, 'os.PathLike[str]']]
# os.environ can lose a key between listing and reading it while another thread edits it: a few retries
# always end, because the edits come from one-off imports
SNAPSHOT_ATTEMPTS = 10
# the imports that edit the environment while they load (numpy: OPENBLAS_MAIN_FREE, OpenCV: LD_LIBRARY_PATH)
ENVIRONMENT_EDITING_MODULES = ('numpy', 'cv2')


def environment_snapshot() -> Dict[str, str]:
	"""This process's environment as a plain dict, read consistently even while another thread edits it."""
	for _ in range(SNAPSHOT_ATTEMPTS - 1):
		try:
			return dict(os.environ)
		except (KeyError, RuntimeError):
			continue
	return dict(os.environ)


def with_environment(options: Dict[str, Any]) -> Dict[str, Any]:
	"""The options with env= set: the caller's, or a snapshot of this process's environment."""
	if options.get('env') is None:
		options['env'] = environment_snapshot()
	return options


def popen(command: Command, **options: Any) -> subprocess.Popen:
	"""subprocess.Popen with the environment passed as a copy (the caller's env=, or a snapshot of this one's)."""
	return subprocess.Popen(command, **with_environment(options))


def run(command: Command, **options: Any) -> subprocess.CompletedProcess:
	"""subprocess.run with the environment passed as a copy, like popen."""
	return subprocess.run(command, **with_environment(options))


def settle_environment() -> None:
	"""Finish the imports that edit the environment, on this thread: an import another thread has begun is waited
	for (the import lock), so after this the environment only changes when this program changes it."""
	for name in ENVIRONMENT_EDITING_MODULES:
		importlib.import_module(name)
