"""Job files in FaceFusion 3.5.0's format and folders, so a job written by one program runs in the other.

A job is `<jobs-path>/<status>/<job id>.json`, the status folder one of drafted, queued, completed, failed. The file
holds {"version": "1", "date_created": ISO time, "date_updated": ISO time or null, "steps": [{"args": {...},
"status": "drafted" | "queued" | "started" | "completed" | "failed"}]}, indented by four spaces like 3.5.0 writes it.
Keys this engine does not know are kept as they are, in the job and in every step's args.

Every write goes to a temporary name in the same folder and is renamed over the file (os.replace), and a status change
is one rename between folders: a job killed at any moment is found whole in exactly one folder.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional

from facefusion import choices
from facefusion.errors import FaceFusionError, InputError
from facefusion.partial_files import replace_atomically

JOB_STATUSES: List[str] = list(choices.job_statuses)
STEP_STATUSES: List[str] = ['drafted', 'queued', 'started', 'completed', 'failed']
JOB_FORMAT_VERSION = '1'
# a job id names a file in its status folder: no folder separators and no leading dot (hidden files, '..'), so an id
# cannot reach outside the jobs path; anything else 3.5.0 accepted (spaces included) stays valid
JOB_ID_PATTERN = re.compile(r'^[^/\\\x00.][^/\\\x00]{0,199}$')


class JobFileError(FaceFusionError):
	"""A job file that is not a job in 3.5.0's format."""


@dataclass
class JobStep:
	args: Dict[str, Any]
	status: str = 'drafted'
	# keys of the step record other than args and status, kept for the round trip
	extra: Dict[str, Any] = field(default_factory=dict)

	def to_content(self) -> Dict[str, Any]:
		return {'args': self.args, 'status': self.status, **self.extra}


@dataclass
class Job:
	job_id: str
	# the folder the file lives in
	status: str
	date_created: str
	date_updated: Optional[str] = None
	steps: List[JobStep] = field(default_factory=list)
	version: str = JOB_FORMAT_VERSION
	extra: Dict[str, Any] = field(default_factory=dict)

	def to_content(self) -> Dict[str, Any]:
		content: Dict[str, Any] = {
			'version': self.version,
			'date_created': self.date_created,
			'date_updated': self.date_updated,
			'steps': [step.to_content() for step in self.steps],
		}
		content.update({key: value for key, value in self.extra.items() if key not in content})
		return content


def current_date_time() -> str:
	# local time with its offset, as 3.5.0 writes it ('2026-12-01T10:15:00.123456+01:00')
	return datetime.now().astimezone().isoformat()


def check_job_id(job_id: Optional[str]) -> str:
	if not job_id or not JOB_ID_PATTERN.match(job_id):
		raise InputError(f'invalid job id {job_id!r}: a job id names a file, so it holds no / or \\ and does not start with a dot')
	return job_id


def step_output_path(job_id: str, step_index: int, output_path: str) -> str:
	"""Where a step's result waits until the job is finalised: `<output name>-<job id>-<index><extension>` beside
	the output (3.5.0's name, extension in lower case, so a remix step written by either program points at the same file)."""
	directory, file_name = os.path.split(output_path)
	stem, extension = os.path.splitext(file_name)
	return os.path.join(directory, f'{stem}-{job_id}-{step_index}{extension.lower()}')


def parse_job(job_id: str, status: str, content: Any, path: Path) -> Job:
	"""The job a file's JSON content describes, or JobFileError saying what is wrong with it."""
	def invalid(reason: str) -> JobFileError:
		return JobFileError(f'job file {path} is not a valid job: {reason}')

	if not isinstance(content, dict):
		raise invalid('the content is not a JSON object')
	missing = [key for key in ('version', 'date_created', 'date_updated', 'steps') if key not in content]
	if missing:
		raise invalid('missing ' + ', '.join(missing))
	if str(content['version']) != JOB_FORMAT_VERSION:
		raise invalid(f'format version {content["version"]!r} is not supported (this engine reads version {JOB_FORMAT_VERSION})')
	if not isinstance(content['steps'], list):
		raise invalid('steps is not a list')
	steps: List[JobStep] = []
	for index, record in enumerate(content['steps']):
		if not isinstance(record, dict) or not isinstance(record.get('args'), dict):
			raise invalid(f'step {index} has no args object')
		step_status = record.get('status')
		if step_status not in STEP_STATUSES:
			raise invalid(f'step {index} has the status {step_status!r} (expected one of {", ".join(STEP_STATUSES)})')
		extra = {key: value for key, value in record.items() if key not in ('args', 'status')}
		steps.append(JobStep(args=record['args'], status=step_status, extra=extra))
	extra = {key: value for key, value in content.items() if key not in ('version', 'date_created', 'date_updated', 'steps')}
	return Job(
		job_id=job_id, status=status, date_created=content['date_created'], date_updated=content['date_updated'], steps=steps,
		version=JOB_FORMAT_VERSION, extra=extra
	)


