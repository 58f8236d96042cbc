"""The job commands as core routes them: one function from the parsed RunConfig to an exit code. Failures raise
FaceFusionError, which the CLI prints as one line."""
from __future__ import annotations

from datetime import datetime
from typing import List, Optional

from facefusion import logger
from facefusion.config import RunConfig
from facefusion.errors import InputError, ProcessingError
from facefusion.jobs import manager, runner
from facefusion.jobs.steps import step_args_from_config
from facefusion.jobs.store import JobStore

JOB_MANAGER_COMMANDS: List[str] = [
	'job-list', 'job-create', 'job-submit', 'job-submit-all', 'job-delete', 'job-delete-all', 'job-add-step',
	'job-remix-step', 'job-insert-step', 'job-remove-step'
]
JOB_RUNNER_COMMANDS: List[str] = ['job-run', 'job-run-all', 'job-retry', 'job-retry-all']
JOB_COMMANDS: List[str] = JOB_MANAGER_COMMANDS + JOB_RUNNER_COMMANDS


def describe_date(text: Optional[str]) -> str:
	if not text:
		return '-'
	try:
		return datetime.fromisoformat(text).strftime('%Y-%m-%d %H:%M:%S')
	except ValueError:
		return text


def render_job_list(rows: List[manager.JobRow]) -> str:
	table = [['job id', 'steps', 'date created', 'date updated', 'job status']]
	table += [[row.job_id, str(row.step_count), describe_date(row.date_created), describe_date(row.date_updated), row.status] for row in rows]
	widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
	lines = ['  '.join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]
	return '\n'.join([lines[0], '  '.join('-' * width for width in widths)] + lines[1:])


def require_job_id(config: RunConfig) -> str:
	if not config.job_id:
		raise InputError(f'{config.command} needs a job id')
	return config.job_id


def require_step_index(config: RunConfig) -> int:
	if config.step_index is None:
		raise InputError(f'{config.command} needs a step index')
	return config.step_index


def run_all(store: JobStore, config: RunConfig, retry: bool) -> None:
	failures, total = runner.run_jobs(store, config, retry, config.halt_on_error)
	if not total:
		logger.get_logger().info(f'no {"failed" if retry else "queued"} jobs in {store.jobs_path}')
	if failures:
		raise ProcessingError(f'{config.command}: {failures} of {total} jobs failed (see above)')


def run_job_command(config: RunConfig) -> int:
	store = JobStore(config.jobs_path)
	store.init()
	command = config.command
	if command == 'job-list':
		rows = manager.list_jobs(store, str(config.job_status))
		if rows:
			print(render_job_list(rows), flush=True)
		else:
			logger.get_logger().info(f'no {config.job_status} jobs in {store.jobs_path}')
	elif command == 'job-create':
		manager.create_job(store, require_job_id(config))
	elif command == 'job-submit':
		manager.submit_job(store, require_job_id(config))
	elif command == 'job-submit-all':
		manager.submit_jobs(store, config.halt_on_error)
	elif command == 'job-delete':
		manager.delete_job(store, require_job_id(config))
	elif command == 'job-delete-all':
		manager.delete_jobs(store, config.halt_on_error)
	elif command == 'job-add-step':
		manager.add_step(store, require_job_id(config), step_args_from_config(config))
	elif command == 'job-remix-step':
		manager.remix_step(store, require_job_id(config), require_step_index(config), step_args_from_config(config))
	elif command == 'job-insert-step':
		manager.insert_step(store, require_job_id(config), require_step_index(config), step_args_from_config(config))
	elif command == 'job-remove-step':
		manager.remove_step(store, require_job_id(config), require_step_index(config))
	elif command in ('job-run', 'job-retry'):
		runner.run_job_or_raise(store, require_job_id(config), config, retry=command == 'job-retry')
	elif command in ('job-run-all', 'job-retry-all'):
		run_all(store, config, retry=command == 'job-retry-all')
	else:
		raise InputError(f'unknown job command {command}')
	return 0
