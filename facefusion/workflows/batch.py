"""batch-run: one job for each source × target pair (or each target when there is no source pattern), outputs named
by the output pattern, the models loaded once for all of them. A failing item is reported and the others still run;
missing models stop the batch (every other item would fail the same way)."""
from __future__ import annotations

import itertools
from typing import Dict, List, Optional, Tuple, Union

from facefusion import logger
from facefusion.config import RunConfig
from facefusion.errors import FaceFusionError, InputError, ModelUnavailableError, ProcessingError
from facefusion.filesystem import get_file_extension, get_file_name, resolve_file_pattern
from facefusion.workflows.engine import Engine, start_engine
from facefusion.workflows.job import check_job_paths
from facefusion.workflows.target import open_backend, run_target, splits_videos


def plan_batch(config: RunConfig) -> List[RunConfig]:
	"""One RunConfig per source × target (or per target without sources), outputs named by the output pattern."""
	source_paths = resolve_file_pattern(config.source_pattern)
	target_paths = resolve_file_pattern(config.target_pattern)
	if config.source_pattern and not source_paths:
		raise InputError(f'no file matches the source pattern: {config.source_pattern}')
	if not target_paths:
		raise InputError(f'no file matches the target pattern: {config.target_pattern}')
	pairs: List[Tuple[Optional[str], str]] = list(itertools.product(source_paths, target_paths)) if source_paths else [(None, target_path) for target_path in target_paths]

	items: List[RunConfig] = []
	for index, (source_path, target_path) in enumerate(pairs):
		fields: Dict[str, Union[int, str]] = {
			'index': index,
			'target_name': get_file_name(target_path),
			# with its dot, as 3.5.0: 'outputs/{target_name}{target_extension}'
			'target_extension': get_file_extension(target_path),
		}
		if source_path:
			fields['source_name'] = get_file_name(source_path)
		try:
			output_path = str(config.output_pattern).format(**fields)
		except KeyError as exception:
			raise InputError(
				f'the output pattern uses {{{exception.args[0]}}}, which is not available here '
				f'(available: {", ".join("{" + name + "}" for name in fields)})'
			) from exception
		except (ValueError, IndexError) as exception:
			raise InputError(f'the output pattern is malformed ({exception}): {config.output_pattern}') from exception
		items.append(config.with_changes(source_paths=[source_path] if source_path else [], target_path=target_path, output_path=output_path))

	output_paths = [item.output_path for item in items]
	if len(set(output_paths)) < len(output_paths):
		raise InputError(f'the output pattern gives several items the same output path; add {{index}} or names: {config.output_pattern}')
	return items


def run_batch(config: RunConfig) -> int:
	from tqdm import tqdm
	from tqdm.contrib.logging import logging_redirect_tqdm

	items = plan_batch(config)
	if splits_videos(config):
		return run_batch_on_workers(items)
	engine: Optional[Engine] = None
	failures = 0
	try:
		with logging_redirect_tqdm(loggers=[logger.get_logger()]):
			for item in tqdm(items, desc='batch', unit='item', disable=None):
				try:
					paths = check_job_paths(item)
					# the models are loaded once for the whole batch: only paths differ between items
					engine = engine or start_engine(item)
					run_target(item, paths, engine)
				except ModelUnavailableError:
					raise
				except FaceFusionError as error:
					failures += 1
					logger.get_logger().error(f'{item.target_path}: {error.message}')
	finally:
		if engine is not None:
			engine.close()
	if failures:
		raise ProcessingError(f'{failures} of {len(items)} batch items failed (see above)')
	return 0


def run_batch_on_workers(items: List[RunConfig]) -> int:
	"""The items as tasks on the cluster or the device workers, side by side; each worker keeps its models for every
	item it gets. Paths are checked here first, so a bad item fails in a second and the others still run."""
	from tqdm import tqdm
	from tqdm.contrib.logging import logging_redirect_tqdm

	from facefusion.workflows.worker_tasks import WorkerTask

	failures = 0
	tasks: List[WorkerTask] = []
	for item in items:
		try:
			paths = check_job_paths(item)
			tasks.append(WorkerTask('target', item.with_changes(output_path=paths.output_path), label=f'item {len(tasks) + 1}: {item.target_path}'))
		except FaceFusionError as error:
			failures += 1
			logger.get_logger().error(f'{item.target_path}: {error.message}')
	if tasks:
		with open_backend(items[0]) as backend, logging_redirect_tqdm(loggers=[logger.get_logger()]), tqdm(total=len(tasks), desc='batch', unit='item', disable=None) as progress:
			logger.get_logger().info(f'batch of {len(tasks)} items on {backend.describe()}')
			for index, result in backend.run(tasks):
				progress.update()
				if result.ok:
					continue
				if result.error_kind == ModelUnavailableError.__name__:
					raise ModelUnavailableError(str(result.error))
				failures += 1
				logger.get_logger().error(f'{tasks[index].config.target_path}: {result.error}')
	if failures:
		raise ProcessingError(f'{failures} of {len(items)} batch items failed (see above)')
	return 0
