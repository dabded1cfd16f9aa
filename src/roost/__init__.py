"""Roost: a messaging gateway for connected devices."""

__version__ = "0.1.0"
