"""Who a tracked face is: the running-mean embedding, the classes and the reference decision (with hysteresis) kept on
each track's TrackIdentity, and --face-selector-mode applied through the tracks.

Everything here runs in the analyse stage, which owns the faces it hands out: identities are filled in before the
faces go downstream, and nothing later stages write on a face flows back into a track. So which embedding a track
holds depends only on the frames, in order, never on how the threads downstream happened to run.
"""
from __future__ import annotations

from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

from facefusion.config import RunConfig
from facefusion.face_analyser import FaceAnalyser, needs_classification
from facefusion.face_selector import calculate_face_distance, sort_and_filter_faces
from facefusion.tracking.track import Track, TrackIdentity
from facefusion.types import Embedding, Face, VisionFrame

# a new embedding enters the track's running mean with at least this weight (the mean follows slow changes)
EMBEDDING_MEMORY = 8
# reference decisions flip only when the distance crosses the threshold by this much
REFERENCE_HYSTERESIS = 0.03


def fold_embedding(identity: TrackIdentity, embedding: Optional[Embedding], embedding_norm: Optional[Embedding]) -> None:
	"""Add an embedding to the running mean (equal weights for the first EMBEDDING_MEMORY, then a moving mean); the
	normalised one is renormalised so it stays a unit vector as the recognizer gives it."""
	if embedding is None or embedding_norm is None:
		return
	weight = 1.0 / min(identity.embedding_count + 1, EMBEDDING_MEMORY)
	if identity.embedding is None or identity.embedding_norm is None:
		mean, mean_norm = np.asarray(embedding, np.float64), np.asarray(embedding_norm, np.float64)
	else:
		mean = (1.0 - weight) * np.asarray(identity.embedding, np.float64) + weight * np.asarray(embedding, np.float64)
		mean_norm = (1.0 - weight) * np.asarray(identity.embedding_norm, np.float64) + weight * np.asarray(embedding_norm, np.float64)
	mean_norm = mean_norm / max(float(np.linalg.norm(mean_norm)), 1e-12)
	identity.embedding = mean.astype(np.float32)
	identity.embedding_norm = mean_norm.astype(np.float32)
	identity.embedding_count += 1
	identity.reference_stale = True


def track_probe(track: Track) -> Face:
	"""A bare Face at the track's raw geometry, for the analyser to compute on (and for distances, with the track's
	embedding)."""
	return Face(track.raw_box, track.score_set, track.raw_landmarks, track.angle)


