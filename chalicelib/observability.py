"""Structured logs for every ``chalicelib`` module, through Powertools' Logger.

Modules log with the standard library (``logging.getLogger(__name__)``), which costs nothing at
import. The composition root calls ``configure_logging`` once, which gives those loggers
Powertools' JSON formatter, so CloudWatch Logs Insights can query by level, service and key.
Nothing here logs request bodies or credentials; callers log ids and codes only.
"""

from __future__ import annotations

import logging
import threading

SERVICE_NAME = "nexus-deployer"
_configured = False
_lock = threading.Lock()


def configure_logging(level: str = "INFO") -> None:
    global _configured
    with _lock:
        if _configured:
            return
        from aws_lambda_powertools import Logger
        from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

        source = Logger(service=SERVICE_NAME, level=level)
        logging.getLogger("chalicelib")  # register the package logger so its children inherit the setup
        copy_config_to_registered_loggers(source_logger=source, include={"chalicelib"})
        _configured = True
