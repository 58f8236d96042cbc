"""The job-manager commands: create, submit, delete, list, and the step edits (add, remix, insert, remove).

Semantics follow 3.5.0; where it is loose this engine is strict and says why in one line: steps are edited on
drafted jobs only (3.5.0's help says so, its code edits any job, even one that is running), a step index outside
the job is an error, and a negative index counts from the end (-1 is the last step; 3.5.0 treats every negative
index as the last). Every change holds the job's lock, so it never races a run of the same job.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from facefusion import logger
from facefusion.errors import FaceFusionError, InputError
from facefusion.jobs.lock import JobLock
from facefusion.jobs.store import Job, JobStep, JobStore, check_job_id, step_output_path

# how long an edit waits for a lock held by another short edit before it gives up
EDIT_LOCK_WAIT_S = 2.0


@dataclass(frozen=True)
class JobRow:
	job_id: str
	step_count: int
	date_created: str
	date_updated: Optional[str]
	status: str


def edit_lock(store: JobStore, job_id: str, purpose: str) -> JobLock:
	return JobLock(str(store.jobs_path), check_job_id(job_id), purpose, wait_s=EDIT_LOCK_WAIT_S)


def read_drafted(store: JobStore, job_id: str, purpose: str) -> Job:
	job = store.read(job_id)
	if job.status != 'drafted':
		raise InputError(f'job {job_id} is {job.status}: {purpose} works on drafted jobs only')
	return job


def resolve_step_index(job: Job, step_index: int) -> int:
	"""The step a possibly negative index names; InputError when the job has no such step."""
	count = len(job.steps)
	resolved = step_index + count if step_index < 0 else step_index
	if not 0 <= resolved < count:
		raise InputError(f'job {job.job_id} has no step {step_index} (it has {count} step{"" if count == 1 else "s"}: 0 to {count - 1})' if count else f'job {job.job_id} has no steps yet')
	return resolved


def create_job(store: JobStore, job_id: str) -> None:
	with edit_lock(store, job_id, 'job-create'):
		store.create(check_job_id(job_id))
	logger.get_logger().info(f'job {job_id} created')


def submit_job(store: JobStore, job_id: str) -> None:
	with edit_lock(store, job_id, 'job-submit'):
		job = read_drafted(store, job_id, 'job-submit')
		if not job.steps:
			raise InputError(f'job {job_id} has no steps: add one with job-add-step before submitting it')
		for step in job.steps:
			step.status = 'queued'
		store.write(job)
		store.move(job, 'queued')
	logger.get_logger().info(f'job {job_id} submitted')


def for_each_job(job_ids: List[str], action: Callable[[str], None], halt_on_error: bool, what: str) -> None:
	"""Run action on every job; failures are reported and the rest go on unless halt_on_error. Raises at the end
	when any failed."""
	failures = 0
	for job_id in job_ids:
		try:
			action(job_id)
		except FaceFusionError as error:
			failures += 1
			logger.get_logger().error(error.message)
			if halt_on_error:
				raise InputError(f'{what} stopped at job {job_id} (--halt-on-error)') from error
	if failures:
		raise InputError(f'{what}: {failures} of {len(job_ids)} jobs failed (see above)')


def submit_jobs(store: JobStore, halt_on_error: bool) -> None:
	job_ids = store.find_job_ids('drafted')
	if not job_ids:
		logger.get_logger().info('no drafted jobs to submit')
		return
	for_each_job(job_ids, lambda job_id: submit_job(store, job_id), halt_on_error, 'job-submit-all')


def remove_step_files(job: Job) -> None:
	"""The results a failed or interrupted run left beside the outputs (named after this job, so only ours)."""
	for index, step in enumerate(job.steps):
		output_path = step.args.get('output_path')
		if isinstance(output_path, str) and output_path:
			path = step_output_path(job.job_id, index, output_path)
			if os.path.isfile(path):
				os.remove(path)


def delete_job(store: JobStore, job_id: str) -> None:
	with edit_lock(store, job_id, 'job-delete'):
		job = store.read(job_id)
		remove_step_files(job)
		store.delete(job)
	logger.get_logger().info(f'job {job_id} deleted')


def delete_jobs(store: JobStore, halt_on_error: bool) -> None:
	job_ids = [job_id for status in ('drafted', 'queued', 'failed', 'completed') for job_id in store.find_job_ids(status)]
	if not job_ids:
		logger.get_logger().info('no jobs to delete')
		return
	for_each_job(job_ids, lambda job_id: delete_job(store, job_id), halt_on_error, 'job-delete-all')


def add_step(store: JobStore, job_id: str, step_args: Dict[str, Any]) -> None:
	with edit_lock(store, job_id, 'job-add-step'):
		job = read_drafted(store, job_id, 'job-add-step')
		job.steps.append(JobStep(args=dict(step_args)))
		store.write(job)
	logger.get_logger().info(f'step {len(job.steps) - 1} added to job {job_id}')


def remix_step(store: JobStore, job_id: str, step_index: int, step_args: Dict[str, Any]) -> None:
	"""A new last step whose target is the result of step step_index (its step file, finalised at the end)."""
	with edit_lock(store, job_id, 'job-remix-step'):
		job = read_drafted(store, job_id, 'job-remix-step')
		index = resolve_step_index(job, step_index)
		source_output = job.steps[index].args.get('output_path')
		if not isinstance(source_output, str) or not source_output:
			raise InputError(f'step {index} of job {job_id} has no output path to remix')
		args = dict(step_args)
		args['target_path'] = step_output_path(job_id, index, source_output)
		output_path = args.get('output_path')
		if isinstance(output_path, str) and os.path.isdir(output_path):
			args['output_path'] = os.path.join(output_path, os.path.basename(source_output))
		job.steps.append(JobStep(args=args))
		store.write(job)
	logger.get_logger().info(f'step {len(job.steps) - 1} of job {job_id} remixes step {index}')


def insert_step(store: JobStore, job_id: str, step_index: int, step_args: Dict[str, Any]) -> None:
	"""A new step at step_index; the step there and those after it move one place down."""
	with edit_lock(store, job_id, 'job-insert-step'):
		job = read_drafted(store, job_id, 'job-insert-step')
		index = resolve_step_index(job, step_index)
		job.steps.insert(index, JobStep(args=dict(step_args)))
		store.write(job)
	logger.get_logger().info(f'step {index} inserted into job {job_id}')


def remove_step(store: JobStore, job_id: str, step_index: int) -> None:
	with edit_lock(store, job_id, 'job-remove-step'):
		job = read_drafted(store, job_id, 'job-remove-step')
		index = resolve_step_index(job, step_index)
		job.steps.pop(index)
		store.write(job)
	logger.get_logger().info(f'step {index} removed from job {job_id}')


def list_jobs(store: JobStore, status: str) -> List[JobRow]:
	"""The jobs of one status folder, oldest first; a file that is not a valid job is reported and skipped."""
	rows: List[JobRow] = []
	for job_id in store.find_job_ids(status):
		try:
			job = store.read(job_id)
		except FaceFusionError as error:
			logger.get_logger().warning(error.message)
			continue
		rows.append(JobRow(job_id=job.job_id, step_count=len(job.steps), date_created=job.date_created, date_updated=job.date_updated, status=job.status))
	return rows