def write_text_atomically(path: Path, text: str) -> None:
	"""The file appears with its whole new content or keeps its old one, whatever happens during the write."""
	try:
		replace_atomically(path, text.encode('utf-8'), sync=True)
	except OSError as exception:
		raise InputError(f'cannot write the job file {path}: {exception.strerror or exception}') from exception


class JobStore:
	"""The job folders under one --jobs-path."""

	def __init__(self, jobs_path: str) -> None:
		self.jobs_path = Path(jobs_path)

	def init(self) -> None:
		"""The four status folders, created when missing (like 3.5.0 does at every job command)."""
		for status in JOB_STATUSES:
			folder = self.jobs_path / status
			try:
				folder.mkdir(parents=True, exist_ok=True)
			except OSError as exception:
				raise InputError(f'cannot create the jobs folder {folder}: {exception.strerror or exception}') from exception

	def job_path(self, job_id: str, status: str) -> Path:
		return self.jobs_path / status / (check_job_id(job_id) + '.json')

	def find_status(self, job_id: str) -> Optional[str]:
		"""The folder holding the job (searched in 3.5.0's order), None when there is none."""
		for status in JOB_STATUSES:
			if self.job_path(job_id, status).is_file():
				return status
		return None

	def find_job_ids(self, status: str) -> List[str]:
		"""The ids of a folder, oldest file first (3.5.0's order), ties by name."""
		folder = self.jobs_path / status
		if not folder.is_dir():
			return []
		paths = [path for path in folder.glob('*.json') if path.is_file() and JOB_ID_PATTERN.match(path.stem)]
		paths.sort(key=lambda path: (path.stat().st_mtime, path.name))
		return [path.stem for path in paths]

	def exists(self, job_id: str) -> bool:
		return self.find_status(job_id) is not None

	def read(self, job_id: str) -> Job:
		status = self.find_status(job_id)
		if status is None:
			raise InputError(f'job {job_id} not found in {self.jobs_path}')
		path = self.job_path(job_id, status)
		try:
			content = json.loads(path.read_text(encoding='utf-8'))
		except json.JSONDecodeError as exception:
			raise JobFileError(f'job file {path} is not valid JSON: {exception}') from exception
		except OSError as exception:
			raise InputError(f'cannot read the job file {path}: {exception.strerror or exception}') from exception
		return parse_job(job_id, status, content, path)

	def create(self, job_id: str) -> Job:
		if self.exists(job_id):
			raise InputError(f'job {job_id} already exists ({self.find_status(job_id)})')
		job = Job(job_id=job_id, status='drafted', date_created=current_date_time())
		self.write(job, touch=False)
		return job

	def write(self, job: Job, touch: bool = True) -> None:
		"""The job's content into its status folder; touch stamps date_updated as 3.5.0 does on every update."""
		if touch:
			job.date_updated = current_date_time()
		text = json.dumps(job.to_content(), indent=4)
		write_text_atomically(self.job_path(job.job_id, job.status), text)

	def move(self, job: Job, status: str) -> None:
		"""One rename between folders: the job is in the old folder or in the new one, never in both or neither."""
		source = self.job_path(job.job_id, job.status)
		destination = self.job_path(job.job_id, status)
		try:
			os.replace(source, destination)
		except OSError as exception:
			raise InputError(f'cannot move job {job.job_id} to {status}: {exception.strerror or exception}') from exception
		job.status = status

	def delete(self, job: Job) -> None:
		try:
			os.remove(self.job_path(job.job_id, job.status))
		except OSError as exception:
			raise InputError(f'cannot delete job {job.job_id}: {exception.strerror or exception}') from exception
