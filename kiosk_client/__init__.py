"""Kiosk client for rural public-service visitor centres."""

__version__ = "0.1.0"
