"""Recorded workflow histories (one directory per workflow type) and their recorder."""
