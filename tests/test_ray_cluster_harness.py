"""The loopback Ray cluster harness itself: a real head in namespaces of its own, real clients, a real SIGKILL."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from facefusion.testing.ray_cluster import LoopbackRayCluster, RayClusterError, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))

# one trivial task per way of naming the cluster; `None` is a bare ray.init()
TRIVIAL_TASKS = """
import sys
import ray

@ray.remote
def add_one(value):
	return value + 1

for address in sys.argv[1:]:
	ray.init(address=None if address == 'none' else address, _node_ip_address='127.0.0.1', log_to_driver=False)
	print(address, ray.get(add_one.remote(41), timeout=60), flush=True)
	ray.shutdown()
"""
# an actor that Ray restarts without limit and whose calls it retries (what the real feature relies on)
RESTARTED_ACTOR = """
import os
import sys
import time
import ray

ray.init(address=sys.argv[1], _node_ip_address='127.0.0.1', log_to_driver=False)

@ray.remote(max_restarts=-1, max_task_retries=3)
class HarnessSleeper:
	def work(self, seconds):
		time.sleep(seconds)
		return os.getpid()

sleeper = HarnessSleeper.remote()
print('result', ray.get(sleeper.work.remote(3), timeout=90), flush=True)
ray.shutdown()
"""


def pid_alive(pid: int) -> bool:
	try:
		os.kill(pid, 0)
	except ProcessLookupError:
		return False
	return True


def test_importing_the_harness_does_not_import_ray() -> None:
	code = 'import sys, facefusion.testing.ray_cluster; print("ray" in sys.modules)'
	result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
	assert result.stdout.strip() == 'False', result.stderr


def test_the_cluster_sees_only_loopback(cluster: LoopbackRayCluster) -> None:
	interfaces = cluster.run(['ip', '-o', 'addr'], capture_output=True, text=True, timeout=30)
	assert interfaces.stdout.strip()
	assert all(line.split()[1] == 'lo' for line in interfaces.stdout.strip().splitlines()), interfaces.stdout
	# what Ray's node-IP probe does: in here it fails at once instead of reaching a public resolver
	probe = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ntry:\n\ts.connect(('8.8.8.8', 53))\n\tprint('connected')\nexcept OSError as error:\n\tprint(error.errno)"
	result = cluster.run_python(probe, timeout=30)
	assert result.stdout.strip() == '101', result.stdout + result.stderr
	titles = ' '.join(process.title for process in cluster.processes())
	assert 'gcs_server' in titles and 'raylet' in titles
	assert '--node-ip-address=127.0.0.1' in titles


def test_client_reaches_head_by_gcs_address_and_auto(cluster: LoopbackRayCluster) -> None:
	result = cluster.run_python(TRIVIAL_TASKS, args=[cluster.address, 'auto', 'none'], timeout=120)
	assert result.returncode == 0, result.stderr[-3000:]
	assert result.stdout.split() == [cluster.address, '42', 'auto', '42', 'none', '42']
	# each of them joined the running cluster: a client starting its own would have left a second session
	assert len([name for name in os.listdir(cluster.temp_dir) if name.startswith('session_2')]) == 1


def test_client_reaches_head_by_ray_protocol(cluster: LoopbackRayCluster) -> None:
	if cluster.client_address is None:
		pytest.skip('no Ray client server: ray:// needs `ray[client]` (grpcio), which is not installed')
	# Ray Client starts a server per client, which can fail to come up on a busy head ("Initialization failure from
	# server"): the engine tries a ray:// connection 3 times (cluster/ray_backend.py), and so does this check
	for _ in range(3):
		result = cluster.run_python(TRIVIAL_TASKS, args=[cluster.client_address], timeout=120)
		if result.returncode == 0 or 'Initialization failure from server' not in result.stderr:
			break
	assert result.returncode == 0, result.stderr[-3000:]
	assert result.stdout.split() == [cluster.client_address, '42']


def test_actor_call_is_retried_after_its_worker_is_killed(cluster: LoopbackRayCluster) -> None:
	client = cluster.popen([sys.executable, '-c', RESTARTED_ACTOR, cluster.address], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
	try:
		victim = cluster.wait_for_worker('HarnessSleeper.work', timeout=60)
		time.sleep(1)
		killed_at = time.monotonic()
		cluster.kill_worker(victim)
		stdout, stderr = client.communicate(timeout=90)
	finally:
		if client.poll() is None:
			client.kill()
			client.communicate()
	assert client.returncode == 0, stderr[-3000:]
	answering_pid = int(stdout.split()[-1])
	# a restarted actor (another process) ran the whole call again
	assert answering_pid != victim
	assert time.monotonic() - killed_at >= 3
	assert not pid_alive(victim)


def test_kill_worker_refuses_a_process_outside_the_cluster(cluster: LoopbackRayCluster) -> None:
	with pytest.raises(RayClusterError):
		cluster.kill_worker(os.getpid())


def test_stop_ends_only_its_own_cluster(cluster: LoopbackRayCluster) -> None:
	other = LoopbackRayCluster(num_cpus=1)
	try:
		other.start()
		pids = [process.pid for process in other.processes()]
		assert len(pids) >= 3
		assert other.running
	finally:
		other.stop()
	assert not other.running
	assert not any(pid_alive(pid) for pid in pids)
	assert not pid_alive(other.holder_pid)
	assert not other.base_dir.exists()
	assert other.processes() == []
	other.stop()
	# `ray stop --force` in the other namespace left this cluster alone
	result = cluster.run_python(TRIVIAL_TASKS, args=[cluster.address], timeout=120)
	assert result.returncode == 0, result.stderr[-3000:]


def test_stop_cleans_up_after_a_failed_start() -> None:
	broken = LoopbackRayCluster(extra_head_args=['--no-such-flag'])
	with pytest.raises(RayClusterError, match='no-such-flag'):
		broken.start()
	assert not broken.running
	assert not broken.base_dir.exists()
	assert not pid_alive(broken.holder_pid)
	broken.stop()