class TrackIdentities:
	"""The identity side of --face-tracker optical-flow: embeddings and classes computed once per track (refreshed on
	keyframes), the reference decision per track, and the selection modes on top of them. Tracks are looked up by
	token in the mapping of the frame's live tracks the tracker passes in."""

	def __init__(self, config: RunConfig, analyser: FaceAnalyser) -> None:
		self.config = config
		self.analyser = analyser
		self.reset()

	def reset(self) -> None:
		# the track 'one' mode stays on, and the reference faces the current decisions were made against
		self.selected_token: Optional[int] = None
		self.reference_signature: Optional[Tuple[int, ...]] = None

	def select(self, frame: VisionFrame, faces: Sequence[Face], tracks: Mapping[int, Track], reference_faces: Optional[Sequence[Face]]) -> List[Face]:
		"""--face-selector-mode on this frame's tracked faces: reference decisions per track, 'one' stays on the same
		track while it lives, filters use the classes cached per track."""
		config = self.config
		mode = config.face_selector_mode
		if mode == 'reference':
			return self.select_by_reference(frame, faces, tracks, reference_faces)
		if needs_classification(config):
			missing = [face for face in faces if face.gender is None or face.age is None or face.race is None]
			if missing:
				self.analyser.ensure_classification(frame, missing)
				for face in missing:
					track = tracks.get(face.track_token)
					if track is not None:
						track.identity.gender, track.identity.age, track.identity.race = face.gender, face.age, face.race
		selected = sort_and_filter_faces(faces, config)
		if mode == 'one':
			chosen = next((face for face in selected if face.track_token == self.selected_token), None) if self.selected_token is not None else None
			chosen = chosen or (selected[0] if selected else None)
			self.selected_token = chosen.track_token if chosen is not None else None
			return [chosen] if chosen is not None else []
		return selected

	def select_by_reference(self, frame: VisionFrame, faces: Sequence[Face], tracks: Mapping[int, Track], reference_faces: Optional[Sequence[Face]]) -> List[Face]:
		if not reference_faces or not faces:
			return []
		signature = tuple(id(face) for face in reference_faces)
		if signature != self.reference_signature:
			# other reference faces: every decision made so far is about the wrong question
			self.reference_signature = signature
			for track in tracks.values():
				track.identity.reference_match = None
				track.identity.reference_stale = True
		missing = [face for face in faces if face.embedding is None or face.embedding_norm is None]
		if missing:
			self.analyser.ensure_embeddings(frame, missing)
			for face in missing:
				track = tracks.get(face.track_token)
				if track is not None and track.identity.embedding is None:
					fold_embedding(track.identity, face.embedding, face.embedding_norm)
		selected = []
		for face in faces:
			track = tracks.get(face.track_token)
			if track is None:
				# not from this tracker: decide on the spot, as 3.5.0 does
				if any(calculate_face_distance(face, reference) < self.config.reference_face_distance for reference in reference_faces):
					selected.append(face)
				continue
			identity = track.identity
			if identity.reference_match is None or identity.reference_stale:
				identity.reference_match = self.decide_reference(track, reference_faces)
				identity.reference_stale = False
			if identity.reference_match:
				selected.append(face)
		return selected

	def decide_reference(self, track: Track, reference_faces: Sequence[Face]) -> bool:
		identity = track.identity
		probe = track_probe(track)
		probe.embedding, probe.embedding_norm = identity.embedding, identity.embedding_norm
		distance = min(calculate_face_distance(probe, reference) for reference in reference_faces)
		threshold = self.config.reference_face_distance
		if identity.reference_match is None:
			return distance < threshold
		# hysteresis: a match must drift clearly out to be dropped, a non-match clearly in to be taken
		if identity.reference_match:
			return distance < threshold + REFERENCE_HYSTERESIS
		return distance < threshold - REFERENCE_HYSTERESIS

	def provide_embeddings(self, frame: VisionFrame, faces: Sequence[Face], tracks: Mapping[int, Track]) -> None:
		"""Target embeddings for faces about to go downstream: a track without one gets it from this frame (all such
		faces in one batched recognizer call), and every tracked face carries its track's running mean. A face from
		elsewhere (no live track) gets its own."""
		pending = []
		for face in faces:
			track = tracks.get(face.track_token)
			if track is None:
				if face.embedding is None or face.embedding_norm is None:
					pending.append((face, None))
			elif track.identity.embedding is None:
				# computed on a copy of the face's geometry: the face itself gets the track's (folded) embedding
				pending.append((Face(face.bounding_box, face.score_set, face.landmark_set, face.angle), track))
		if pending:
			self.analyser.ensure_embeddings(frame, [probe for probe, _ in pending])
			for probe, track in pending:
				if track is not None:
					fold_embedding(track.identity, probe.embedding, probe.embedding_norm)
		for face in faces:
			track = tracks.get(face.track_token)
			if track is not None:
				face.embedding, face.embedding_norm = track.identity.embedding, track.identity.embedding_norm

	def refresh_embeddings(self, frame: VisionFrame, tracks: Sequence[Track]) -> None:
		"""On a keyframe, tracks whose identity is in use (they have an embedding) get a fresh one folded into their
		running mean, in one batched recognizer call; tracks nobody asked about cost nothing."""
		wanted = [track for track in tracks if track.identity.embedding is not None]
		if not wanted:
			return
		probes = [track_probe(track) for track in wanted]
		self.analyser.ensure_embeddings(frame, probes)
		for track, probe in zip(wanted, probes):
			fold_embedding(track.identity, probe.embedding, probe.embedding_norm)
