"""Upstream's state (its option names are the engine's) as the engine's RunConfig.

The engine's option names, choices and defaults are upstream's, so every state item whose name is a RunConfig field
carries over as it is; models are read from upstream's own `.assets/models`, so both use the same files.
"""
import os
from typing import Any, Dict

from facefusion_engine.config import RunConfig

# upstream's checkout root: this file lives in <root>/facefusion_engine/upstream_bridge/
UPSTREAM_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UPSTREAM_MODELS_PATH = os.path.join(UPSTREAM_ROOT, '.assets', 'models')
FOUR_SIDES = ('face_detector_margin', 'face_mask_padding')
# engine options upstream's CLI does not have: held at the values that paste as 3.5.0 does (its feather blend in
# gamma space, no colour match), whatever the engine's own defaults are, so a patched checkout looks like upstream
UPSTREAM_EQUIVALENTS: Dict[str, Any] = {
	'face_swapper_blend_mode': 'feather',
	'face_swapper_blend_levels': 0,
	'face_swapper_color_match': 'none',
	'face_swapper_linear_light': False
}


def four_sides(values: Any) -> Any:
	"""Upstream keeps 1 to 4 numbers as given; the engine wants top, right, bottom, left."""
	sides = [int(value) for value in values]
	if len(sides) == 1:
		return sides[0], sides[0], sides[0], sides[0]
	if len(sides) == 2:
		return sides[0], sides[1], sides[0], sides[1]
	if len(sides) == 3:
		return sides[0], sides[1], sides[2], sides[1]
	return tuple(sides[:4])


def upstream_state() -> Dict[str, Any]:
	from facefusion import state_manager
	return dict(state_manager.get_state() or {})


def run_config(**overrides: Any) -> RunConfig:
	fields = set(RunConfig.field_names())
	values: Dict[str, Any] = {key: value for key, value in upstream_state().items() if key in fields and value is not None}
	for key in FOUR_SIDES:
		if key in values:
			values[key] = four_sides(values[key])
	for key in ('source_paths', 'face_detector_angles', 'face_mask_types', 'face_mask_areas', 'face_mask_regions', 'processors', 'execution_providers', 'execution_device_ids', 'download_providers', 'face_debugger_items'):
		if key in values and not isinstance(values[key], list):
			values[key] = list(values[key]) if isinstance(values[key], (tuple, set)) else [values[key]]
	if 'execution_device_ids' in values:
		values['execution_device_ids'] = [str(device_id) for device_id in values['execution_device_ids']]
	values.update(UPSTREAM_EQUIVALENTS)
	values['models_path'] = UPSTREAM_MODELS_PATH
	values.update(overrides)
	return RunConfig(**{key: value for key, value in values.items() if key in fields})
