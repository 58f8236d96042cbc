"""One job at a time as a real `python facefusion.py headless-run ...` subprocess: the UI's server survives whatever
the job does, and Stop is SIGTERM, which the CLI handles like Ctrl-C (partial output and temp frames removed, exit
143). The child writes to a pseudo-terminal so its tqdm bar runs (tqdm stays silent on a pipe); the bar's frames,
fps and ETA are read back from that text."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from facefusion import child_process
from facefusion.config import PROJECT_DIR

ENTRY_POINT = PROJECT_DIR / 'facefusion.py'
# tqdm: '  45/100 [00:03<00:04, 12.30frame/s]' (or '1.25s/frame' when slower than a frame a second)
PROGRESS_PATTERN = re.compile(r'(\d+)/(\d+) \[([\d:]+)<([\d:?]+),\s*([\d.?]+)(frame/s|s/frame)\]')
ANSI_PATTERN = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')
LOG_LIMIT = 400
STOP_GRACE_SECONDS = 10.0


@dataclass
class Progress:
	frames: int = 0
	total: int = 0
	fps: float = 0.0
	eta: str = ''

	def describe(self) -> str:
		if not self.total:
			return ''
		return f'{self.frames}/{self.total} frames · {self.fps:.1f} fps · ETA {self.eta}'


@dataclass
class RunState:
	"""What the UI shows of the current (or last) job."""
	running: bool = False
	exit_code: Optional[int] = None
	stopped: bool = False
	output_path: Optional[str] = None
	command: List[str] = field(default_factory=list)
	log_lines: List[str] = field(default_factory=list)
	progress: Progress = field(default_factory=Progress)
	started_at: float = 0.0
	finished_at: float = 0.0

	def log_text(self) -> str:
		return '\n'.join(self.log_lines)

	def error_line(self) -> str:
		"""The CLI's one-line reason, when the job failed."""
		for line in reversed(self.log_lines):
			if line.startswith('[FACEFUSION]'):
				return line
		return f'the job ended with exit code {self.exit_code}'


class JobRefused(RuntimeError):
	"""Start while a job runs."""


class JobRunner:
	def __init__(self, environment: Optional[dict] = None, cwd: Optional[str] = None) -> None:
		self.environment = environment
		self.cwd = cwd
		self.lock = threading.Lock()
		self.process: Optional[subprocess.Popen] = None
		self.state = RunState()
		self.reader: Optional[threading.Thread] = None

	def is_running(self) -> bool:
		with self.lock:
			return self.state.running

	def start(self, arguments: Sequence[str], output_path: str) -> None:
		"""Start `headless-run arguments`; JobRefused while another job runs."""
		with self.lock:
			if self.state.running:
				raise JobRefused('a job is already running; press Stop or wait for it to finish')
			command = [sys.executable, str(ENTRY_POINT), 'headless-run', *arguments]
			leader, follower = open_terminal()
			environment = dict(self.environment or child_process.environment_snapshot())
			environment.setdefault('PYTHONIOENCODING', 'utf-8')
			try:
				self.process = child_process.popen(
					command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=self.cwd, env=environment,
					start_new_session=True
				)
			finally:
				os.close(follower)
			self.state = RunState(running=True, output_path=output_path, command=command, started_at=time.monotonic())
			self.reader = threading.Thread(target=self.read_output, args=(leader, self.process), name='ui-job-reader', daemon=True)
			self.reader.start()

	def read_output(self, leader: int, process: subprocess.Popen) -> None:
		pending = ''
		try:
			while True:
				try:
					chunk = os.read(leader, 4096)
				except OSError:
					# EIO: the child closed its side of the terminal
					break
				if not chunk:
					break
				pending += chunk.decode('utf-8', errors='replace')
				*parts, pending = re.split(r'[\r\n]', pending)
				for part in parts:
					self.take_line(part)
			if pending:
				self.take_line(pending)
		finally:
			os.close(leader)
			exit_code = process.wait()
			with self.lock:
				self.state.exit_code = exit_code
				self.state.running = False
				self.state.finished_at = time.monotonic()

	def take_line(self, text: str) -> None:
		line = ANSI_PATTERN.sub('', text).rstrip()
		if not line.strip():
			return
		with self.lock:
			match = PROGRESS_PATTERN.search(line)
			if match:
				rate = float(match.group(5)) if match.group(5) not in ('?', '') else 0.0
				fps = rate if match.group(6) == 'frame/s' else (1.0 / rate if rate else 0.0)
				self.state.progress = Progress(int(match.group(1)), int(match.group(2)), fps, match.group(4))
				return
			self.state.log_lines.append(line)
			del self.state.log_lines[:-LOG_LIMIT]

	def snapshot(self) -> RunState:
		with self.lock:
			state = self.state
			return RunState(
				state.running, state.exit_code, state.stopped, state.output_path, list(state.command), list(state.log_lines),
				Progress(state.progress.frames, state.progress.total, state.progress.fps, state.progress.eta),
				state.started_at, state.finished_at
			)

	def stop(self, wait: bool = True) -> bool:
		"""SIGTERM to the job (the CLI cleans up and exits 143); SIGKILL if it has not ended in the grace period.
		Returns whether a job was running."""
		with self.lock:
			process = self.process if self.state.running else None
			if process is None:
				return False
			self.state.stopped = True
		try:
			process.send_signal(signal.SIGTERM)
		except ProcessLookupError:
			return True
		if wait:
			self.wait(STOP_GRACE_SECONDS)
			if process.poll() is None:
				process.kill()
				self.wait(STOP_GRACE_SECONDS)
		return True

	def wait(self, timeout: float) -> bool:
		"""Until the job and its reader have ended; whether they did in time."""
		reader = self.reader
		if reader is not None:
			reader.join(timeout)
			return not reader.is_alive()
		return True


def open_terminal() -> Tuple[int, int]:
	"""(read end, write end) of a pseudo-terminal; a plain pipe where there is none (the log still comes, the bar
	does not)."""
	try:
		import pty
	except ImportError:
		return os.pipe()
	leader, follower = pty.openpty()
	set_terminal_width(follower, 160)
	return leader, follower


def set_terminal_width(descriptor: int, columns: int) -> None:
	# a fresh pseudo-terminal reports 0 columns; tqdm's dynamic width would then drop the numbers
	try:
		import fcntl
		import struct
		import termios
		fcntl.ioctl(descriptor, termios.TIOCSWINSZ, struct.pack('HHHH', 40, columns, 0, 0))
	except (ImportError, OSError):
		pass
