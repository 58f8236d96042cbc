"""Running queued jobs: each step through the workflows (workflows/target.run_target on a RunConfig built from the
step's args), then the outputs finalised, then the job file moved to completed or failed.

Where 3.5.0 stops at the first failing step, every step runs here: a step that fails (its input vanished, a bad
option, no face in its source) is marked failed with its reason and the others still run; the outputs whose steps
all succeeded are finalised, and the job ends failed. A step's result waits beside its output under 3.5.0's step
name until the job is finalised, and the job file says which steps are done, so a job stopped at any point (a
failure, Ctrl-C, SIGKILL) is resumed by job-retry: the steps whose result is still on disk are kept, the others run
again. The job's lock is held throughout, so a second job-run of the same job is refused.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Set, Tuple

from facefusion import logger
from facefusion.config import RunConfig
from facefusion.errors import FaceFusionError, InputError, ProcessingError
from facefusion.jobs.finalize import finalize_output
from facefusion.jobs.lock import JobLock, JobLockedError
from facefusion.jobs.steps import config_from_step_args
from facefusion.jobs.store import Job, JobStore, check_job_id, step_output_path
from facefusion.workflows.engine import EngineCache
from facefusion.workflows.target import open_backend, splits_videos

if TYPE_CHECKING:
	from facefusion.workflows.worker_tasks import WorkerBackend


@dataclass
class JobOutcome:
	job_id: str
	completed: bool
	failed_steps: List[int] = field(default_factory=list)


def step_path_of(job: Job, index: int) -> Optional[str]:
	output_path = job.steps[index].args.get('output_path')
	if isinstance(output_path, str) and output_path:
		return step_output_path(job.job_id, index, output_path)
	return None


def step_done(job: Job, index: int) -> bool:
	"""Completed, with its result still on disk (3.5.0 removes step files when a job fails, so its completed steps
	run again)."""
	path = step_path_of(job, index)
	return job.steps[index].status == 'completed' and path is not None and os.path.isfile(path)


def source_step_of(job: Job, index: int) -> Optional[int]:
	"""The step whose result this step takes as its target (a remix), if any."""
	target_path = job.steps[index].args.get('target_path')
	for other in range(len(job.steps)):
		if other != index and target_path and step_path_of(job, other) == target_path:
			return other
	return None


def output_groups(job: Job) -> Dict[str, List[int]]:
	"""Output path → the steps that write it, in step order."""
	groups: Dict[str, List[int]] = {}
	for index, step in enumerate(job.steps):
		output_path = step.args.get('output_path')
		if isinstance(output_path, str) and output_path:
			groups.setdefault(output_path, []).append(index)
	return groups


def run_step(job: Job, index: int, job_config: RunConfig, engines: EngineCache, backend: Optional['WorkerBackend'] = None) -> None:
	"""One step into its step file. Raises FaceFusionError with the reason when the step cannot be done. With
	workers (a cluster, several devices), a video step is split into segments across them and an image step is a
	task on one of them."""
	from facefusion.workflows.job import check_job_paths
	from facefusion.workflows.target import run_target, run_target_on_workers

	label = f'step {index} of job {job.job_id}'
	config = config_from_step_args(job.steps[index].args, job_config, label)
	step_path = step_path_of(job, index)
	if step_path is None:
		raise InputError(f'{label} has no output path')
	source_step = source_step_of(job, index)
	if source_step is not None and not os.path.isfile(str(config.target_path)):
		raise InputError(f'{label} remixes step {source_step}, whose result is missing (step {source_step} failed or did not run)')
	config = config.with_changes(output_path=step_path)
	paths = check_job_paths(config)
	if backend is not None:
		run_target_on_workers(config, paths, backend)
		return
	run_target(config, paths, engines.get(config))


def finalize_ready_outputs(job: Job) -> List[str]:
	"""Finalise every output whose steps are all done and whose results no unfinished step still needs; returns the
	reasons of the outputs that could not be finalised."""
	unfinished = [index for index in range(len(job.steps)) if not step_done(job, index)]
	needed: Set[int] = {source for source in (source_step_of(job, index) for index in unfinished) if source is not None}
	problems: List[str] = []
	for output_path, indices in output_groups(job).items():
		if any(index in unfinished or index in needed for index in indices):
			continue
		step_paths = [str(step_path_of(job, index)) for index in indices]
		try:
			finalize_output(output_path, step_paths)
			logger.get_logger().info(f'job {job.job_id}: wrote {output_path}')
		except (FaceFusionError, OSError) as error:
			problems.append(getattr(error, 'message', None) or str(error))
	return problems


def prepare_for_run(store: JobStore, job_id: str, retry: bool) -> Job:
	job = store.read(job_id)
	if retry and job.status == 'failed':
		store.move(job, 'queued')
	if job.status != 'queued':
		hint = 'job-retry runs failed jobs' if not retry else 'job-run runs queued jobs'
		raise InputError(f'job {job_id} is {job.status}: {"job-retry" if retry else "job-run"} cannot run it ({hint})')
	resumed = [index for index in range(len(job.steps)) if step_done(job, index)]
	for index, step in enumerate(job.steps):
		if index not in resumed:
			step.status = 'queued'
	if resumed and len(resumed) < len(job.steps):
		logger.get_logger().info(f'job {job_id}: resuming, {len(resumed)} of {len(job.steps)} steps are done already')
	store.write(job)
	return job


def run_queued_job(store: JobStore, job: Job, job_config: RunConfig, backend: Optional['WorkerBackend'] = None) -> JobOutcome:
	engines = EngineCache()
	outcome = JobOutcome(job_id=job.job_id, completed=False)
	current: Optional[int] = None
	try:
		for index in range(len(job.steps)):
			if step_done(job, index):
				continue
			current = index
			logger.get_logger().info(f'job {job.job_id}: processing step {index + 1} of {len(job.steps)}')
			job.steps[index].status = 'started'
			store.write(job)
			try:
				run_step(job, index, job_config, engines, backend)
				job.steps[index].status = 'completed'
			except FaceFusionError as error:
				job.steps[index].status = 'failed'
				outcome.failed_steps.append(index)
				logger.get_logger().error(f'job {job.job_id}: step {index} failed: {error.message}')
			store.write(job)
			current = None
	except BaseException:
		# Ctrl-C or an unexpected error: the job ends failed and job-retry picks it up where it stopped
		if current is not None:
			job.steps[current].status = 'failed'
			store.write(job)
		store.move(job, 'failed')
		raise
	finally:
		engines.close()
	problems = finalize_ready_outputs(job)
	for problem in problems:
		logger.get_logger().error(f'job {job.job_id}: {problem}')
	outcome.completed = not outcome.failed_steps and not problems and len(job.steps) > 0
	store.move(job, 'completed' if outcome.completed else 'failed')
	return outcome


def run_job(store: JobStore, job_id: str, job_config: RunConfig, retry: bool = False, backend: Optional['WorkerBackend'] = None) -> JobOutcome:
	"""job-run (retry=False: a queued job, an interrupted one resumed) or job-retry (a failed job, or a queued one
	whose run was killed). Refused while another process holds the job."""
	command = 'job-retry' if retry else 'job-run'
	with JobLock(str(store.jobs_path), check_job_id(job_id), command):
		job = prepare_for_run(store, job_id, retry)
		logger.get_logger().info(f'{"retrying" if retry else "running"} job {job_id}')
		return run_queued_job(store, job, job_config, backend)


def describe_failure(outcome: JobOutcome) -> str:
	if outcome.failed_steps:
		steps = ', '.join(str(index) for index in outcome.failed_steps)
		return f'job {outcome.job_id} failed (step {steps}; see above); fix the cause and run job-retry {outcome.job_id}'
	return f'job {outcome.job_id} failed (see above); run job-retry {outcome.job_id} once the cause is fixed'


def run_job_or_raise(store: JobStore, job_id: str, job_config: RunConfig, retry: bool, backend: Optional['WorkerBackend'] = None) -> None:
	if backend is None and splits_videos(job_config):
		# a cluster or several devices: one set of workers for every step (each loads its models once)
		with open_backend(job_config) as own_backend:
			run_job_or_raise(store, job_id, job_config, retry, own_backend)
		return
	outcome = run_job(store, job_id, job_config, retry, backend)
	if not outcome.completed:
		raise ProcessingError(describe_failure(outcome))
	logger.get_logger().info(f'job {job_id} completed')


def run_jobs(store: JobStore, job_config: RunConfig, retry: bool, halt_on_error: bool) -> Tuple[int, int]:
	"""job-run-all (the queued jobs) or job-retry-all (the failed ones), oldest first. Returns (failed, total);
	with halt_on_error the first failing job stops the rest. A job another process is running is skipped."""
	job_ids = store.find_job_ids('failed' if retry else 'queued')
	if job_ids and splits_videos(job_config):
		with open_backend(job_config) as backend:
			return run_job_ids(store, job_ids, job_config, retry, halt_on_error, backend)
	return run_job_ids(store, job_ids, job_config, retry, halt_on_error, None)


def run_job_ids(store: JobStore, job_ids: List[str], job_config: RunConfig, retry: bool, halt_on_error: bool, backend: Optional['WorkerBackend']) -> Tuple[int, int]:
	if backend is not None and backend.runs_concurrently and len(job_ids) > 1 and not halt_on_error:
		return run_jobs_side_by_side(store, job_ids, job_config, retry, backend), len(job_ids)
	failures = 0
	for job_id in job_ids:
		if not run_one_of_many(store, job_id, job_config, retry, backend):
			failures += 1
			if halt_on_error:
				break
	return failures, len(job_ids)


def run_one_of_many(store: JobStore, job_id: str, job_config: RunConfig, retry: bool, backend: Optional['WorkerBackend']) -> bool:
	"""One job of job-run-all / job-retry-all; False when it failed (said in one line)."""
	try:
		run_job_or_raise(store, job_id, job_config, retry, backend)
	except JobLockedError as error:
		# another worker has it: several job-run-all may share one queue
		logger.get_logger().info(f'skipped: {error.message}')
	except FaceFusionError as error:
		logger.get_logger().error(error.message)
		return False
	return True


def run_jobs_side_by_side(store: JobStore, job_ids: List[str], job_config: RunConfig, retry: bool, backend: 'WorkerBackend') -> int:
	"""On a cluster the jobs run side by side, as many at once as it has workers: each job's steps still run in
	order (a remix needs its step's result), and the workers are shared by all of them. Returns the failures."""
	from concurrent.futures import ThreadPoolExecutor
	with ThreadPoolExecutor(max_workers=max(1, min(backend.worker_count, len(job_ids))), thread_name_prefix='job') as pool:
		outcomes = list(pool.map(lambda job_id: run_one_of_many(store, job_id, job_config, retry, backend), job_ids))
	return outcomes.count(False)
