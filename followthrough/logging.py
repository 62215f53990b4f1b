"""structlog for our events, and the same rendering for the SDK's stdlib loggers.

Workflow code logs through `workflow.logger` (replay-aware); its records carry the workflow's ids
and are rendered by structlog like everything else.
"""

from __future__ import annotations

import logging
import sys

import structlog
from temporalio import activity, workflow

_TEMPORAL_KEYS = ("workflow_id", "workflow_type", "run_id", "update_name", "activity_type")


def _flatten_temporal_info(
    _logger: object, _name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """The SDK's `temporal_workflow`/`temporal_activity` extras become top-level ids."""
    event.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    for key in ("temporal_workflow", "temporal_activity"):
        info = event.pop(key, None)
        if isinstance(info, dict):
            for name in _TEMPORAL_KEYS:
                if name in info:
                    event.setdefault(name, info[name])
    return event


def configure_logging(*, json: bool = False, level: int = logging.INFO) -> None:
    # The ids go into fields (below), not appended to every message.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        _flatten_temporal_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
