"""What ``app.py`` registers beside the route table: the console's files, which are not JSON API routes.

They answer HTML, scripts and styles under a strict Content-Security-Policy, need no token (the page
asks for one and sends it to the API), and have no answer model, so they stay out of the route table
(``chalicelib/api/table.py``) and out of the OpenAPI document generated from it.
"""

from __future__ import annotations

from chalice.app import Blueprint

from chalicelib.api.console_routes import console_blueprint


def all_blueprints() -> list[Blueprint]:
    return [console_blueprint()]
