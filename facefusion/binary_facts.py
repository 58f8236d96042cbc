"""Facts about an installed binary that are costly to learn, kept on disk so that a run does not ask the same binary
again: an ffmpeg's encoder and hwaccel lists, its version and where its muxers put audio (each answer an ffmpeg
start, 50-110 ms), and the execution providers of the installed onnxruntime build (importing onnxruntime to ask
takes 0.2 s, which a command line's parsing then no longer waits for).

They are keyed by the binary's real path, size and modification time, so an upgraded or another build is asked
afresh. The file is `<project>/.caches/binary-facts.json` (FACEFUSION_CACHE_PATH names another folder); a file that
cannot be read or written only means asking again.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Optional, TypeVar

from facefusion.logger import get_logger

FactValue = TypeVar('FactValue')
CACHE_ENVIRONMENT_KEY = 'FACEFUSION_CACHE_PATH'
FACTS_FILE_NAME = 'binary-facts.json'
_lock = threading.Lock()


def cache_folder() -> Path:
	"""Where the engine keeps what it learnt about its binaries and model files (FACEFUSION_CACHE_PATH, else
	<project>/.caches)."""
	from facefusion.config import PROJECT_DIR
	folder = os.environ.get(CACHE_ENVIRONMENT_KEY)
	return Path(folder) if folder else PROJECT_DIR / '.caches'


def facts_path() -> Path:
	return cache_folder() / FACTS_FILE_NAME


def binary_key(binary: str) -> Optional[str]:
	try:
		real_path = os.path.realpath(binary)
		status = os.stat(real_path)
	except OSError:
		return None
	return f'{real_path}|{status.st_size}|{status.st_mtime_ns}'


def read_facts(path: Path) -> Dict[str, Dict[str, Any]]:
	try:
		facts = json.loads(path.read_text(encoding='utf-8'))
	except (OSError, ValueError):
		return {}
	return facts if isinstance(facts, dict) else {}


def remembered(binary: str, name: str, learn: Callable[[], FactValue], keep: Callable[[FactValue], bool] = lambda value: True) -> FactValue:
	"""The fact `name` of this binary: from the file when it is there, else learnt and written down (when keep says
	the answer is worth keeping: a check that could not run is asked again next time). Values are JSON values."""
	from facefusion.partial_files import replace_atomically
	key = binary_key(binary)
	path = facts_path()
	if key is not None:
		known = read_facts(path).get(key, {})
		if name in known:
			return known[name]
	value = learn()
	if key is None or not keep(value):
		return value
	with _lock:
		facts = read_facts(path)
		facts.setdefault(key, {})[name] = value
		try:
			path.parent.mkdir(parents=True, exist_ok=True)
			replace_atomically(path, json.dumps(facts, indent=1, sort_keys=True).encode('utf-8'))
		except OSError as exception:
			get_logger().debug('binary facts not written to %s: %s', path, exception)
	return value
