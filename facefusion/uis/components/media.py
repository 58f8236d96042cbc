"""Source (images, or an audio file) and target (image or video) uploads, and the output folder."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio

from facefusion import choices


@dataclass
class MediaControls:
	source: Any
	target: Any
	output_folder: Any


def extensions(*groups: Any) -> list:
	return [extension for group in groups for extension in group]


def create_media_controls(output_folder: str) -> MediaControls:
	source = gradio.File(label='source', file_count='multiple', file_types=extensions(choices.image_extensions, choices.audio_extensions), elem_id='source-file')
	target = gradio.File(label='target', file_count='single', file_types=extensions(choices.image_extensions, choices.video_extensions), elem_id='target-file')
	folder = gradio.Textbox(label='output folder', value=output_folder, elem_id='output-folder')
	return MediaControls(source, target, folder)
