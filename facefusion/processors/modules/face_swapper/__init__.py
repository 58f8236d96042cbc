"""The face swapper processor: `--processors face_swapper`."""
from facefusion.processors.modules.face_swapper.core import FaceSwapper

__all__ = ['FaceSwapper']
