"""Getting model files onto disk: download what is missing, resume what was interrupted, never trust a bad file.

Layout of the models folder (3.5.0's): ``<file>.onnx`` with ``<file>.hash`` (its CRC32) beside it. While a download
runs, bytes go to ``<file>.onnx.part`` and are renamed only once complete and matching the hash, so a file under
the final name is never a partial one (3.5.0 resumes in place, which leaves partial files that look final).

Differences from 3.5.0, on purpose:
- a model that fails its hash is moved aside to ``<file>.onnx.corrupt`` (3.5.0 deletes it): it may be the user's
  own file next to a stale ``.hash``. If it was merely an interrupted download (a prefix of the real file), it is
  resumed from and then removed, since its bytes live on in the completed model;
- no curl: urllib with short timeouts; a host that refuses, does not resolve or times out is skipped for the rest
  of the call, so an offline machine fails after one quick try per host instead of stalling per file;
- on failure one error line names every file still missing and the folder to put it in by hand.

``FACEFUSION_DOWNLOAD_BASE_URL`` (see registry.download_urls) points every download at a mirror or test server.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from facefusion.errors import FaceFusionError, ModelUnavailableError
from facefusion.logger import get_logger
from facefusion.models import hashing
from facefusion.models.layout import PathLike, hash_path, model_path
from facefusion.models.registry import ModelSpec, get_model, models_for_scope

# seconds for connecting and for each read; long enough for a slow CDN, short enough that offline fails fast
TIMEOUT_SECONDS = 10.0


def _missing_files(spec: ModelSpec, folder: Path) -> List[str]:
	files = []
	if not hashing.validate(model_path(folder, spec), hash_path(folder, spec)):
		files.append(spec.file_name)
	if hashing.read_hash(hash_path(folder, spec)) is None:
		files.append(spec.hash_file_name)
	return files


def _unavailable_message(failures: List[Tuple[ModelSpec, str]], folder: Path) -> str:
	files: List[str] = []
	reasons: List[str] = []
	for spec, reason in failures:
		files.extend(_missing_files(spec, folder) or [spec.file_name])
		if reason not in reasons:
			reasons.append(reason)
	reason_text = '; '.join(reasons)
	if len(reason_text) > 300:
		reason_text = reason_text[:297] + '...'
	return 'model files missing or invalid: ' + ', '.join(files) + ' (' + reason_text + '); place them by hand, ' \
		'each .onnx with its .hash, in ' + str(folder.resolve())


def models_present(names: Sequence[str], models_path: PathLike) -> bool:
	"""Whether every named model is in the folder and passes its hash: ensure_models would then make no request."""
	folder = Path(models_path)
	return all(hashing.validate(model_path(folder, get_model(name)), hash_path(folder, get_model(name))) for name in dict.fromkeys(names))


def ensure_models(names: Sequence[str], models_path: PathLike, providers: Sequence[str], show_progress: bool = True,
	timeout: float = TIMEOUT_SECONDS) -> List[Path]:
	"""Paths of the named models (one per name, in order), downloading what is missing or fails its hash.

	Raises KeyError for an unknown model name and ModelUnavailableError (one line: every file still missing and
	the folder to put it in) when any model cannot be made valid. Makes no request when all are valid already.
	"""
	folder = Path(models_path)
	specs: Dict[str, ModelSpec] = {}
	for name in names:
		specs[name] = get_model(name)
	paths = [model_path(folder, specs[name]) for name in names]
	pending = [
		spec for spec in specs.values() if not hashing.validate(model_path(folder, spec), hash_path(folder, spec))
	]
	if not pending:
		return paths

	failures: List[Tuple[ModelSpec, str]] = []
	try:
		folder.mkdir(parents=True, exist_ok=True)
	except OSError as error:
		failures = [(spec, 'cannot create the folder: ' + str(error.strerror or error)) for spec in pending]
		raise ModelUnavailableError(_unavailable_message(failures, folder)) from None
	# the network code loads only when something is to be fetched (http.client, urllib and tqdm: 50 ms at every start)
	from facefusion.models.fetch import Downloader
	downloader = Downloader(providers, show_progress, timeout)
	for spec in pending:
		try:
			reason = downloader.ensure(spec, folder)
		except OSError as error:
			# disk full, permissions: report with the others rather than abort the remaining models
			reason = 'cannot write ' + str(error.filename or spec.file_name) + ': ' + str(error.strerror or error)
		if reason:
			failures.append((spec, reason))
	if failures:
		raise ModelUnavailableError(_unavailable_message(failures, folder))
	return paths


def force_download(scope: str, models_path: PathLike, providers: Sequence[str], show_progress: bool = True) -> int:
	"""The ``force-download`` command: every model of the scope; 0 when all are valid, 1 after a one-line error."""
	try:
		specs = models_for_scope(scope)
		ensure_models([spec.name for spec in specs], models_path, providers, show_progress)
	except FaceFusionError as error:
		print('[FACEFUSION] ' + error.message, file=sys.stderr)
		return 1
	except ValueError as error:
		print('[FACEFUSION] ' + str(error), file=sys.stderr)
		return 1
	get_logger().info(str(len(specs)) + ' models ready in ' + str(Path(models_path).resolve()))
	return 0
