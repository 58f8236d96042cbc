"""SIGTERM and SIGHUP handled like Ctrl-C: they raise a KeyboardInterrupt subclass in the main thread, so every
cleanup path Ctrl-C takes runs (partial outputs and temp frames removed, ffmpeg children stopped), and the command
exits with 128 + the signal number and one line."""
from __future__ import annotations

import signal
from types import FrameType
from typing import Dict, Optional

# what SIGTERM (kill, a service manager, a job scheduler) and SIGHUP (the terminal closed) are reported as
SIGNAL_MESSAGES: Dict[str, str] = {
	'SIGTERM': 'terminated (SIGTERM); no partial output was written',
	'SIGHUP': 'the terminal hung up (SIGHUP); no partial output was written'
}


class SignalInterrupt(KeyboardInterrupt):
	"""SIGTERM / SIGHUP as a KeyboardInterrupt, so they take every cleanup path Ctrl-C takes (partial outputs and
	temp frames removed, ffmpeg children stopped); the signal number gives the exit code 128 + signum."""

	def __init__(self, signum: int) -> None:
		super().__init__(signum)
		self.signum = signum

	@property
	def exit_code(self) -> int:
		return 128 + self.signum

	@property
	def message(self) -> str:
		return SIGNAL_MESSAGES.get(signal.Signals(self.signum).name, f'stopped by signal {self.signum}; no partial output was written')


def install_signal_handlers() -> None:
	"""SIGTERM and SIGHUP raise SignalInterrupt in the main thread (Python runs handlers there). Only in the process
	entry point: a library caller keeps its own handlers."""
	for name in SIGNAL_MESSAGES:
		signum = getattr(signal, name, None)
		if signum is not None:
			signal.signal(signum, raise_signal_interrupt)


def raise_signal_interrupt(signum: int, frame: Optional[FrameType]) -> None:
	# a second TERM / HUP must not cut the cleanup short (SIGKILL still ends the process); a handler that does
	# nothing rather than SIG_IGN, which a child started during the cleanup would inherit
	for name in SIGNAL_MESSAGES:
		other = getattr(signal, name, None)
		if other is not None:
			signal.signal(other, ignore_signal)
	raise SignalInterrupt(signum)


def ignore_signal(signum: int, frame: Optional[FrameType]) -> None:
	pass
