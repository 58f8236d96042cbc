"""Encoded videos joined end to end without re-encoding (ffmpeg's concat demuxer, streams copied): the step videos of
a job, and the segments a video was split into across devices or cluster workers. The parts must share codec and
settings; each starts on a keyframe (a segment is an encode of its own), so the joined stream decodes as one."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

from facefusion.partial_files import partial_image_name, partial_media_name


def concat_list_line(path: Union[str, Path]) -> str:
	# the concat demuxer's quoting: inside single quotes, a quote is written as '\''
	return "file '" + os.path.abspath(str(path)).replace("'", "'\\''") + "'\n"


def concat_copy(part_paths: Sequence[Union[str, Path]], output_path: Union[str, Path], what: str) -> None:
	"""Join part_paths (in order) into output_path in one rename: the joined file is written under a pid-named hidden
	name first, so a failure or a kill leaves nothing under output_path. The parts are left as they are."""
	from facefusion.video import ffmpeg

	temp_output = partial_media_name(output_path, 'partial')
	list_path = partial_image_name(output_path)
	try:
		list_path.write_text(''.join(concat_list_line(path) for path in part_paths), encoding='utf-8')
		ffmpeg.run_ffmpeg(['-f', 'concat', '-safe', '0', '-i', ffmpeg.local_path(list_path), '-map', '0', '-c', 'copy', '-y', ffmpeg.local_path(temp_output)], what)
		os.replace(temp_output, output_path)
	finally:
		for path in (temp_output, list_path):
			if path.exists():
				path.unlink()
