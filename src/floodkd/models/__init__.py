"""Models: the radar teacher (ViT), the multi-modal student (CNN) and their checkpoints."""

from floodkd.models.channels import (
    MODALITIES,
    MODALITY_CHANNELS,
    NORMALISATION,
    STUDENT_CHANNELS,
    TEACHER_CHANNELS,
    normalise,
    presence_vector,
    student_image,
    teacher_image,
)
from floodkd.models.checkpoint import load_checkpoint, save_checkpoint
from floodkd.models.student import FloodStudent, Projection, StudentConfig
from floodkd.models.teacher import RadarTeacher, TeacherConfig

__all__ = [
    "MODALITIES",
    "MODALITY_CHANNELS",
    "NORMALISATION",
    "STUDENT_CHANNELS",
    "TEACHER_CHANNELS",
    "normalise",
    "presence_vector",
    "student_image",
    "teacher_image",
    "load_checkpoint",
    "save_checkpoint",
    "FloodStudent",
    "Projection",
    "StudentConfig",
    "RadarTeacher",
    "TeacherConfig",
]
