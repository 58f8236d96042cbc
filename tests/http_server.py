"""A real HTTP server on 127.0.0.1 for download tests (no mocks): serves ``{root}/{release}/{file}``.

It honours ``Range: bytes=N-`` / ``bytes=N-M`` (206 with Content-Range, 416 past the end), records every request,
and can be told to misbehave: drop the connection after some bytes of a file's next response, or ignore Range.
"""
from __future__ import annotations

import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Type


@dataclass(frozen=True)
class RequestRecord:
	method: str
	path: str
	range: Optional[str]


def parse_range(header: str, length: int) -> Optional[Tuple[int, int]]:
	"""(start, end inclusive) of a single ``bytes=`` range, or None when it cannot be satisfied."""
	unit, _, spec = header.partition('=')
	start_text, _, end_text = spec.strip().partition('-')
	if unit.strip() != 'bytes' or not start_text.isdigit():
		return None
	start = int(start_text)
	end = int(end_text) if end_text.isdigit() else length - 1
	if start >= length or end < start:
		return None
	return start, min(end, length - 1)


class ModelServer:
	def __init__(self, root: Path) -> None:
		self.root = root
		self.requests: List[RequestRecord] = []
		# url path -> body bytes to send before cutting the connection; used once, by the next GET of that path
		self.drop_after: Dict[str, int] = {}
		self.support_ranges = True
		self.lock = threading.Lock()
		self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), self._handler_class())
		self.httpd.daemon_threads = True
		# a short poll interval keeps shutdown (once per test) quick
		self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True)

	@property
	def base_url(self) -> str:
		return 'http://127.0.0.1:' + str(self.httpd.server_address[1])

	def start(self) -> 'ModelServer':
		self.thread.start()
		return self

	def stop(self) -> None:
		self.httpd.shutdown()
		self.httpd.server_close()
		self.thread.join(timeout=5)

	def add_file(self, release: str, file_name: str, content: bytes) -> Path:
		path = self.root / release / file_name
		path.parent.mkdir(parents=True, exist_ok=True)
		path.write_bytes(content)
		return path

	def requests_for(self, file_name: str) -> List[RequestRecord]:
		with self.lock:
			return [record for record in self.requests if record.path.rsplit('/', 1)[-1] == file_name]

	def _handler_class(self) -> Type[BaseHTTPRequestHandler]:
		server = self

		class Handler(BaseHTTPRequestHandler):
			def log_message(self, format: str, *args: object) -> None:
				# keep pytest output clean
				pass

			def do_HEAD(self) -> None:
				self.respond(with_body=False)

			def do_GET(self) -> None:
				self.respond(with_body=True)

			def respond(self, with_body: bool) -> None:
				url_path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
				range_header = self.headers.get('Range')
				with server.lock:
					server.requests.append(RequestRecord(self.command, url_path, range_header))
					drop_after = server.drop_after.pop(url_path, None) if with_body else None
				file_path = (server.root / url_path.lstrip('/')).resolve()
				if server.root.resolve() not in file_path.parents or not file_path.is_file():
					self.send_error(404)
					return
				content = file_path.read_bytes()
				status = 200
				body = content
				headers = {'Accept-Ranges': 'bytes'} if server.support_ranges else {}
				if range_header and server.support_ranges:
					span = parse_range(range_header, len(content))
					if span is None:
						self.send_response(416)
						self.send_header('Content-Range', 'bytes */' + str(len(content)))
						self.send_header('Content-Length', '0')
						self.end_headers()
						return
					status = 206
					body = content[span[0]:span[1] + 1]
					headers['Content-Range'] = 'bytes ' + str(span[0]) + '-' + str(span[1]) + '/' + str(len(content))
				self.send_response(status)
				for name, value in headers.items():
					self.send_header(name, value)
				self.send_header('Content-Type', 'application/octet-stream')
				self.send_header('Content-Length', str(len(body)))
				self.end_headers()
				if not with_body:
					return
				if drop_after is not None:
					# announce the whole body, send only part of it, then hang up
					self.wfile.write(body[:drop_after])
					self.wfile.flush()
					self.close_connection = True
					return
				self.wfile.write(body)

		return Handler
