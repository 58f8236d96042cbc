"""Fetching one model file over the network for download.py: resumed ``.part`` files, per-host failure memory,
the hash checked before a file takes its final name, and a file that fails its hash moved aside. Loaded only when a
model is missing: a run whose models are in place never imports the HTTP stack."""
from __future__ import annotations

import http.client
import os
import re
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tqdm import tqdm

from facefusion import metadata
from facefusion.logger import get_logger
from facefusion.models import hashing
from facefusion.models.layout import hash_path, model_path, part_path
from facefusion.models.registry import ModelSpec, download_urls

CHUNK_SIZE = 1 << 16
# tries per URL while each try still makes progress (an interrupted transfer resumes where it stopped)
ATTEMPTS_PER_URL = 3
# a .hash is 8 bytes; a larger answer is an error page, not a hash
HASH_DOWNLOAD_LIMIT = 1024
USER_AGENT = metadata.NAME + '/' + metadata.COMPATIBLE_VERSION
CORRUPT_SUFFIX = '.corrupt'
CONTENT_RANGE_PATTERN = re.compile(r'bytes (\d+)-(\d+)/(\d+|\*)')


@dataclass
class _PartFile:
	"""The ``.part`` being filled for one model, and what its current bytes are made of."""
	path: Path
	# a file under the final name that fails its hash. 3.5.0 (curl --continue-at) leaves interrupted downloads
	# there, so we offer its bytes as the start of the download; they are copied into the .part only once the
	# server agrees to send the rest (206), and if they were no prefix of the real file the hash says so
	seed: Optional[Path] = None
	# the .part starts with the seed's bytes (so the seed is no longer needed once the model is valid)
	seeded: bool = False
	# the .part holds bytes from more than one response (or from a seed): a hash failure may be the old bytes' fault
	mixed: bool = False

	def size(self) -> int:
		return self.path.stat().st_size if self.path.exists() else 0

	def offset(self) -> int:
		"""Where the next request should start."""
		if self.path.exists():
			return self.size()
		if self.seed is not None and self.seed.exists():
			return self.seed.stat().st_size
		return 0

	def discard(self) -> None:
		if self.path.exists():
			self.path.unlink()
		self.seed = None
		self.seeded = False
		self.mixed = False


@dataclass
class _Attempt:
	"""The outcome of one GET for a model file."""
	# every announced byte arrived (or, with no length announced, the body ended cleanly)
	complete: bool = False
	received: int = 0
	error: Optional[str] = None
	# the .part could not be resumed and was discarded: try again from zero right away
	restart: bool = False


def _host(url: str) -> str:
	return urllib.parse.urlsplit(url).netloc


def _cause(error: BaseException) -> str:
	"""A short cause: 'Name or service not known', 'Connection refused', 'timed out'."""
	if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
		error = error.reason if isinstance(error.reason, BaseException) else OSError(str(error.reason))
	if isinstance(error, TimeoutError):
		return 'timed out'
	if isinstance(error, OSError) and error.strerror:
		return str(error.strerror)
	return str(error) or type(error).__name__


def _describe(error: BaseException, url: str) -> str:
	if isinstance(error, urllib.error.HTTPError):
		return 'HTTP ' + str(error.code) + ' for ' + url
	if _is_host_failure(error):
		return 'cannot reach ' + _host(url) + ' (' + _cause(error) + ')'
	return type(error).__name__ + ' from ' + _host(url) + (': ' + str(error) if str(error) else '')


def _is_host_failure(error: BaseException) -> bool:
	"""Refused, unresolvable, timed out or TLS failure: the host, not the file, is the problem."""
	if isinstance(error, urllib.error.HTTPError):
		return False
	return isinstance(error, (urllib.error.URLError, TimeoutError))


def _write_atomically(path: Path, content: bytes) -> None:
	temporary = part_path(path)
	temporary.write_bytes(content)
	os.replace(temporary, path)


