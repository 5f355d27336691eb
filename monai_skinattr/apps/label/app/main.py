"""MONAI Label loads this file as ``main`` and serves the ``MONAILabelApp`` subclass it finds here."""

from monai_skinattr.apps.label.main import TATLLabelApp

__all__ = ["TATLLabelApp"]
