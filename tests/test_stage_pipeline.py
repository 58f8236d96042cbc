"""Threaded stage pipeline: order, bounded memory, error propagation and stopping."""
from __future__ import annotations

import random
import threading
import time
from typing import Iterator, List

import pytest

from facefusion.workflows.stage_pipeline import PipelineCancelled, Stage, StagePipeline


def jitter(seed: int) -> float:
	return random.Random(seed).random() * 0.004


def pipeline_threads() -> List[threading.Thread]:
	return [thread for thread in threading.enumerate() if thread.name.startswith('stage-')]


def test_order_is_kept_with_jittery_stages() -> None:
	def decode(value: int) -> int:
		time.sleep(jitter(value))
		return value * 3

	def swap(value: int) -> int:
		time.sleep(jitter(value + 1000))
		return value + 1

	pipeline = StagePipeline(range(300), [Stage('decode', decode), Stage('swap', swap, workers=4), Stage('encode', lambda value: -value, workers=2)], queue_size=4)
	assert list(pipeline) == [-(value * 3 + 1) for value in range(300)]
	timings = pipeline.timings()
	assert timings['swap'][0] == 300 and timings['swap'][1] > 0
	assert not any(thread.is_alive() for thread in pipeline._threads)


def test_memory_stays_bounded_behind_a_slow_item() -> None:
	produced = []
	consumed = []
	most_in_flight = []

	def source() -> Iterator[int]:
		for value in range(120):
			produced.append(value)
			most_in_flight.append(len(produced) - len(consumed))
			yield value

	def work(value: int) -> int:
		# item 5 stalls; the other workers must not race ahead without limit
		time.sleep(0.3 if value == 5 else 0.001)
		return value

	pipeline = StagePipeline(source(), [Stage('work', work, workers=4), Stage('pass', lambda value: value)], queue_size=3)
	for value in pipeline:
		consumed.append(value)
		time.sleep(0.002)
	assert consumed == list(range(120))
	# queues (3 per link, 3 links), the stage's admission window (3 + 4) and the one in the source's hand
	assert max(most_in_flight) <= 3 * 3 + (3 + 4) + 2


def test_an_error_in_a_stage_reaches_the_caller_and_stops_the_others() -> None:
	started = threading.Event()

	def endless() -> Iterator[int]:
		value = 0
		while True:
			started.set()
			yield value
			value += 1

	def fail_at_40(value: int) -> int:
		if value == 40:
			raise ValueError('model failed on frame 40')
		return value

	received = []
	pipeline = StagePipeline(endless(), [Stage('swap', fail_at_40, workers=3), Stage('encode', lambda value: value)], queue_size=4)
	with pytest.raises(ValueError, match='frame 40'):
		for value in pipeline:
			received.append(value)
	assert received == list(range(len(received))) and len(received) <= 40
	assert not any(thread.is_alive() for thread in pipeline._threads)


def test_an_error_in_the_source_reaches_the_caller() -> None:
	def broken() -> Iterator[int]:
		yield 1
		raise OSError('decoder died')

	with pytest.raises(OSError, match='decoder died'):
		list(StagePipeline(broken(), [Stage('work', lambda value: value)]))


def test_stop_event_cancels_the_run() -> None:
	stop = threading.Event()

	def slow(value: int) -> int:
		time.sleep(0.01)
		return value

	pipeline = StagePipeline(iter(range(10000)), [Stage('work', slow, workers=2)], stop_event=stop)
	threading.Timer(0.1, stop.set).start()
	started = time.monotonic()
	with pytest.raises(PipelineCancelled):
		pipeline.run()
	assert time.monotonic() - started < 2.0
	assert not any(thread.is_alive() for thread in pipeline._threads)


def test_leaving_the_loop_early_stops_threads_and_closes_the_source() -> None:
	closed = threading.Event()

	def source() -> Iterator[int]:
		try:
			for value in range(100000):
				yield value
		finally:
			closed.set()

	pipeline = StagePipeline(source(), [Stage('work', lambda value: value * 2, workers=2)])
	for value in pipeline:
		if value == 20:
			break
	assert closed.wait(2.0)
	assert not any(thread.is_alive() for thread in pipeline._threads)


def test_keyboard_interrupt_in_the_consumer_stops_everything() -> None:
	pipeline = StagePipeline(range(100000), [Stage('work', lambda value: value)])
	with pytest.raises(KeyboardInterrupt):
		for value in pipeline:
			if value == 10:
				raise KeyboardInterrupt()
	assert not any(thread.is_alive() for thread in pipeline._threads)


def test_helper_workers_join_only_when_work_is_waiting() -> None:
	"""A stage that keeps up on its first worker stays on it (fewer threads contend for the cores); one that falls
	behind its input gets every worker."""
	def slow_source(count: int) -> Iterator[int]:
		for value in range(count):
			time.sleep(0.03)
			yield value

	def recorded(names: List[str], seconds: float) -> object:
		def step(value: int) -> int:
			names.append(threading.current_thread().name)
			time.sleep(seconds)
			return value
		return step

	keeping_up: List[str] = []
	assert list(StagePipeline(slow_source(20), [Stage('cheap', recorded(keeping_up, 0.0), workers=3)])) == list(range(20))
	# (a first worker that the machine stalls for longer than an item's gap may leave one to a helper)
	assert keeping_up.count('stage-cheap-0') >= 16
	falling_behind: List[str] = []
	assert list(StagePipeline(range(30), [Stage('heavy', recorded(falling_behind, 0.02), workers=3)], queue_size=8)) == list(range(30))
	assert len(set(falling_behind)) >= 2
