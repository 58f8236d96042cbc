"""SIGTERM and SIGHUP handled like Ctrl-C: they raise a KeyboardInterrupt subclass in the main thread, so every
cleanup path Ctrl-C takes runs (partial outputs and temp frames removed, ffmpeg children stopped), and the command
exits with 128 + the signal number and one line.

A signal is never raised inside the import machinery: an exception raised in importlib's own code between taking
and releasing a lock (the global import lock, a module's lock) leaks it, and the next import on any thread waits
forever; the run then hung instead of stopping (SIGTERM in the first tenth of a second, about one
run in forty). Such a signal is delivered again a moment later, once the lock is free. Ctrl-C gets the same
handler (raising KeyboardInterrupt, as Python's own does) unless the process was started with SIGINT ignored.
"""
from __future__ import annotations

import _imp
import contextlib
import os
import signal
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Dict, Iterator, List, Optional, Tuple

# how long a signal that came while the import lock was held waits before it is delivered again
REDELIVERY_SECONDS = 0.01
# where importlib's own code runs (the frozen bootstrap modules)
IMPORT_MACHINERY = ('<frozen importlib._bootstrap>', '<frozen importlib._bootstrap_external>')
# Ctrl-C's line and exit code (128 + SIGINT)
INTERRUPTED_MESSAGE = 'interrupted by the user; no partial output was written'
EXIT_INTERRUPTED = 130
# what SIGTERM (kill, a service manager, a job scheduler) and SIGHUP (the terminal closed) are reported as
SIGNAL_MESSAGES: Dict[str, str] = {
	'SIGTERM': 'terminated (SIGTERM); no partial output was written',
	'SIGHUP': 'the terminal hung up (SIGHUP); no partial output was written'
}


@dataclass
class HeldSignals:
	"""The signals that came while held() blocks were open (the handlers run on the main thread only)."""
	depth: int = 0
	pending: List[int] = field(default_factory=list)


# the one registry of held signals, for the process
HELD = HeldSignals()


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
	# an ignored SIGINT (nohup, a device worker whose driver decides) stays ignored
	if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
		signal.signal(signal.SIGINT, raise_keyboard_interrupt)


def inside_import_machinery(frame: Optional[FrameType]) -> bool:
	"""Whether the main thread was stopped in importlib's own code (its lock bookkeeping), or some thread holds the
	global import lock. The code of a module being imported is not that: an interrupt there fails the import
	cleanly."""
	return _imp.lock_held() or (frame is not None and frame.f_code.co_filename in IMPORT_MACHINERY)


@contextlib.contextmanager
def held() -> Iterator[None]:
	"""Ctrl-C, SIGTERM and SIGHUP wait until the block ends, and are raised then: for a step that must not stop half
	done (starting a worker process, whose start-up data would be cut off and make it print a traceback)."""
	HELD.depth += 1
	try:
		yield
	finally:
		HELD.depth -= 1
		if HELD.depth == 0 and HELD.pending:
			pending = list(dict.fromkeys(HELD.pending))
			HELD.pending.clear()
			for signum in pending:
				os.kill(os.getpid(), signum)


def must_wait(signum: int, frame: Optional[FrameType]) -> bool:
	"""Whether a signal that just came must wait (held, or inside the import machinery); it is then delivered again
	when the wait is over."""
	if HELD.depth > 0:
		HELD.pending.append(signum)
		return True
	if inside_import_machinery(frame):
		deliver_again_later(signum)
		return True
	return False


def deliver_again_later(signum: int) -> None:
	timer = threading.Timer(REDELIVERY_SECONDS, os.kill, (os.getpid(), signum))
	timer.daemon = True
	timer.start()


def raise_keyboard_interrupt(signum: int, frame: Optional[FrameType]) -> None:
	if must_wait(signum, frame):
		return
	raise KeyboardInterrupt


def raise_signal_interrupt(signum: int, frame: Optional[FrameType]) -> None:
	if must_wait(signum, frame):
		return
	# a second TERM / HUP must not cut the cleanup short (SIGKILL still ends the process); a handler that does
	# nothing rather than SIG_IGN, which a child started during the cleanup would inherit
	for name in SIGNAL_MESSAGES:
		other = getattr(signal, name, None)
		if other is not None:
			signal.signal(other, ignore_signal)
	raise SignalInterrupt(signum)


def ignore_signal(signum: int, frame: Optional[FrameType]) -> None:
	pass


def ignore_signals() -> None:
	"""Ctrl-C, SIGTERM and SIGHUP do nothing from now on (the process is about to end on its own)."""
	for name in ('SIGINT', *SIGNAL_MESSAGES):
		signum = getattr(signal, name, None)
		if signum is not None:
			signal.signal(signum, ignore_signal)


def interrupt_behind(error: BaseException) -> Optional[KeyboardInterrupt]:
	"""The Ctrl-C / SIGTERM that caused error, if any: an extension module whose initialisation was interrupted
	reports ImportError('initialization failed') with the interrupt as its cause."""
	seen = set()
	cause: Optional[BaseException] = error
	while cause is not None and id(cause) not in seen:
		if isinstance(cause, KeyboardInterrupt):
			return cause
		seen.add(id(cause))
		cause = cause.__cause__ or cause.__context__
	return None


def outcome(interrupt: KeyboardInterrupt) -> Tuple[str, int]:
	"""The line a stopped command reports, and its exit code."""
	if isinstance(interrupt, SignalInterrupt):
		return interrupt.message, interrupt.exit_code
	return INTERRUPTED_MESSAGE, EXIT_INTERRUPTED
