"""Paktum's shared library: what more than one service needs, written once."""

__version__ = "0.1.0"
