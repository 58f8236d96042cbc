"""The engine's logger: quiet by default (info), detailed with --log-level debug."""
from __future__ import annotations

import logging
import sys
from typing import Iterable, List, Set

LOGGER_NAME = 'facefusion'
LOG_LEVELS = {'error': logging.ERROR, 'warn': logging.WARNING, 'info': logging.INFO, 'debug': logging.DEBUG}
_warned_keys: Set[str] = set()


def get_logger() -> logging.Logger:
	return logging.getLogger(LOGGER_NAME)


class StderrHandler(logging.StreamHandler):
	"""Writes to whatever sys.stderr is at the time of the record (tests and UIs swap it)."""

	@property
	def stream(self) -> object:  # type: ignore[override]
		return sys.stderr

	@stream.setter
	def stream(self, value: object) -> None:
		pass


def init(level: str) -> None:
	logger = get_logger()
	logger.setLevel(LOG_LEVELS.get(level, logging.INFO))
	# our own handler, once: others on the logger (a UI's, a test runner's capture) are no reason to leave it out
	if not any(isinstance(handler, StderrHandler) for handler in logger.handlers):
		handler = StderrHandler()
		handler.setFormatter(logging.Formatter('[FACEFUSION] %(message)s'))
		logger.addHandler(handler)
	logger.propagate = False


def warn_once(key: str, message: str) -> None:
	"""Warn one time per process for a condition that would otherwise repeat every frame (e.g. a provider fallback)."""
	if key not in _warned_keys:
		_warned_keys.add(key)
		get_logger().warning(message)


def warned_keys() -> List[str]:
	"""The warn_once keys this process has warned about (handed to worker processes so they do not repeat them)."""
	return sorted(_warned_keys)


def mark_warned(keys: Iterable[str]) -> None:
	_warned_keys.update(keys)


def forget_warnings(prefix: str) -> None:
	"""Let the warnings whose keys start with prefix be said again (a module's caches were reset)."""
	for key in [key for key in _warned_keys if key.startswith(prefix)]:
		_warned_keys.discard(key)
