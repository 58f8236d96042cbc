"""The batched swapper's options in upstream's UI, next to its own face swapper options.

Called at the end of upstream's face_swapper_options.render / listen: one dropdown and two inputs that write
upstream's state like its own components do, shown while face_swapper is among the processors.
"""
from typing import Any, List, Optional, Tuple

BATCHING_DROPDOWN: Optional[Any] = None
USE_TRT_CHECKBOX: Optional[Any] = None
TRT_MAX_BATCH_SLIDER: Optional[Any] = None


def render() -> None:
	global BATCHING_DROPDOWN, USE_TRT_CHECKBOX, TRT_MAX_BATCH_SLIDER
	import gradio

	from facefusion import state_manager
	from facefusion.uis.core import register_ui_component
	visible = 'face_swapper' in (state_manager.get_item('processors') or [])
	BATCHING_DROPDOWN = gradio.Dropdown(label='FACE SWAPPER BATCHING', choices=['auto', 'always', 'never'], value=state_manager.get_item('face_swapper_batching'), visible=visible)
	USE_TRT_CHECKBOX = gradio.Checkbox(label='FACE SWAPPER TENSORRT', value=bool(state_manager.get_item('face_swapper_use_trt')), visible=visible)
	TRT_MAX_BATCH_SLIDER = gradio.Slider(label='FACE SWAPPER TENSORRT MAX BATCH', value=state_manager.get_item('face_swapper_trt_max_batch'), minimum=1, maximum=64, step=1, visible=visible)
	register_ui_component('face_swapper_batching_dropdown', BATCHING_DROPDOWN)
	register_ui_component('face_swapper_use_trt_checkbox', USE_TRT_CHECKBOX)
	register_ui_component('face_swapper_trt_max_batch_slider', TRT_MAX_BATCH_SLIDER)


def setter(key: str, convert: Any) -> Any:
	def update(value: Any) -> None:
		from facefusion_engine.upstream_bridge import swapper

		from facefusion import state_manager
		state_manager.set_item(key, convert(value))
		# the next frame builds a swapper with the new settings
		swapper.release()
	return update


def remote_update(processors: List[str]) -> Tuple[Any, Any, Any]:
	import gradio
	visible = 'face_swapper' in processors
	return gradio.Dropdown(visible=visible), gradio.Checkbox(visible=visible), gradio.Slider(visible=visible)


def listen() -> None:
	from facefusion.uis.core import get_ui_component
	BATCHING_DROPDOWN.change(setter('face_swapper_batching', str), inputs=BATCHING_DROPDOWN)
	USE_TRT_CHECKBOX.change(setter('face_swapper_use_trt', bool), inputs=USE_TRT_CHECKBOX)
	TRT_MAX_BATCH_SLIDER.release(setter('face_swapper_trt_max_batch', int), inputs=TRT_MAX_BATCH_SLIDER)
	processors_checkbox_group = get_ui_component('processors_checkbox_group')
	if processors_checkbox_group:
		processors_checkbox_group.change(remote_update, inputs=processors_checkbox_group, outputs=[BATCHING_DROPDOWN, USE_TRT_CHECKBOX, TRT_MAX_BATCH_SLIDER])
