"""Start / Stop, the progress line, the output (image or playable video) with its path, and the log box."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio


@dataclass
class JobControls:
	start: Any
	stop: Any
	status: Any
	message: Any
	progress: Any
	output_image: Any
	output_video: Any
	output_path: Any
	log: Any
	timer: Any


def create_job_controls() -> JobControls:
	with gradio.Row():
		start = gradio.Button('Start', variant='primary', elem_id='start-button')
		stop = gradio.Button('Stop', variant='stop', elem_id='stop-button')
	status = gradio.Textbox(label='status', value='idle', lines=2, interactive=False, elem_id='job-status')
	# what Start and Stop answered (a refusal, a bad value), kept apart from the status the timer rewrites
	message = gradio.Markdown('', elem_id='job-message')
	progress = gradio.HTML(progress_html(0, 0), elem_id='job-progress')
	output_image = gradio.Image(label='output', interactive=False, visible=False, elem_id='output-image')
	output_video = gradio.Video(label='output', interactive=False, visible=False, elem_id='output-video')
	output_path = gradio.Textbox(label='written to', lines=2, interactive=False, elem_id='output-path')
	log = gradio.Textbox(label='terminal', lines=10, max_lines=10, interactive=False, autoscroll=True, elem_id='job-log')
	timer = gradio.Timer(0.5)
	return JobControls(start, stop, status, message, progress, output_image, output_video, output_path, log, timer)


def progress_html(frames: int, total: int) -> str:
	"""A plain progress bar: frames done of the total (empty before the first frame)."""
	maximum = max(total, 1)
	return f'<progress value="{min(frames, maximum)}" max="{maximum}" style="width: 100%">{frames}/{total}</progress>'
