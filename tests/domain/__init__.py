"""The pure domain, tested directly: one file per module of followthrough/domain, with the
refusals and problem lists a person actually reads."""
