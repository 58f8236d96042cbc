"""One Gradio control per CLI option, by the spec's kind, in an accordion per option group."""
from __future__ import annotations

from typing import Any, Dict, List

import gradio

from facefusion.uis.options import OptionGroup, OptionSpec

OPEN_GROUPS = ('processors', 'face selector')


def label_of(spec: OptionSpec) -> str:
	return spec.flag.lstrip('-').replace('-', ' ')


def create_control(spec: OptionSpec, value: Any) -> Any:
	common = dict(label=label_of(spec), info=spec.help, elem_id='option-' + spec.dest.replace('_', '-'))
	if spec.kind == 'bool':
		return gradio.Checkbox(value=bool(value), **common)
	if spec.kind == 'path':
		return gradio.Checkbox(value=bool(value), **{**common, 'info': spec.help + ' (written next to the output)'})
	if spec.kind == 'multi':
		return gradio.Dropdown(choices=list(spec.choices), value=value, multiselect=True, **common)
	if spec.kind == 'choice':
		return gradio.Dropdown(choices=list(spec.choices), value=value, allow_custom_value=False, **common)
	if spec.kind == 'slider':
		step = 1 if spec.is_int else 0.05
		return gradio.Slider(minimum=spec.low, maximum=spec.high, step=step, value=value, **common)
	if spec.kind == 'number' and spec.default is None:
		# empty means the CLI's default; a Number box would send 0 instead of nothing
		return gradio.Textbox(value='' if value is None else str(value), placeholder='default', **common)
	if spec.kind == 'number':
		return gradio.Number(value=value, precision=0 if spec.is_int else None, **common)
	return gradio.Textbox(value='' if value is None else str(value), **common)


def create_option_controls(groups: List[OptionGroup], values: Dict[str, Any]) -> Dict[str, Any]:
	"""dest → control, laid out as accordions in the groups' order."""
	controls: Dict[str, Any] = {}
	for group in groups:
		with gradio.Accordion(group.title, open=group.title in OPEN_GROUPS):
			for spec in group.specs:
				controls[spec.dest] = create_control(spec, values.get(spec.dest))
	return controls
