"""The layout's rules, checked on the source: no import cycle between the engine's modules (imports inside functions
count too: a lazy import still ties two modules together), and the engine's layers depend one way."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

PROJECT_DIR = Path(__file__).resolve().parents[1]
PACKAGE_DIR = PROJECT_DIR / 'facefusion'


def module_name(path: Path) -> str:
	parts = list(path.relative_to(PROJECT_DIR).with_suffix('').parts)
	if parts[-1] == '__init__':
		parts = parts[:-1]
	return '.'.join(parts)


def import_graph() -> Dict[str, Set[str]]:
	"""module → the project modules it imports (`from facefusion.x import y` counts as facefusion.x.y when that is a
	module, else as facefusion.x)."""
	modules = {module_name(path): path for path in PACKAGE_DIR.rglob('*.py')}
	graph: Dict[str, Set[str]] = {}
	for name, path in modules.items():
		targets: Set[str] = set()
		for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
			if isinstance(node, ast.Import):
				targets.update(alias.name for alias in node.names if alias.name in modules)
			elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith('facefusion'):
				for alias in node.names:
					submodule = node.module + '.' + alias.name
					targets.add(submodule if submodule in modules else node.module)
		graph[name] = {target for target in targets if target in modules and target != name}
	return graph


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
	"""Every strongly connected group of more than one module (Tarjan)."""
	index_of: Dict[str, int] = {}
	low: Dict[str, int] = {}
	stack: List[str] = []
	on_stack: Set[str] = set()
	groups: List[List[str]] = []

	def visit(node: str) -> None:
		index_of[node] = low[node] = len(index_of)
		stack.append(node)
		on_stack.add(node)
		for target in sorted(graph[node]):
			if target not in index_of:
				visit(target)
				low[node] = min(low[node], low[target])
			elif target in on_stack:
				low[node] = min(low[node], index_of[target])
		if low[node] == index_of[node]:
			group = []
			while True:
				member = stack.pop()
				on_stack.discard(member)
				group.append(member)
				if member == node:
					break
			if len(group) > 1:
				groups.append(sorted(group))

	for node in sorted(graph):
		if node not in index_of:
			visit(node)
	return groups


def test_cycle_finder_sees_a_cycle() -> None:
	assert find_cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
	assert find_cycles({'a': {'b'}, 'b': set()}) == []


def test_no_import_cycle() -> None:
	graph = import_graph()
	assert 'facefusion.workflows.video' in graph and 'facefusion.core' in graph
	assert find_cycles(graph) == []


def test_layers_depend_one_way() -> None:
	"""Only the command routes know the workflows; the building blocks (video I/O, tracking, processors, inference,
	GPU code) never import a workflow or the command line."""
	graph = import_graph()
	top = ('facefusion.core', 'facefusion.workflows', 'facefusion.cli', 'facefusion.jobs', 'facefusion.uis', 'facefusion.cluster')
	for module, targets in graph.items():
		if module.startswith(top) or module in ('facefusion.face_tracker', 'facefusion.gpu_video_pipeline'):
			continue
		assert not [target for target in targets if target.startswith(top)], module
	assert not [target for target in graph['facefusion.gpu.array_ops'] if target.startswith('facefusion.processors')]


def direct_process_starts(path: Path) -> List[str]:
	"""The calls in a module that start a child process with subprocess itself (subprocess.Popen / run / call /
	check_call / check_output), as 'line: name'."""
	starts = ('Popen', 'run', 'call', 'check_call', 'check_output')
	found = []
	for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
		if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in starts:
			owner = node.func.value
			if isinstance(owner, ast.Name) and owner.id == 'subprocess':
				found.append('{}: subprocess.{}'.format(node.lineno, node.func.attr))
	return found


def test_direct_process_start_finder_sees_one(tmp_path: Path) -> None:
	module = tmp_path / 'module.py'
	module.write_text('import subprocess\nsubprocess.run(["true"])\nprocess = subprocess.Popen(["true"])\n', encoding='utf-8')
	assert direct_process_starts(module) == ['2: subprocess.run', '3: subprocess.Popen']


def test_child_processes_start_through_child_process() -> None:
	"""The engine starts its children through facefusion.child_process, which hands each a copy of the environment
	(a child inheriting it can fail to start while another thread edits it). The test harnesses are single-threaded
	scripts of their own and may call subprocess directly."""
	offenders = {}
	for path in PACKAGE_DIR.rglob('*.py'):
		name = module_name(path)
		if name == 'facefusion.child_process' or name.startswith('facefusion.testing'):
			continue
		starts = direct_process_starts(path)
		if starts:
			offenders[name] = starts
	assert offenders == {}
