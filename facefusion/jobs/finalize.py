"""From step files to outputs, as 3.5.0 finalises a job: the steps are grouped by the output path they name, a
group of videos is joined in step order (ffmpeg's concat demuxer, streams copied), a group of images ends as its
last step's image. Every output appears under its final name in one rename."""
from __future__ import annotations

import os
from typing import List

from facefusion.errors import ProcessingError
from facefusion.filesystem import extension_kind


def concat_videos(step_paths: List[str], output_path: str) -> None:
	from facefusion.video.concat import concat_copy
	concat_copy(step_paths, output_path, f'Joining {len(step_paths)} step videos into {output_path}')


def finalize_output(output_path: str, step_paths: List[str]) -> None:
	"""The output of one group of step files (in step order); the step files are gone afterwards."""
	kinds = {extension_kind(path) for path in step_paths}
	if kinds == {'video'} and len(step_paths) > 1:
		concat_videos(step_paths, output_path)
		for path in step_paths:
			os.remove(path)
		return
	if kinds in ({'image'}, {'video'}):
		# images: each replaces the one before, so the last step's image stays (as in 3.5.0)
		for path in step_paths:
			os.replace(path, output_path)
		return
	raise ProcessingError(f'the steps writing {output_path} made different kinds of files ({", ".join(sorted(str(kind) for kind in kinds))}); they cannot be joined')
