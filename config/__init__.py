"""Settings from the environment, logging configuration, and the desired-state file."""
