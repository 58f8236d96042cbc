"""The preview: a frame slider over the target, that frame processed with the current settings, the face gallery."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio


@dataclass
class PreviewControls:
	image: Any
	frame: Any
	gallery: Any
	message: Any


def create_preview_controls() -> PreviewControls:
	image = gradio.Image(label='preview', interactive=False, height=480, elem_id='preview-image')
	frame = gradio.Slider(label='preview frame', minimum=0, maximum=0, step=1, value=0, elem_id='preview-frame')
	gallery = gradio.Gallery(label='reference face (face selector mode reference: click a face)', columns=6, rows=1, height=180, object_fit='contain', allow_preview=False, preview=False, elem_id='reference-gallery')
	message = gradio.Markdown('', elem_id='preview-message')
	return PreviewControls(image, frame, gallery, message)
