"""A real local Ray cluster for tests and benchmarks that cannot send anything off the machine.

The cluster lives in namespaces of its own, made with `unshare` (root, or CAP_SYS_ADMIN):

- a network namespace holding only the loopback interface: Ray's own probes (its C++ core still tries a UDP
  connect to 8.8.8.8:53 to find the node IP, even with --node-ip-address) fail with "network unreachable";
- a pid namespace (with its own /proc mount): `ray stop --force` run inside sees and kills only this cluster's
  processes, not the Ray of another test or of the user, and killing the namespace's first process takes every
  process of the cluster down with it (the kernel does that), so nothing outlives stop() or a crashed test run.

Every port is free in a fresh network namespace, so the cluster uses Ray's default ports; several clusters can run
side by side. Clients are commands run inside the namespaces (`run`, `popen`, `run_python`) with `env()`; they reach
the head at `address` (GCS, `127.0.0.1:6379`), at `client_address` (`ray://127.0.0.1:10001`, needs `ray[client]`,
i.e. grpcio, in the head's environment) or with `ray.init()` / `address='auto'`, which find the cluster through
RAY_TMPDIR. Clients should pass `_node_ip_address='127.0.0.1'` to ray.init: without it Ray takes the IP that the
host name resolves to.

Should the process that started a cluster die (even by SIGKILL), the cluster's processes die with it
(PR_SET_PDEATHSIG on `unshare`, `--kill-child` on the namespace); only its folder /tmp/rayns-* stays behind.

Usage:

	reason = unavailable_reason()  # None where the namespaces can be made
	with LoopbackRayCluster(num_cpus=2) as cluster:
		result = cluster.run_python('import ray; ray.init(address=...)', timeout=60)
		pids = cluster.worker_pids('Sleeper.work')

Importing this module does not import ray.
"""
from __future__ import annotations

import atexit
import ctypes
import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

LOOPBACK_IP = '127.0.0.1'
# `unshare --fork` makes the child the first process (pid 1) of the new pid namespace. It brings the loopback
# interface up, says so on stdout, then reaps the orphans the namespace hands it (`ray start` leaves its daemons
# behind as orphans; a plain `sleep` as pid 1 would collect their zombies).
HOLDER_CODE = """
import os, subprocess, sys, time
subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
sys.stdout.write('ready\\n')
sys.stdout.flush()
while True:
	try:
		os.wait()
	except ChildProcessError:
		time.sleep(0.2)
"""
UNSHARE_ARGS = ('unshare', '--net', '--pid', '--fork', '--mount-proc', '--kill-child=SIGKILL')
PR_SET_PDEATHSIG = 1


class RayClusterError(RuntimeError):
	pass


@dataclass(frozen=True)
class RayProcess:
	pid: int
	# the command line as Ray leaves it: workers overwrite it with a title such as `ray::Sleeper.work`, `ray::IDLE`
	title: str
	rss_bytes: int


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> Optional[str]:
	"""Why a LoopbackRayCluster cannot start here, or None when it can (the check runs `unshare` once)."""
	for tool in ('unshare', 'nsenter', 'ip'):
		if shutil.which(tool) is None:
			return '`' + tool + '` is not on PATH'
	if importlib.util.find_spec('ray') is None:
		return 'ray is not installed'
	try:
		probe = subprocess.run([*UNSHARE_ARGS, 'true'], capture_output=True, text=True, timeout=30)
	except (OSError, subprocess.TimeoutExpired) as exception:
		return 'cannot run unshare: ' + str(exception)
	if probe.returncode != 0:
		return 'cannot create network and pid namespaces (`unshare --net --pid` needs root or CAP_SYS_ADMIN): ' + probe.stderr.strip()
	return None


def available() -> bool:
	return unavailable_reason() is None


def ray_client_installed() -> bool:
	"""Whether `ray[client]` (grpcio) is importable here: the head's client server and ray:// clients need it."""
	return importlib.util.find_spec('grpc') is not None


def _die_with_parent() -> None:
	# runs in the forked child before exec: the holder gets SIGKILL when the process that started it dies, even
	# by SIGKILL, and `--kill-child` passes that on to the pid namespace, so a killed test run leaves nothing
	libc = ctypes.CDLL(None, use_errno=True)
	libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _read_text(path: str) -> Optional[str]:
	try:
		with open(path, 'rb') as file:
			return file.read().decode(errors='replace')
	except OSError:
		return None


