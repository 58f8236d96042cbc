"""Upstream's video workflow through this engine's streaming pipeline (`--workflow-strategy memory`).

Decode, analyse (the tracker: full analysis on keyframes, optical flow between them, One-Euro smoothing per track),
process in windows and encode run as threads joined by bounded queues, with no temporary frame files; audio is muxed
in at the end. The engine runs the processors it has (face_swapper, face_debugger, face_enhancer); a run that asks
for any other of upstream's processors, or for an audio source, stays on upstream's own workflow, said once.
"""
import time
from typing import List, Optional

from facefusion_engine.errors import FaceFusionError
from facefusion_engine.upstream_bridge.engine_config import run_config

ENGINE_PROCESSORS = ('face_swapper', 'face_debugger', 'face_enhancer')
MODULE_NAME = 'facefusion_engine.upstream_bridge.video'


def unsupported_reason(processors: List[str], source_paths: List[str]) -> Optional[str]:
	from facefusion.filesystem import has_audio
	others = [name for name in processors if name not in ENGINE_PROCESSORS]
	if others:
		return 'the memory workflow runs ' + ', '.join(ENGINE_PROCESSORS) + ', not ' + ', '.join(others)
	if has_audio(source_paths):
		return 'the memory workflow takes image sources only'
	return None


def process(start_time: float) -> Optional[int]:
	"""The error code of upstream's image_to_video.process, or None to let upstream's own workflow run."""
	from facefusion import logger, process_manager, state_manager
	if state_manager.get_item('workflow_strategy') != 'memory':
		return None
	reason = unsupported_reason(list(state_manager.get_item('processors') or []), list(state_manager.get_item('source_paths') or []))
	if reason:
		logger.warn(reason + ': using the disk workflow', MODULE_NAME)
		return None
	from facefusion_engine.core import run_job
	process_manager.start()
	try:
		error_code = run_job(run_config(workflow_strategy='memory'))
	except FaceFusionError as error:
		logger.error(error.message, MODULE_NAME)
		error_code = error.exit_code or 1
	finally:
		process_manager.end()
	if error_code == 0:
		logger.info(f'memory workflow: video written in {time.time() - start_time:.2f} seconds', MODULE_NAME)
	return error_code
