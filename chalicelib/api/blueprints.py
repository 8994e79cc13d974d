"""The routes not yet in the route table (chalicelib/api/table.py), as Blueprints ``app.py`` registers.

The console's files (``console_routes``) stay a Blueprint: they are not JSON API routes. The template
and onboarding routes are to move into the route table.
"""

from __future__ import annotations

from chalice.app import Blueprint

from chalicelib.api.console_routes import console_blueprint
from chalicelib.api.onboarding_routes import onboarding_blueprint
from chalicelib.api.template_routes import template_blueprint
from chalicelib.composition import Container


def all_blueprints(container: Container) -> list[Blueprint]:
    return [template_blueprint(container), onboarding_blueprint(container), console_blueprint()]
