"""Errors of the configuration layer. The core (lifecycle.errors) re-exports them; config imports nothing of
the core, so the settings and the desired state can be loaded by anything, the core included."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration the product cannot run with."""


class SettingsError(ConfigError):
    """The environment does not hold a usable configuration. The message names every bad setting."""


class DesiredStateError(ConfigError):
    """The desired-state file is missing, malformed, or refused by a guardrail."""
