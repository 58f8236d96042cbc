"""One checked target to its workflow, by what the target is."""
from __future__ import annotations

from typing import Optional

from facefusion.config import RunConfig
from facefusion.workflows.engine import Engine
from facefusion.workflows.image import run_image
from facefusion.workflows.job import JobPaths
from facefusion.workflows.video import run_video


def run_target(config: RunConfig, paths: JobPaths, engine: Optional[Engine] = None) -> int:
	if paths.target_kind == 'video':
		return run_video(config, paths, engine)
	return run_image(config, paths, engine)
