"""The dashboard as a Solara app module: ``crmsim viz`` (or ``solara run crmsim.viz.app``)."""

from .page import Page

__all__ = ["Page"]
