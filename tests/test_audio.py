"""Audio restored from the target (or replaced by an audio source) stays in sync, whole and trim-aware, and is
never lost without a loud warning. Sync is measured on the real output: the synthetic clips carry a loud beep at
a known video time; its onset in the output is compared with where that frame is in the output."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pytest

from facefusion.testing.synthetic_video import SyntheticClip, decode_audio, find_beep_onsets, find_sound_start, make_synthetic_video
from facefusion.video import audio, audio_timing, encoders, ffmpeg
from facefusion.video.io import VideoReader, VideoWriter
from facefusion.video.probe import probe_video, read_header

from conftest import clip_maker

FRAME = 1 / 25
# the sound plays where it did within 3 ms (opus in WebM counts in whole milliseconds). Lengths and the picture's
# start against the first audio sample within 1.5 AAC frames (32 ms): an AAC encode adds 1024 samples of
# priming that MP4 cannot flag on a track that starts late (and Matroska before ffmpeg 9 not at all), and pads
# its last frame; the priming is near silence in front of the sound, which itself stays in place
SYNC = 0.003
AAC_FRAME = 1.5 * 1024 / 48000
CLIP_OPTIONS: Dict[str, dict] = {
	'plain.mp4': {},
	'plain.webm': {},
	'audio_early.mp4': {'audio_offset': -0.5},
	'audio_late.mp4': {'audio_offset': 0.3},
	'silent.mp4': {'audio': False, 'frame_count': 10},
}


@pytest.fixture(scope='module')
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], SyntheticClip]:
	return clip_maker(tmp_path_factory, 'audio_clips', CLIP_OPTIONS)


def swap_video(target: Path, output: Path, trim_start: Optional[int] = None, trim_end: Optional[int] = None, preset: str = 'ultrafast', **audio_options: object) -> audio.AudioOutcome:
	"""The video workflow without processors: read, write, then finalize with audio."""
	info = probe_video(str(target))
	reader = VideoReader(info, trim_start=trim_start, trim_end=trim_end)
	writer = VideoWriter(output, reader.width, reader.height, info.fps_fraction, preset=preset, color_matrix=info.effective_color_matrix())
	for frame in reader:
		writer.write(frame.pixels)
	silent = writer.close()
	return audio.finalize_output(silent, output, writer.duration, target=info, trim_start=reader.first_index, trim_end=reader.first_index + reader.frame_count, **audio_options)


def output_audio(path: Path) -> Tuple[List[float], Optional[float], float]:
	"""Beep onsets and sound start in output video time, and the audio duration."""
	samples, offset = decode_audio(path)
	sound_start = find_sound_start(samples)
	return [onset + offset for onset in find_beep_onsets(samples)], (sound_start + offset) if sound_start is not None else None, len(samples) / 48000


def test_audio_restored_in_mp4_with_aac(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	output = tmp_path / 'out.mp4'
	outcome = swap_video(clip('plain.mp4').path, output)
	assert outcome == audio.AudioOutcome(True, 'aac', 'restored')
	info = probe_video(str(output))
	assert info.audio_codec == 'aac'
	onsets, sound_start, duration = output_audio(output)
	assert duration == pytest.approx(info.duration, abs=FRAME)
	assert onsets == [pytest.approx(1.0, abs=FRAME / 2)]
	assert sound_start == pytest.approx(0.0, abs=FRAME / 2)
	assert sorted(path.name for path in tmp_path.iterdir()) == ['out.mp4']


def test_audio_restored_in_webm_with_opus(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	output = tmp_path / 'out.webm'
	outcome = swap_video(clip('plain.webm').path, output)
	assert outcome.has_audio and outcome.encoder == 'libopus'
	info = probe_video(str(output))
	assert info.codec == 'vp9' and info.audio_codec == 'opus'
	onsets, _, duration = output_audio(output)
	assert duration == pytest.approx(info.duration, abs=FRAME)
	# 3 ms, not a frame: ffmpeg 5.1's WebM muxer alone would put the sound 6.5 ms early (audio_timing)
	assert onsets == [pytest.approx(1.0, abs=SYNC)]


def test_audio_that_starts_before_the_video_is_kept_whole(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	# 3.5.0 cut this audio from the container start, shifting it 0.5 s against the picture and cutting its end
	output = tmp_path / 'early.mp4'
	swap_video(clip('audio_early.mp4').path, output)
	info = probe_video(str(output))
	assert info.video_start_time == pytest.approx(0.5, abs=AAC_FRAME) and info.audio_start_time == pytest.approx(0.0, abs=1e-3)
	onsets, sound_start, duration = output_audio(output)
	assert onsets == [pytest.approx(1.0, abs=SYNC)]
	assert sound_start == pytest.approx(-0.5, abs=SYNC)
	assert duration == pytest.approx(2.5, abs=AAC_FRAME) and info.media_duration == pytest.approx(2.5, abs=AAC_FRAME)


def media_facts(path: Path) -> Dict[str, object]:
	"""What a viewer gets: the file's length, the sound's length, where the picture starts against the sound, and
	when each beep plays in video time."""
	info = probe_video(str(path))
	onsets, _, _ = output_audio(path)
	return {'media': info.media_duration, 'audio': info.audio_duration, 'video_start': info.video_start_time - (info.audio_start_time or 0.0), 'onsets': onsets}


@pytest.mark.parametrize('extension', ['.mp4', '.webm'])
@pytest.mark.parametrize('audio_offset', [-0.85, 0.3])
def test_whole_output_keeps_the_audio_and_its_offset(extension: str, audio_offset: float, tmp_path: Path) -> None:
	# a camera clip whose sound starts 0.85 s before its first frame (a beep in that lead-in), and one whose sound
	# starts 0.3 s after it
	target = tmp_path / ('target' + extension)
	make_synthetic_video(target, audio_offset=audio_offset, beep_times=(-0.5, 1.0) if audio_offset < 0 else (1.0,))
	output = tmp_path / ('output' + extension)
	assert swap_video(target, output).status == 'restored'
	before, after = media_facts(target), media_facts(output)
	assert before['video_start'] == pytest.approx(-audio_offset, abs=AAC_FRAME)
	assert after['onsets'] == [pytest.approx(onset, abs=SYNC) for onset in before['onsets']]
	assert len(after['onsets']) == (2 if audio_offset < 0 else 1)
	assert after['video_start'] == pytest.approx(before['video_start'], abs=AAC_FRAME)
	assert after['audio'] == pytest.approx(before['audio'], abs=AAC_FRAME)
	assert after['media'] == pytest.approx(before['media'], abs=AAC_FRAME)
	assert after['media'] == pytest.approx(2.0 - min(audio_offset, 0.0), abs=AAC_FRAME)


def test_the_muxer_timing_check_finds_what_each_ffmpeg_gets_wrong() -> None:
	# mp4 flags AAC's priming, so its sound is in place; avi cannot, so it plays one AAC frame (1024 samples) late
	assert audio_timing.muxed_audio_delay('aac', 'out.mp4') == 0.0
	assert audio_timing.muxed_audio_delay('aac', 'out.avi') == pytest.approx(-1024 / 48000, abs=0.001)
	# ffmpeg 5.x stores opus in WebM without its 6.5 ms codec delay (in whole milliseconds); 7 and 9 store it right
	opus_delay = audio_timing.muxed_audio_delay('libopus', 'out.webm')
	if ffmpeg.ffmpeg_major_version() == 5:
		assert opus_delay == pytest.approx(0.0065, abs=0.001)
	elif ffmpeg.ffmpeg_major_version() >= 7:
		assert opus_delay == 0.0


@pytest.mark.parametrize('audio_offset', [-0.5, 0.3])
def test_a_container_without_stream_offsets_keeps_sync(clip: Callable[[str], SyntheticClip], audio_offset: float, tmp_path: Path) -> None:
	# avi starts every stream at zero: the audio under the frames, a late start padded with silence, as 3.5.0's
	# outputs always were, but in sync
	output = tmp_path / 'output.avi'
	assert swap_video(clip('audio_early.mp4' if audio_offset < 0 else 'audio_late.mp4').path, output).status == 'restored'
	info = probe_video(str(output))
	onsets, sound_start, duration = output_audio(output)
	assert info.video_start_time == pytest.approx(0.0, abs=1e-3) and info.audio_start_offset == pytest.approx(0.0, abs=AAC_FRAME)
	assert onsets == [pytest.approx(1.0, abs=SYNC)]
	# avi cannot flag the AAC priming either: it plays as near-silence in front, the sound behind it in place
	assert sound_start == pytest.approx(max(audio_offset, 0.0), abs=AAC_FRAME) and duration == pytest.approx(2.0, abs=AAC_FRAME)


def test_an_older_call_without_trim_end_still_gets_the_right_audio(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	# callers that pass no trim_end: a full-length output is taken as whole, a shorter one as trimmed at the end
	target = clip('audio_early.mp4').path
	info = probe_video(str(target))
	for trim_end, expected in ((None, 2.5), (25, 1.0)):
		reader = VideoReader(info, trim_end=trim_end)
		output = tmp_path / 'older_{}.mp4'.format(trim_end)
		writer = VideoWriter(output, reader.width, reader.height, info.fps_fraction, preset='ultrafast')
		for frame in reader:
			writer.write(frame.pixels)
		silent = writer.close()
		audio.finalize_output(silent, output, writer.duration, target=info, trim_start=0)
		assert probe_video(str(output)).media_duration == pytest.approx(expected, abs=AAC_FRAME)


def test_audio_that_starts_after_the_video_keeps_its_place(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	output = tmp_path / 'late.mp4'
	swap_video(clip('audio_late.mp4').path, output)
	onsets, sound_start, _ = output_audio(output)
	assert sound_start == pytest.approx(0.3, abs=FRAME / 2)
	assert onsets == [pytest.approx(1.0, abs=FRAME / 2)]


def test_trimmed_output_keeps_the_matching_audio(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	output = tmp_path / 'trimmed.mp4'
	swap_video(clip('audio_early.mp4').path, output, trim_start=10, trim_end=40)
	info = probe_video(str(output))
	assert info.frame_count == 30
	onsets, sound_start, duration = output_audio(output)
	# frame 10 is at 0.4 s, so the beep at video time 1.0 s is 0.6 s into the output
	assert onsets == [pytest.approx(0.6, abs=FRAME / 2)]
	assert sound_start == pytest.approx(0.0, abs=FRAME / 2)
	assert duration == pytest.approx(1.2, abs=FRAME)
	late = tmp_path / 'trimmed_late.mp4'
	swap_video(clip('audio_late.mp4').path, late, trim_start=5)
	onsets, sound_start, _ = output_audio(late)
	assert sound_start == pytest.approx(0.1, abs=FRAME / 2) and onsets == [pytest.approx(0.8, abs=FRAME / 2)]


def test_trim_far_into_a_long_soundtrack_stays_in_sync(tmp_path: Path) -> None:
	# 64 s of sound, the video only in its last two seconds: the cut is reached with a coarse seek (the audio is
	# not decoded from its start), and the kept samples are still chosen by their own times
	target = tmp_path / 'long.mp4'
	make_synthetic_video(target, width=160, height=120, audio_offset=-62.0, beep_times=(1.0,))
	assert probe_video(str(target)).frame_time(10) > audio.SEEK_AFTER_SECONDS
	output = tmp_path / 'long_trimmed.mp4'
	swap_video(target, output, trim_start=10, trim_end=40)
	onsets, sound_start, duration = output_audio(output)
	assert onsets == [pytest.approx(0.6, abs=SYNC)]
	assert sound_start == pytest.approx(0.0, abs=FRAME / 2) and duration == pytest.approx(1.2, abs=AAC_FRAME)


def test_video_without_audio_gives_output_without_audio(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	output = tmp_path / 'silent.mp4'
	outcome = swap_video(clip('silent.mp4').path, output)
	assert outcome == audio.AudioOutcome(False, None, 'no-audio')
	assert not probe_video(str(output)).has_audio and probe_video(str(output)).frame_count == 10
	muted = tmp_path / 'muted.mp4'
	assert swap_video(clip('plain.mp4').path, muted, volume=0).status == 'muted'
	assert not probe_video(str(muted)).has_audio
	assert sorted(path.name for path in tmp_path.iterdir()) == ['muted.mp4', 'silent.mp4']


def test_audio_source_replaces_the_target_audio(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	import wave
	source = tmp_path / 'voice.wav'
	times = np.arange(48000 * 3) / 48000
	signal = 0.1 * np.sin(2 * np.pi * 300 * times)
	signal[(times >= 0.5) & (times < 0.6)] += 0.8
	with wave.open(str(source), 'wb') as handle:
		handle.setnchannels(1)
		handle.setsampwidth(2)
		handle.setframerate(48000)
		handle.writeframes((signal * 32767).astype('<i2').tobytes())
	assert audio.find_audio_source(['face.jpg', str(source)]) == str(source)
	output = tmp_path / 'replaced.mp4'
	outcome = swap_video(clip('plain.mp4').path, output, source_paths=[str(source)], volume=50)
	assert outcome == audio.AudioOutcome(True, 'aac', 'replaced')
	samples, _ = decode_audio(output)
	# the replacement plays from its start, is cut to the video, and the volume was halved
	assert len(samples) / 48000 == pytest.approx(2.0, abs=FRAME)
	assert find_beep_onsets(samples, threshold=0.3) == [pytest.approx(0.5, abs=FRAME / 2)]
	assert 0.3 < float(np.abs(samples).max()) < 0.55
	# an unreadable audio source costs the audio, never the processed video
	broken = tmp_path / 'broken.mp3'
	broken.write_bytes(b'not audio at all')
	kept = tmp_path / 'kept.mp4'
	assert swap_video(clip('plain.mp4').path, kept, source_paths=[str(broken)]).status == 'failed'
	assert probe_video(str(kept)).frame_count == 50 and not probe_video(str(kept)).has_audio


def test_container_fix_up_keeps_the_audio(clip: Callable[[str], SyntheticClip], tmp_path: Path) -> None:
	# opus cannot go into mov: aac is used instead (with a warning), not silence
	output = tmp_path / 'fixed.mov'
	outcome = swap_video(clip('plain.mp4').path, output, encoder='libopus', quality=20)
	assert outcome.has_audio and outcome.encoder == 'aac'
	assert probe_video(str(output)).audio_codec == 'aac'


def test_failed_mux_warns_loudly_and_keeps_the_silent_video(clip: Callable[[str], SyntheticClip], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
	monkeypatch.setattr(encoders, 'audio_encoder_arguments', lambda encoder, quality, output_path: ['-no_such_option', '1'])
	records = []
	handler = logging.Handler(logging.WARNING)
	handler.emit = records.append
	logger = logging.getLogger('facefusion')
	logger.addHandler(handler)
	try:
		output = tmp_path / 'broken.mp4'
		outcome = swap_video(clip('plain.mp4').path, output, encoder='aac')
	finally:
		logger.removeHandler(handler)
	assert outcome == audio.AudioOutcome(False, None, 'failed')
	assert len(records) == 1 and 'WITHOUT audio' in records[0].getMessage() and '\n' not in records[0].getMessage()
	assert read_header(str(output)).first('Audio') is None and probe_video(str(output)).frame_count == 50
	assert sorted(path.name for path in tmp_path.iterdir()) == ['broken.mp4']
