"""The face enhancer processor: `--processors face_enhancer`."""
from facefusion.processors.modules.face_enhancer.core import FaceEnhancer

__all__ = ['FaceEnhancer']
