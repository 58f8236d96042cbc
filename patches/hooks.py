"""Where the patch hooks into upstream FaceFusion 3.5.0: functions found by name, lines added at their start or end.

A prologue hook may return early (the engine took the call); an epilogue hook runs after upstream's own body. Each
added line carries MARKER, so a patched file is recognised and the plan is checked against what is there.
"""
import ast
from dataclasses import dataclass, field
from typing import List

MARKER = '# facefusion-engine-patch'
SWAPPER_MODULE = 'facefusion/processors/modules/face_swapper/core.py'
VIDEO_WORKFLOW_MODULE = 'facefusion/workflows/image_to_video.py'
SWAPPER_UI_MODULE = 'facefusion/uis/components/face_swapper_options.py'
INI_FILE = 'facefusion.ini'


class PatchError(Exception):
	"""The checkout is not one this patch can change (wrong version, a function missing, a broken file)."""


@dataclass(frozen=True)
class Hook:
	path: str
	function: str
	# 'start' or 'end' of the function body
	place: str
	lines: List[str] = field(default_factory=list)


HOOKS: List[Hook] = [
	Hook(SWAPPER_MODULE, 'register_args', 'end', [
		'from facefusion_engine.upstream_bridge import options as engine_options',
		'engine_options.register_args(program)'
	]),
	Hook(SWAPPER_MODULE, 'apply_args', 'end', [
		'from facefusion_engine.upstream_bridge import options as engine_options',
		'engine_options.apply_args(args, apply_state_item)'
	]),
	Hook(SWAPPER_MODULE, 'post_process', 'start', [
		'from facefusion_engine.upstream_bridge import swapper as engine_swapper',
		'engine_swapper.release()'
	]),
	Hook(SWAPPER_MODULE, 'process_frame', 'start', [
		'from facefusion_engine.upstream_bridge import swapper as engine_swapper',
		'engine_outputs = engine_swapper.process_frame(inputs)',
		'if engine_outputs is not None:',
		'\treturn engine_outputs'
	]),
	Hook(VIDEO_WORKFLOW_MODULE, 'process', 'start', [
		'from facefusion_engine.upstream_bridge import video as engine_video',
		'engine_error_code = engine_video.process(start_time)',
		'if engine_error_code is not None:',
		'\treturn engine_error_code'
	]),
	Hook(SWAPPER_UI_MODULE, 'render', 'end', [
		'from facefusion_engine.upstream_bridge import ui as engine_ui',
		'engine_ui.render()'
	]),
	Hook(SWAPPER_UI_MODULE, 'listen', 'end', [
		'from facefusion_engine.upstream_bridge import ui as engine_ui',
		'engine_ui.listen()'
	])
]

# the new keys in upstream's INI template, empty like its own (empty = the built-in default)
INI_SECTIONS = {
	'processors': ['face_swapper_batching', 'face_swapper_use_trt', 'face_swapper_trt_max_batch'],
	'workflow': ['workflow_strategy'],
	'face_tracker': ['face_tracker', 'face_tracker_detect_interval', 'face_tracker_flow_error', 'temporal_smoothing', 'temporal_smoothing_min_cutoff', 'temporal_smoothing_beta']
}


def find_function(tree: ast.Module, name: str, path: str) -> ast.FunctionDef:
	for node in tree.body:
		if isinstance(node, ast.FunctionDef) and node.name == name:
			return node
	raise PatchError(f'{path}: function {name}() not found; is this FaceFusion 3.5.0?')


def indentation_of(line: str) -> str:
	return line[:len(line) - len(line.lstrip())]


def apply_hooks(path: str, text: str, hooks: List[Hook]) -> str:
	"""The text of an original upstream file with the hooks inserted (from the bottom up, so line numbers hold)."""
	if MARKER in text:
		raise PatchError(f'{path} already carries hooks but no original was kept; restore it from upstream first')
	try:
		tree = ast.parse(text)
	except SyntaxError as error:
		raise PatchError(f'{path}: cannot parse ({error})')
	lines = text.splitlines(keepends=True)
	newline = '\r\n' if lines and lines[0].endswith('\r\n') else '\n'
	insertions = []
	for hook in hooks:
		function = find_function(tree, hook.function, path)
		first = function.body[0]
		indent = indentation_of(lines[first.lineno - 1])
		at = first.lineno - 1 if hook.place == 'start' else function.end_lineno
		insertions.append((at, [indent + line + ' ' + MARKER + newline for line in hook.lines]))
	for at, added in sorted(insertions, key=lambda item: item[0], reverse=True):
		if at > 0 and not lines[at - 1].endswith(('\n', '\r')):
			lines[at - 1] += newline
		lines[at:at] = added
	patched = ''.join(lines)
	ast.parse(patched)
	return patched


def apply_ini(text: str) -> str:
	"""upstream's facefusion.ini with the new keys: the swapper's after face_swapper_weight, the rest in new sections."""
	if MARKER in text:
		raise PatchError(f'{INI_FILE} already carries the patch keys but no original was kept')
	lines = text.splitlines(keepends=True)
	anchor = next((index for index, line in enumerate(lines) if line.split('=')[0].strip() == 'face_swapper_weight'), None)
	if anchor is None:
		raise PatchError(f'{INI_FILE}: face_swapper_weight not found; is this FaceFusion 3.5.0?')
	lines[anchor + 1:anchor + 1] = [key + ' =\n' for key in INI_SECTIONS['processors']]
	tail = ['\n', MARKER + '\n']
	for section in ('workflow', 'face_tracker'):
		tail += ['[' + section + ']\n'] + [key + ' =\n' for key in INI_SECTIONS[section]] + ['\n']
	if lines and not lines[-1].endswith('\n'):
		lines[-1] += '\n'
	return ''.join(lines + tail[:-1])


def hooked_paths() -> List[str]:
	return sorted({hook.path for hook in HOOKS})
