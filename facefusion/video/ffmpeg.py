"""The ffmpeg binary: where it is, what it can do, and running it with errors a user can read.

Every other video module goes through here, so the binary is located once, its encoder / decoder / hwaccel lists
are read once per process (each listing is a process start of about 20 ms, and the CLI asks for them while
building its choices), and a failing command always turns into one ``ProcessingError`` line that names what we
were doing and the most telling line ffmpeg printed.
"""
from __future__ import annotations

import collections
import functools
import io
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import Deque, FrozenSet, List, Optional, Sequence, Tuple

from facefusion import child_process
from facefusion.errors import FaceFusionError, ProcessingError
from facefusion.logger import get_logger

# an ffmpeg binary chosen by the user wins over everything else (also handy for testing against ffmpeg 5.1)
FFMPEG_ENVIRONMENT_KEY = 'FACEFUSION_FFMPEG'
# ffmpeg lines that say nothing about why a command failed
_NOISE_PATTERN = re.compile(r'^(Conversion failed!|Exiting normally|frame=|size=|video:|\s*$)')
# lines that name the real cause, preferred over the generic "Error opening input files" that follows them
_CAUSE_PATTERN = re.compile(
	r'(moov atom not found|partial file|Invalid data|No such file|Permission denied|not supported|Unsupported|'
	r'Unknown encoder|Unrecognized option|could not|Could not|only supported|Cannot load|No space left|'
	r'Invalid argument|incorrect codec|not implemented|Error while|experimental|does not contain)'
)


@dataclass(frozen=True)
class FfmpegResult:
	returncode: int
	stdout: bytes
	stderr: str


def find_ffmpeg() -> str:
	"""The ffmpeg to use: $FACEFUSION_FFMPEG, else the one on PATH (the user's own build, possibly with more
	encoders), else the static binary that imageio-ffmpeg ships."""
	return _find_ffmpeg_cached()


@functools.lru_cache(maxsize=None)
def _find_ffmpeg_cached() -> str:
	chosen = os.environ.get(FFMPEG_ENVIRONMENT_KEY)
	if chosen:
		if shutil.which(chosen) or os.path.isfile(chosen):
			return shutil.which(chosen) or chosen
		raise FaceFusionError('{} points to {}, which is not an ffmpeg binary'.format(FFMPEG_ENVIRONMENT_KEY, chosen))
	on_path = shutil.which('ffmpeg')
	if on_path:
		return on_path
	try:
		import imageio_ffmpeg
		return imageio_ffmpeg.get_ffmpeg_exe()
	except (ImportError, RuntimeError) as exception:
		raise FaceFusionError('ffmpeg was not found: install ffmpeg or the imageio-ffmpeg package ({})'.format(exception))


def reset_caches() -> None:
	"""Forget the located binary and its capability lists (tests that switch binaries call this)."""
	_find_ffmpeg_cached.cache_clear()
	_list_capabilities.cache_clear()
	ffmpeg_version.cache_clear()


@functools.lru_cache(maxsize=None)
def ffmpeg_version() -> str:
	"""The version string ffmpeg reports, e.g. 'n9.0.2-17-g2a571b6068-20260930' or '5.1.9-0+deb12u1'."""
	from facefusion.binary_facts import remembered

	def ask() -> str:
		result = run_ffmpeg(['-version'], what='Reading the ffmpeg version', quiet=False)
		match = re.search(rb'ffmpeg version (\S+)', result.stdout)
		return match.group(1).decode() if match else 'unknown'
	return remembered(find_ffmpeg(), 'version', ask)


def ffmpeg_major_version() -> int:
	"""The major version, or 0 when the build string does not say (git builds such as 'N-112345-g...')."""
	match = re.match(r'n?(\d+)\.', ffmpeg_version())
	return int(match.group(1)) if match else 0


def available_encoders() -> FrozenSet[str]:
	return _list_capabilities('-encoders')


def available_decoders() -> FrozenSet[str]:
	return _list_capabilities('-decoders')


def available_hwaccels() -> FrozenSet[str]:
	return _list_capabilities('-hwaccels')


@functools.lru_cache(maxsize=None)
def _list_capabilities(flag: str) -> FrozenSet[str]:
	from facefusion.binary_facts import remembered
	return frozenset(remembered(find_ffmpeg(), 'list' + flag, lambda: sorted(_ask_capabilities(flag))))


def _ask_capabilities(flag: str) -> FrozenSet[str]:
	result = run_ffmpeg([flag], what='Listing ffmpeg {}'.format(flag.lstrip('-')), quiet=False)
	names = set()
	text = result.stdout.decode(errors='replace')
	if flag == '-hwaccels':
		# a header line, then one method per line
		for line in text.splitlines()[1:]:
			if line.strip():
				names.add(line.strip())
		return frozenset(names)
	# codec lists: a legend that ends with a dashed line, then ' V....D name  description'
	past_legend = False
	for line in text.splitlines():
		if not past_legend:
			past_legend = line.strip().startswith('------')
			continue
		parts = line.split()
		if len(parts) >= 2:
			names.add(parts[1])
	return frozenset(names)


