"""The default layout, in the spirit of 3.5.0's: media and Start / Stop on the left, the preview in the middle, every
option group on the right. Handlers are UISession methods; this module only wires them to the controls."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import gradio

from facefusion import filesystem
from facefusion.uis.components.job import create_job_controls, progress_html
from facefusion.uis.components.media import create_media_controls
from facefusion.uis.components.option_controls import create_option_controls
from facefusion.uis.components.preview import create_preview_controls
from facefusion.uis.session import UISession, describe_status

TITLE = 'FaceFusion'
# face thumbnails at a fixed size: Gradio stretches a lone gallery item to the full width
CSS = '#reference-gallery .grid-container { grid-template-columns: repeat(auto-fill, 128px) !important; grid-auto-rows: 128px !important; }'


def file_paths(files: Any) -> List[str]:
	"""Gradio's upload value (a path, a list of paths or file objects) as paths."""
	if not files:
		return []
	items = files if isinstance(files, list) else [files]
	return [str(getattr(item, 'name', item)) for item in items]


def single_path(files: Any) -> Optional[str]:
	paths = file_paths(files)
	return paths[0] if paths else None


def create(session: UISession) -> gradio.Blocks:
	dests = [spec.dest for spec in session.specs]
	with gradio.Blocks(title=TITLE, css=CSS, analytics_enabled=False) as blocks:
		gradio.Markdown(f'## {TITLE}')
		with gradio.Row():
			with gradio.Column(scale=4):
				media = create_media_controls(session.default_output_folder())
				job = create_job_controls()
			with gradio.Column(scale=5):
				preview = create_preview_controls()
			with gradio.Column(scale=4):
				controls = create_option_controls(session.groups, session.initial_values())
		option_inputs = [controls[dest] for dest in dests]

		def values_of(option_values: Sequence[Any]) -> Dict[str, Any]:
			return dict(zip(dests, option_values))

		def refresh_preview(source: Any, target: Any, frame_number: float, *option_values: Any) -> Tuple[Any, str]:
			frame, message = session.preview(values_of(option_values), file_paths(source), single_path(target), int(frame_number or 0))
			return frame, message

		def refresh_gallery(target: Any, frame_number: float, *option_values: Any) -> Tuple[Any, str]:
			faces, message = session.gallery(values_of(option_values), single_path(target), int(frame_number or 0))
			# no face stays selected: a selected one would fill the whole gallery
			return gradio.update(value=faces, selected_index=None), message

		def new_target(target: Any) -> Tuple[Any, str]:
			frames, message = session.frame_count(single_path(target))
			return gradio.update(maximum=max(frames - 1, 0), value=0, interactive=frames > 1), message

		def pick_reference(frame_number: float, event: gradio.SelectData) -> Tuple[int, int]:
			return int(event.index), int(frame_number or 0)

		def start(source: Any, target: Any, output_folder: str, *option_values: Any) -> Tuple[str, Any, Any, str]:
			result = session.start(values_of(option_values), file_paths(source), single_path(target), output_folder)
			hidden = gradio.update(visible=False, value=None)
			return result.message, hidden, hidden, ''

		def stop() -> str:
			return session.stop()

		last_shown: Dict[str, Any] = {'path': None}

		def poll() -> Tuple[str, str, str, Any, Any, Any]:
			state = session.status()
			keep = gradio.update()
			done = state.exit_code == 0 and not state.running
			frames = state.progress.total if done else state.progress.frames
			bar = progress_html(frames, state.progress.total)
			if not done or last_shown['path'] == state.output_path:
				return describe_status(state), bar, state.log_text(), keep, keep, keep
			last_shown['path'] = state.output_path
			is_video = filesystem.media_status(state.output_path) == 'video'
			image = gradio.update(visible=not is_video, value=None if is_video else state.output_path)
			video = gradio.update(visible=is_video, value=state.output_path if is_video else None)
			return describe_status(state), bar, state.log_text(), image, video, state.output_path

		preview_inputs = [media.source, media.target, preview.frame, *option_inputs]
		preview_outputs = [preview.image, preview.message]
		gallery_inputs = [media.target, preview.frame, *option_inputs]
		gallery_outputs = [preview.gallery, preview.message]
		media.target.upload(new_target, [media.target], [preview.frame, preview.message]).then(
			refresh_gallery, gallery_inputs, gallery_outputs
		).then(refresh_preview, preview_inputs, preview_outputs)
		media.source.upload(refresh_preview, preview_inputs, preview_outputs, trigger_mode='always_last')
		preview.frame.release(refresh_preview, preview_inputs, preview_outputs, trigger_mode='always_last')
		preview.frame.release(refresh_gallery, gallery_inputs, gallery_outputs, trigger_mode='always_last')
		for control in option_inputs:
			control.change(refresh_preview, preview_inputs, preview_outputs, trigger_mode='always_last')
		media.target.clear(new_target, [media.target], [preview.frame, preview.message])
		preview.gallery.select(pick_reference, [preview.frame], [controls['reference_face_position'], controls['reference_frame_number']])
		job.start.click(start, [media.source, media.target, media.output_folder, *option_inputs], [job.message, job.output_image, job.output_video, job.output_path])
		job.stop.click(stop, [], [job.message])
		job.timer.tick(poll, [], [job.status, job.progress, job.log, job.output_image, job.output_video, job.output_path])
	return blocks


def allowed_paths(session: UISession) -> List[str]:
	"""What the server may hand to the browser: the uploads and the output folder."""
	return [str(session.uploads.path), os.path.abspath(session.default_output_folder())]
