"""The engine's options in upstream's CLI, INI file and job steps.

Upstream builds its parser from every processor module's register_args, reads defaults from its INI through its
config module and stores step keys in its job store; the hooks in the face swapper's register_args / apply_args hand
over here, so the new options travel exactly like upstream's own.
"""
from argparse import ArgumentParser, ArgumentTypeError
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

# the INI sections: the swapper's options sit with upstream's processors, the others in the engine's own sections
PROCESSORS_SECTION = 'processors'
WORKFLOW_SECTION = 'workflow'
TRACKER_SECTION = 'face_tracker'


@dataclass(frozen=True)
class Option:
	flag: str
	section: str
	kind: str
	default: str
	help: str
	choices: List[str] = field(default_factory=list)
	low: float = 0.0
	high: float = 0.0

	@property
	def key(self) -> str:
		return self.flag.lstrip('-').replace('-', '_')


OPTIONS: List[Option] = [
	Option('--face-swapper-batching', PROCESSORS_SECTION, 'choice', 'auto', "auto / always: every face x pixel-boost tile of a frame in one model call (this engine's batched swapper); never: upstream's own swapper, one call per tile", ['auto', 'always', 'never']),
	Option('--face-swapper-use-trt', PROCESSORS_SECTION, 'flag', 'false', 'run the batched swapper through a TensorRT fp16 engine when TensorRT is available'),
	Option('--face-swapper-trt-max-batch', PROCESSORS_SECTION, 'int', '16', 'largest batch the TensorRT engine is built for', low=1, high=64),
	Option('--workflow-strategy', WORKFLOW_SECTION, 'choice', 'disk', "video: disk = upstream's own workflow (temporary frames); memory = this engine's streaming pipeline with face tracking and smoothing", ['disk', 'memory']),
	Option('--face-tracker', TRACKER_SECTION, 'choice', 'optical-flow', 'memory workflow: optical-flow analyses keyframes only and follows faces between them; none analyses every frame', ['optical-flow', 'none']),
	Option('--face-tracker-detect-interval', TRACKER_SECTION, 'int', '6', 'memory workflow: frames between keyframes', low=1, high=60),
	Option('--face-tracker-flow-error', TRACKER_SECTION, 'float', '1.0', 'memory workflow: forward-backward flow error (px) above which a keyframe is forced', low=0.1, high=5.0),
	Option('--temporal-smoothing', TRACKER_SECTION, 'choice', 'one-euro', 'memory workflow: landmark and alignment smoothing per tracked face', ['one-euro', 'none']),
	Option('--temporal-smoothing-min-cutoff', TRACKER_SECTION, 'float', '0.5', 'memory workflow: One-Euro minimum cutoff in Hz (lower = steadier when still)', low=0.05, high=10.0),
	Option('--temporal-smoothing-beta', TRACKER_SECTION, 'float', '1.0', 'memory workflow: One-Euro speed coefficient (higher = less lag when moving)', low=0.0, high=20.0)
]

OPTION_KEYS: List[str] = [option.key for option in OPTIONS]


def bounded(convert: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
	def check(text: str) -> Any:
		try:
			value = convert(text)
		except ValueError:
			raise ArgumentTypeError('invalid value ' + repr(text))
		if not low <= value <= high:
			raise ArgumentTypeError(f'{text} is outside {low:g}..{high:g}')
		return value
	return check


def ini_default(option: Option) -> Any:
	"""The default as upstream's own options get theirs: the INI value if the file has one, else the built-in."""
	from facefusion import config
	if option.kind == 'flag':
		return config.get_bool_value(option.section, option.key, option.default)
	if option.kind == 'int':
		return config.get_int_value(option.section, option.key, option.default)
	if option.kind == 'float':
		return config.get_float_value(option.section, option.key, option.default)
	return config.get_str_value(option.section, option.key, option.default)


def add_option(group: Any, option: Option) -> None:
	default = ini_default(option)
	if option.kind == 'flag':
		group.add_argument(option.flag, help=option.help, action='store_true', default=default)
	elif option.kind == 'choice':
		group.add_argument(option.flag, help=option.help, default=default, choices=option.choices)
	else:
		convert = int if option.kind == 'int' else float
		metavar = f'[{option.low:g}..{option.high:g}]'
		group.add_argument(option.flag, help=option.help, type=bounded(convert, option.low, option.high), default=default, metavar=metavar)


def find_group(program: ArgumentParser, title: str) -> Optional[Any]:
	for group in program._action_groups:
		if group.title == title:
			return group
	return None


def register_args(program: ArgumentParser) -> None:
	"""Called at the end of upstream's face_swapper.register_args with its processors parser."""
	import facefusion.jobs.job_store
	if any(option.flag in program._option_string_actions for option in OPTIONS):
		return
	groups = {
		PROCESSORS_SECTION: find_group(program, PROCESSORS_SECTION) or program.add_argument_group(PROCESSORS_SECTION),
		WORKFLOW_SECTION: program.add_argument_group('workflow (facefusion engine)'),
		TRACKER_SECTION: program.add_argument_group('face tracker (facefusion engine, memory workflow)')
	}
	for option in OPTIONS:
		add_option(groups[option.section], option)
	facefusion.jobs.job_store.register_step_keys(OPTION_KEYS)


def apply_args(args: Any, apply_state_item: Callable[[str, Any], None]) -> None:
	"""Called at the end of upstream's face_swapper.apply_args: the new keys land in upstream's state."""
	for key in OPTION_KEYS:
		value = args.get(key)
		if value is None:
			value = ini_default(next(option for option in OPTIONS if option.key == key))
		apply_state_item(key, value)
