"""Followthrough: postmortems whose follow-ups actually get done."""
