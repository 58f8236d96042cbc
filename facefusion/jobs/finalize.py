"""From step files to outputs, as 3.5.0 finalises a job: the steps are grouped by the output path they name, a
group of videos is joined in step order (ffmpeg's concat demuxer, streams copied), a group of images ends as its
last step's image. Every output appears under its final name in one rename."""
from __future__ import annotations

import os
from typing import List

from facefusion.errors import ProcessingError
from facefusion.filesystem import extension_kind


def concat_list_line(path: str) -> str:
	# the concat demuxer's quoting: inside single quotes, a quote is written as '\''
	return "file '" + os.path.abspath(path).replace("'", "'\\''") + "'\n"


def concat_videos(step_paths: List[str], output_path: str) -> None:
	from facefusion.partial_files import partial_image_name
	from facefusion.video import ffmpeg
	from facefusion.video.io import temporary_path

	# both hidden names carry our pid, so the files a killed run leaves are cleaned up like any partial output
	temp_output = temporary_path(output_path, 'partial')
	list_path = partial_image_name(output_path)
	try:
		list_path.write_text(''.join(concat_list_line(path) for path in step_paths), encoding='utf-8')
		ffmpeg.run_ffmpeg(
			['-f', 'concat', '-safe', '0', '-i', ffmpeg.local_path(list_path), '-map', '0', '-c', 'copy', '-y', ffmpeg.local_path(temp_output)],
			f'Joining {len(step_paths)} step videos into {output_path}'
		)
		os.replace(temp_output, output_path)
	finally:
		for path in (temp_output, list_path):
			if path.exists():
				path.unlink()


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
