"""Distillation: the teacher-to-student losses, EWC, calibration and the training loop."""
