"""structlog for our events, and the same rendering for the SDK's stdlib loggers.

Workflow code logs through `workflow.logger` (replay-aware); its records carry the workflow's ids
and are rendered by structlog like everything else. Activities log through structlog, and
`ActivityLogContext` binds the running activity's ids, so each of their events says which
postmortem or action item it was for. With json=True every line on stderr is one JSON object:
Python warnings, tracebacks and the SDK Core's forwarded lines included.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.dev import plain_traceback
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

_TEMPORAL_KEYS = ("workflow_id", "workflow_type", "run_id", "update_name", "activity_type")


def _flatten_temporal_info(
    _logger: object, _name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """The SDK's `temporal_workflow`/`temporal_activity` extras become top-level ids."""
    event.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    core = event.pop("temporal_log", None)  # a line forwarded from the SDK Core (Rust)
    if core is not None:
        for name, value in dict(getattr(core, "fields", None) or {}).items():
            event.setdefault(name, value)
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
    # The console renderer prints tracebacks itself; JSON needs them as a string field.
    renderers: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if json
        # Plain tracebacks: the rich ones print every frame's locals (thousands of lines and
        # seconds of CPU for each failed activity while a database is unreachable).
        else [structlog.dev.ConsoleRenderer(colors=False, exception_formatter=plain_traceback)]
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
                *renderers,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # a warning is a log line too, not a bare stderr line


class ActivityLogContext(Interceptor):
    """Binds the running activity's workflow and activity ids to every structlog event it logs
    (sync activities run in threads that get a copy of this context)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindActivityIds(next)


class _BindActivityIds(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> object:
        info = activity.info()
        with structlog.contextvars.bound_contextvars(
            workflow_id=info.workflow_id,
            workflow_type=info.workflow_type,
            run_id=info.workflow_run_id,
            activity_type=info.activity_type,
        ):
            return await super().execute_activity(input)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
