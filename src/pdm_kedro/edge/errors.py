"""Errors the edge runtime raises: each message says what is wrong and what to send instead."""

from __future__ import annotations


class EdgeError(ValueError):
    """Base class of every error the edge runtime raises on purpose."""


class BundleError(EdgeError):
    """A bundle that is missing, incomplete, tampered with or from an unsupported format."""


class UnknownMachineError(EdgeError):
    """A machine id for which no bundle exists (or that does not match the bundle)."""


class EdgeInputError(EdgeError):
    """Sensor readings the runtime cannot answer from (names, count, values, dtype, history)."""
