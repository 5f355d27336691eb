"""Ignite handlers used by the bundles."""

from .precise_bn import PreciseBN

__all__ = ["PreciseBN"]
