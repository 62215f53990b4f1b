"""The pure domain: pydantic models and functions that take data and return data. No I/O."""