@dataclass
class Downloader:
	"""State for one ensure_models call."""
	providers: Sequence[str]
	show_progress: bool
	timeout: float
	# hosts that failed at connection level, with the cause; not retried during this call, so an offline machine
	# costs one quick try per host
	down_hosts: Dict[str, str] = field(default_factory=dict)

	def _open(self, url: str, offset: int = 0) -> http.client.HTTPResponse:
		request = urllib.request.Request(url, headers={'User-Agent': USER_AGENT})
		if offset > 0:
			request.add_header('Range', 'bytes=' + str(offset) + '-')
		# redirects (GitHub and Hugging Face both redirect to a CDN) are followed and keep the Range header
		return urllib.request.urlopen(request, timeout=self.timeout)

	def _usable(self, urls: List[str]) -> List[str]:
		return [url for url in urls if _host(url) not in self.down_hosts]

	def _mark_down(self, url: str, error: BaseException) -> None:
		self.down_hosts.setdefault(_host(url), _cause(error))

	def _no_url_reason(self, urls: List[str]) -> str:
		if not urls:
			return 'no download provider selected'
		hosts = list(dict.fromkeys(_host(url) for url in urls))
		causes = list(dict.fromkeys(self.down_hosts.get(host, 'not tried') for host in hosts))
		return 'cannot reach ' + ', '.join(hosts) + ' (' + '; '.join(causes) + ')'

	def _final_reason(self, urls: List[str], reason: str) -> str:
		# when every host was unreachable, say so once rather than quoting the last host's error
		if urls and all(_host(url) in self.down_hosts for url in urls):
			return self._no_url_reason(urls)
		return reason

	def ensure(self, spec: ModelSpec, folder: Path) -> Optional[str]:
		"""Make ``spec``'s model and hash valid on disk; the reason when that failed, None on success."""
		onnx_path = model_path(folder, spec)
		hash_file = hash_path(folder, spec)
		if hashing.validate(onnx_path, hash_file):
			return None
		if hashing.read_hash(hash_file) is None:
			reason = self.fetch_hash(spec, hash_file)
			if reason:
				return reason
			# a model already on disk may be fine: it only lacked its hash
			if hashing.validate(onnx_path, hash_file):
				return None
		return self.fetch_model(spec, onnx_path, hash_file)

	def fetch_hash(self, spec: ModelSpec, hash_file: Path) -> Optional[str]:
		logger = get_logger()
		if hash_file.exists():
			logger.warning(hash_file.name + ' is not 8 lowercase hex digits; downloading it again')
		urls = download_urls(spec, self.providers, spec.hash_file_name)
		reason = self._no_url_reason(urls)
		for url in self._usable(urls):
			try:
				with self._open(url) as response:
					content = response.read(HASH_DOWNLOAD_LIMIT + 1)
			except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
				reason = _describe(error, url)
				if _is_host_failure(error):
					self._mark_down(url, error)
				continue
			# be lenient with what a mirror serves (a trailing newline), strict with what we write (3.5.0's format)
			text = content.decode('ascii', errors='replace').strip().lower()
			if len(content) > HASH_DOWNLOAD_LIMIT or not hashing.HASH_PATTERN.fullmatch(text):
				reason = 'no valid hash at ' + url
				continue
			_write_atomically(hash_file, text.encode('ascii'))
			return None
		return self._final_reason(urls, reason)

	def fetch_model(self, spec: ModelSpec, onnx_path: Path, hash_file: Path) -> Optional[str]:
		logger = get_logger()
		part = _PartFile(part_path(onnx_path))
		urls = download_urls(spec, self.providers)
		reason = self._no_url_reason(urls)
		# a download that completed but was not renamed (interrupted between the two)
		if part.path.exists() and hashing.validate(part.path, hash_file):
			self.finish(part, onnx_path)
			return None
		# the file under the final name stays where it is until a valid replacement is ready
		if onnx_path.exists() and not part.path.exists():
			part.seed = onnx_path
		for url in urls:
			if _host(url) in self.down_hosts:
				continue
			for _ in range(ATTEMPTS_PER_URL):
				attempt = self.fetch_part(url, part, spec.file_name)
				if attempt.restart:
					reason = attempt.error or reason
					continue
				if attempt.complete:
					if hashing.validate(part.path, hash_file):
						self.finish(part, onnx_path)
						return None
					if part.mixed:
						# maybe only the older bytes were wrong: once more from zero
						logger.warning(spec.file_name + ' fails its hash after resuming; downloading it from zero')
						part.discard()
						reason = spec.file_name + ' fails its hash after resuming'
						continue
					# a whole fresh copy that does not match: this host serves something else
					logger.warning(spec.file_name + ' from ' + _host(url) + ' fails its hash; discarded')
					part.discard()
					reason = spec.file_name + ' from ' + _host(url) + ' fails its hash'
					break
				reason = attempt.error or reason
				if attempt.received == 0:
					break
				logger.info(spec.file_name + ': ' + (attempt.error or 'transfer interrupted') + '; resuming')
		# an incomplete .part stays for the next run to resume
		return self._final_reason(urls, reason)

	def fetch_part(self, url: str, part: _PartFile, label: str) -> _Attempt:
		logger = get_logger()
		offset = part.offset()
		try:
			response = self._open(url, offset)
		except urllib.error.HTTPError as error:
			error.close()
			if error.code == 416 and offset > 0:
				# what we hold is not shorter than the remote file, so it is not a prefix of it
				part.discard()
				return _Attempt(error=_describe(error, url), restart=True)
			return _Attempt(error=_describe(error, url))
		except (OSError, http.client.HTTPException, ValueError) as error:
			if _is_host_failure(error):
				self._mark_down(url, error)
			return _Attempt(error=_describe(error, url))

		with response:
			total: Optional[int] = None
			if offset > 0 and response.status == 206:
				match = CONTENT_RANGE_PATTERN.fullmatch(response.headers.get('Content-Range', '').strip())
				if match is None or int(match.group(1)) != offset:
					part.discard()
					return _Attempt(error='unexpected Content-Range from ' + _host(url), restart=True)
				total = int(match.group(3)) if match.group(3) != '*' else None
				if part.seed is not None and not part.path.exists():
					shutil.copyfile(part.seed, part.path)
					part.seeded = True
				mode = 'ab'
				part.mixed = True
				logger.info('resuming ' + label + ' at byte ' + str(offset) + ' from ' + url)
			else:
				# a full body (the server ignored or was not sent a Range): start the .part over
				length = response.headers.get('Content-Length', '')
				total = int(length) if length.isdigit() else None
				mode = 'wb'
				offset = 0
				part.seed = None
				part.seeded = False
				part.mixed = False
				logger.info('downloading ' + label + ' from ' + url)

			received = 0
			error_text: Optional[str] = None
			with tqdm(total=total, initial=offset, unit='B', unit_scale=True, unit_divisor=1024, desc=label,
				disable=not self.show_progress, leave=False, file=sys.stderr) as progress:
				try:
					with open(part.path, mode) as file:
						while True:
							chunk = response.read(CHUNK_SIZE)
							if not chunk:
								break
							file.write(chunk)
							received += len(chunk)
							progress.update(len(chunk))
				except (OSError, http.client.HTTPException) as error:
					error_text = _describe(error, url)

		size = offset + received
		if error_text is None and total is not None and size < total:
			error_text = 'connection to ' + _host(url) + ' closed after ' + str(size) + ' of ' + str(total) + ' bytes'
		return _Attempt(complete=error_text is None, received=received, error=error_text)

	def finish(self, part: _PartFile, onnx_path: Path) -> None:
		if part.seeded:
			# the old file was an interrupted download: its bytes are the start of the now valid model
			get_logger().info(onnx_path.name + ' was an interrupted download; completed it')
		elif onnx_path.exists():
			# never replace a file that failed its hash without keeping it
			self.move_aside(onnx_path)
		os.replace(part.path, onnx_path)

	def move_aside(self, onnx_path: Path) -> Path:
		target = onnx_path.with_name(onnx_path.name + CORRUPT_SUFFIX)
		index = 1
		while target.exists():
			target = onnx_path.with_name(onnx_path.name + CORRUPT_SUFFIX + '.' + str(index))
			index += 1
		os.replace(onnx_path, target)
		get_logger().warning(onnx_path.name + ' fails its hash: moved aside to ' + str(target))
		return target