def _net_namespace_of(pid: int) -> Optional[str]:
	try:
		return os.readlink('/proc/' + str(pid) + '/ns/net')
	except OSError:
		return None


@dataclass
class LoopbackRayCluster:
	num_cpus: int = 2
	num_gpus: int = 0
	port: int = 6379
	# None: a client server where grpcio is installed; True: insist (start fails without grpcio); False: none
	client_server: Optional[bool] = None
	client_server_port: int = 10001
	object_store_memory: Optional[int] = None
	# added to the environment of the head and of every command run in the namespace (PYTHONPATH, RAY_* knobs)
	extra_env: Dict[str, str] = field(default_factory=dict)
	extra_head_args: Sequence[str] = ()
	start_timeout: float = 90.0
	# the holder dies with the thread that started it (PR_SET_PDEATHSIG); turn off when starting from a short-lived thread
	die_with_parent: bool = True

	# the folder of the last start (holding home/ and ray/); stop() removes it but leaves the path here
	base_dir: Optional[Path] = field(default=None, init=False)
	# host pid of the last start's `unshare` process, kept after stop() as a record
	holder_pid: Optional[int] = field(default=None, init=False)
	start_seconds: Optional[float] = field(default=None, init=False)
	start_output: str = field(default='', init=False)
	_holder: Optional[subprocess.Popen] = field(default=None, init=False, repr=False)
	_init_pid: Optional[int] = field(default=None, init=False)
	_net_namespace: Optional[str] = field(default=None, init=False)
	_client_server_started: bool = field(default=False, init=False)
	_head_started: bool = field(default=False, init=False)
	_owns_base_dir: bool = field(default=False, init=False)

	# -- paths and addresses

	@property
	def home_dir(self) -> Path:
		return self._require_base() / 'home'

	@property
	def temp_dir(self) -> Path:
		"""Ray's --temp-dir (sessions, logs, unix sockets). Kept short: a socket path must fit in 107 bytes."""
		return self._require_base() / 'ray'

	@property
	def address(self) -> str:
		return LOOPBACK_IP + ':' + str(self.port)

	@property
	def client_address(self) -> Optional[str]:
		if not self._client_server_started:
			return None
		return 'ray://' + LOOPBACK_IP + ':' + str(self.client_server_port)

	@property
	def namespace_pid(self) -> Optional[int]:
		"""Host pid of the first process of the namespaces (for `nsenter -t`)."""
		return self._init_pid

	@property
	def running(self) -> bool:
		return self._head_started and self._holder is not None and self._holder.poll() is None

	def _require_base(self) -> Path:
		if self.base_dir is None:
			raise RayClusterError('the cluster was never started')
		return self.base_dir

	# -- environment and commands

	def env(self) -> Dict[str, str]:
		"""What a command needs on top of os.environ to talk to this cluster and to nothing else."""
		environment = {
			'HOME': str(self.home_dir),
			# 2.60 turns token auth on by default; a client given an explicit address then fails with InvalidAuthToken
			'RAY_AUTH_MODE': 'disabled',
			'RAY_USAGE_STATS_ENABLED': '0',
			# with stats disabled Ray still sends a "disabled" report: to a local port nothing listens on
			'RAY_USAGE_STATS_REPORT_URL': 'http://127.0.0.1:9/',
			# Ray's default temp dir is $RAY_TMPDIR/ray: ray.init() and address='auto' read ray_current_cluster there
			'RAY_TMPDIR': str(self._require_base())
		}
		environment.update(self.extra_env)
		return environment

	def command(self, argv: Sequence[str], cwd: Optional[os.PathLike | str] = None) -> List[str]:
		"""argv wrapped to run inside the cluster's namespaces, in cwd (default: the current directory)."""
		if self._init_pid is None:
			raise RayClusterError('the namespaces do not exist (start() first)')
		# entering a mount namespace resets the working directory to its root: --wd sets it back
		working_dir = os.path.abspath(cwd if cwd is not None else os.getcwd())
		return ['nsenter', '--target', str(self._init_pid), '--net', '--pid', '--mount', '--wd=' + working_dir, '--', *[str(arg) for arg in argv]]

	def _merged_env(self, env: Optional[Mapping[str, str]]) -> Dict[str, str]:
		environment = dict(os.environ)
		# an inherited RAY_ADDRESS would point our clients at another cluster
		environment.pop('RAY_ADDRESS', None)
		environment.update(self.env())
		if env is not None:
			environment.update(env)
		return environment

	def run(self, argv: Sequence[str], env: Optional[Mapping[str, str]] = None, **kwargs: Any) -> subprocess.CompletedProcess:
		"""subprocess.run inside the namespaces with env() on top of os.environ (then `env`)."""
		return subprocess.run(self.command(argv, kwargs.get('cwd')), env=self._merged_env(env), **kwargs)

	def popen(self, argv: Sequence[str], env: Optional[Mapping[str, str]] = None, **kwargs: Any) -> subprocess.Popen:
		return subprocess.Popen(self.command(argv, kwargs.get('cwd')), env=self._merged_env(env), **kwargs)

	def run_python(self, code: str, args: Sequence[str] = (), timeout: float = 120.0, env: Optional[Mapping[str, str]] = None, **kwargs: Any) -> subprocess.CompletedProcess:
		"""Python code (with sys.argv[1:] = args) run by this interpreter inside the namespaces; output captured as text."""
		return self.run([sys.executable, '-c', code, *args], env=env, capture_output=True, text=True, timeout=timeout, **kwargs)

	def ray_cli(self, *args: str) -> List[str]:
		"""argv for the `ray` command of this interpreter."""
		return [sys.executable, '-m', 'ray.scripts.scripts', *args]

	# -- processes

	def processes(self) -> List[RayProcess]:
		"""Every process in the cluster's network namespace but its holder, with host pids."""
		if self._net_namespace is None:
			return []
		found = []
		for entry in os.listdir('/proc'):
			if not entry.isdigit():
				continue
			pid = int(entry)
			# unshare itself sits in the new network namespace too (not in the pid namespace it made)
			if pid in (self._init_pid, self.holder_pid) or _net_namespace_of(pid) != self._net_namespace:
				continue
			cmdline = _read_text('/proc/' + entry + '/cmdline')
			statm = _read_text('/proc/' + entry + '/statm')
			# a zombie has an empty command line: it is gone already
			if not cmdline or statm is None:
				continue
			title = ' '.join(part for part in cmdline.split('\0') if part.strip())
			rss_bytes = int(statm.split()[1]) * os.sysconf('SC_PAGE_SIZE')
			found.append(RayProcess(pid=pid, title=title, rss_bytes=rss_bytes))
		return sorted(found, key=lambda process: process.pid)

	def worker_pids(self, title_substring: str) -> List[int]:
		"""Host pids of the Ray processes whose title contains title_substring (e.g. 'Sleeper.work', 'ray::IDLE')."""
		return [process.pid for process in self.processes() if process.title.startswith('ray::') and title_substring in process.title]

	def wait_for_worker(self, title_substring: str, timeout: float = 30.0) -> int:
		"""The pid of the first worker whose title contains title_substring, once one shows up."""
		deadline = time.monotonic() + timeout
		while True:
			pids = self.worker_pids(title_substring)
			if pids:
				return pids[0]
			if time.monotonic() > deadline:
				raise RayClusterError('no Ray worker titled *' + title_substring + '* within ' + str(timeout) + ' s; processes: ' + repr([process.title[:80] for process in self.processes()]))
			time.sleep(0.05)

	def kill_worker(self, pid: int) -> None:
		"""SIGKILL to one process of this cluster (refuses a pid outside the namespace)."""
		if _net_namespace_of(pid) != self._net_namespace:
			raise RayClusterError('process ' + str(pid) + ' is not part of this cluster')
		os.kill(pid, signal.SIGKILL)

	def rss_bytes(self) -> int:
		return sum(process.rss_bytes for process in self.processes())

	# -- life cycle

	def start(self) -> LoopbackRayCluster:
		if self._holder is not None:
			raise RayClusterError('the cluster is started already')
		self.base_dir = None
		self.holder_pid = None
		reason = unavailable_reason()
		if reason is not None:
			raise RayClusterError(reason)
		try:
			self._start()
		except BaseException:
			self.stop()
			raise
		return self

	def _start(self) -> None:
		atexit.register(self.stop)
		# a short name under /tmp whatever TMPDIR says: Ray's unix socket paths grow from here
		self.base_dir = Path(tempfile.mkdtemp(prefix='rayns-', dir='/tmp'))
		self._owns_base_dir = True
		self.home_dir.mkdir()
		# the usage module probes cloud-metadata addresses unless the bootstrap config names a provider
		(self.home_dir / 'ray_bootstrap_config.yaml').write_text('provider:\n  type: local\n')
		self._holder = subprocess.Popen([*UNSHARE_ARGS, sys.executable, '-c', HOLDER_CODE], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent if self.die_with_parent else None)
		self.holder_pid = self._holder.pid
		ready = self._holder.stdout.readline()
		if ready.strip() != 'ready':
			self._holder.wait(timeout=10)
			raise RayClusterError('the namespace holder did not start: ' + self._holder.stderr.read().strip())
		self._init_pid = self._find_init_pid()
		self._net_namespace = _net_namespace_of(self._init_pid)
		if self._net_namespace is None or self._net_namespace == _net_namespace_of(os.getpid()):
			raise RayClusterError('the namespace holder is not in a network namespace of its own')

		want_client_server = ray_client_installed() if self.client_server is None else self.client_server
		head_args = ['start', '--head', '--node-ip-address', LOOPBACK_IP, '--port', str(self.port), '--num-cpus', str(self.num_cpus), '--num-gpus', str(self.num_gpus), '--include-dashboard=false', '--disable-usage-stats', '--temp-dir', str(self.temp_dir)]
		if want_client_server:
			head_args += ['--ray-client-server-port', str(self.client_server_port)]
		if self.object_store_memory is not None:
			head_args += ['--object-store-memory', str(self.object_store_memory)]
		head_args += list(self.extra_head_args)
		self._head_started = True
		start_time = time.monotonic()
		try:
			result = self.run(self.ray_cli(*head_args), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=self.start_timeout)
		except subprocess.TimeoutExpired as exception:
			raise RayClusterError('ray start did not finish within ' + str(self.start_timeout) + ' s') from exception
		self.start_seconds = time.monotonic() - start_time
		self.start_output = result.stdout + result.stderr
		if result.returncode != 0:
			raise RayClusterError('ray start failed (exit ' + str(result.returncode) + '):\n' + self.start_output[-4000:])
		self._client_server_started = want_client_server

	def _find_init_pid(self) -> int:
		# unshare forks the namespace's first process; by the time it printed "ready" it is unshare's only child
		children = _read_text('/proc/' + str(self._holder.pid) + '/task/' + str(self._holder.pid) + '/children')
		if not children or not children.split():
			raise RayClusterError('the namespace holder has no child process')
		return int(children.split()[0])

	def stop(self) -> None:
		"""Stops every process of the cluster and removes its folders. Safe to call twice or after a failed start."""
		atexit.unregister(self.stop)
		holder_alive = self._holder is not None and self._holder.poll() is None
		if self._head_started and holder_alive:
			try:
				# scoped by the pid namespace: this /proc lists only the cluster's own processes
				self.run(self.ray_cli('stop', '--force'), stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
			except (OSError, subprocess.TimeoutExpired):
				pass
		self._head_started = False
		self._client_server_started = False
		if self._init_pid is not None and holder_alive:
			try:
				# the first process of a pid namespace takes every other one with it
				os.kill(self._init_pid, signal.SIGKILL)
			except ProcessLookupError:
				pass
		if self._holder is not None:
			if self._holder.poll() is None:
				self._holder.kill()
			self._holder.wait(timeout=30)
			for stream in (self._holder.stdout, self._holder.stderr):
				if stream is not None:
					stream.close()
		self._kill_leftovers()
		self._holder = None
		self._init_pid = None
		self._net_namespace = None
		# only once: the name is free again after removal and could be someone else's by a second stop()
		if self.base_dir is not None and self._owns_base_dir:
			shutil.rmtree(self.base_dir, ignore_errors=True)
			self._owns_base_dir = False

	def _kill_leftovers(self) -> None:
		# anything still in the network namespace (entered without the pid namespace, or not yet reaped by the
		# kernel) gets SIGKILL; wait until the namespace is empty so a caller sees no process after stop()
		deadline = time.monotonic() + 15
		while True:
			leftovers = self.processes()
			if not leftovers:
				return
			for process in leftovers:
				try:
					os.kill(process.pid, signal.SIGKILL)
				except ProcessLookupError:
					pass
			if time.monotonic() > deadline:
				raise RayClusterError('processes of the cluster survived SIGKILL: ' + repr(leftovers))
			time.sleep(0.05)

	def __enter__(self) -> LoopbackRayCluster:
		return self.start()

	def __exit__(self, *exc_info: object) -> None:
		self.stop()