def local_path(path: object) -> str:
	"""A file path ffmpeg cannot mistake for an option ('-clip.mp4') or a protocol ('take:2.mp4'): absolute
	paths start with '/' (or a drive letter), which ends ffmpeg's protocol-name scan."""
	return os.path.abspath(str(path))


def base_command(loglevel: str = 'error') -> List[str]:
	# -nostdin keeps ffmpeg from eating the terminal's keystrokes (it still reads pipe:0 when asked to)
	return [find_ffmpeg(), '-hide_banner', '-nostdin', '-loglevel', loglevel]


def run_ffmpeg(arguments: Sequence[str], what: str, quiet: bool = True, timeout: Optional[float] = None, input_bytes: Optional[bytes] = None, check: bool = True) -> FfmpegResult:
	"""Run ffmpeg to completion. ``what`` names the step for the error message ('Merging audio into out.mp4').
	With check, a non-zero exit raises ProcessingError with one line; without, the caller inspects the result."""
	command = base_command() if quiet else [find_ffmpeg(), '-hide_banner', '-nostdin']
	command += [str(argument) for argument in arguments]
	get_logger().debug('ffmpeg: %s', ' '.join(command[1:]))
	try:
		completed = child_process.run(command, input=input_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, stdin=None if input_bytes is not None else subprocess.DEVNULL)
	except subprocess.TimeoutExpired:
		raise ProcessingError('{} failed: ffmpeg did not finish within {:.0f} s'.format(what, timeout))
	except OSError as exception:
		raise ProcessingError('{} failed: ffmpeg could not be started ({})'.format(what, exception))
	result = FfmpegResult(completed.returncode, completed.stdout, completed.stderr.decode(errors='replace'))
	if check and result.returncode != 0:
		raise ProcessingError('{} failed: {}'.format(what, summarize_error(result.stderr, result.returncode)))
	return result


def summarize_error(stderr: str, returncode: Optional[int] = None) -> str:
	"""The one line of ffmpeg's output that best explains a failure, without its '[h264 @ 0x55...]' prefix."""
	lines = [clean_line(line) for line in stderr.splitlines()]
	lines = [line for line in lines if line and not _NOISE_PATTERN.match(line)]
	for line in lines:
		if _CAUSE_PATTERN.search(line):
			return line
	if lines:
		return lines[-1]
	if returncode is not None:
		return 'ffmpeg exited with code {}'.format(returncode)
	return 'ffmpeg reported no reason'


def clean_line(line: str) -> str:
	# '[in#0/mov,mp4 @ 0x55c...] moov atom not found' -> 'moov atom not found'
	return re.sub(r'^(\[[^\]]*@ 0x[0-9a-f]+\]\s*)+', '', line.strip())


class StderrCollector:
	"""Drains a process's stderr in a thread and keeps its last lines.

	A long-running pipe process must have its stderr read continuously: a damaged file can make ffmpeg print an
	error per frame, and once the 64 KiB pipe buffer is full ffmpeg blocks and the whole pipeline deadlocks.
	"""

	def __init__(self, stream: Optional[object], keep_lines: int = 200) -> None:
		self.lines: Deque[str] = collections.deque(maxlen=keep_lines)
		# a raw (unbuffered) pipe's readline reads one byte per system call
		self._stream = io.BufferedReader(stream) if stream is not None and not hasattr(stream, 'peek') else stream
		self._thread: Optional[threading.Thread] = None
		if stream is not None:
			self._thread = threading.Thread(target=self._drain, name='ffmpeg-stderr', daemon=True)
			self._thread.start()

	def _drain(self) -> None:
		for raw_line in iter(self._stream.readline, b''):
			self.take(raw_line.decode(errors='replace').rstrip())
		self.ended()

	def take(self, line: str) -> None:
		"""One line as it comes (a subclass may sort them)."""
		self.lines.append(line)

	def ended(self) -> None:
		"""The stream is closed: every line was taken."""

	def join(self, timeout: float = 5.0) -> None:
		if self._thread is not None:
			self._thread.join(timeout)

	def text(self) -> str:
		return '\n'.join(self.lines)


# '-loglevel level+info' tags each line with its level after the contexts: '[h264 @ 0x55...] [error] ...'
_LEVEL_TAG_PATTERN = re.compile(r'^((?:\[[^\]]*@ 0x[0-9a-f]+\] )*)\[(trace|debug|verbose|info|warning|error|fatal|panic)\] ')
ERROR_LEVELS = frozenset(('error', 'fatal', 'panic'))


def split_log_level(line: str) -> Tuple[Optional[str], str]:
	"""(level, the line as ffmpeg prints it without the level flag) for a line logged at -loglevel level+...; level
	None for a line without a tag (the continuation of a message that spans lines)."""
	match = _LEVEL_TAG_PATTERN.match(line)
	if match is None:
		return None, line
	return match.group(2), match.group(1) + line[match.end():]


def has_error_lines(stderr: str) -> bool:
	"""Whether ffmpeg (at -loglevel error) complained about the data, as opposed to printing nothing."""
	return any(clean_line(line) for line in stderr.splitlines())
