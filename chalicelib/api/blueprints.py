"""Every route module's Blueprint, in one list, so ``app.py`` registers them without knowing each."""

from __future__ import annotations

from chalice.app import Blueprint

from chalicelib.api.access_routes import access_blueprint
from chalicelib.api.lifecycle_routes import lifecycle_blueprint
from chalicelib.api.rollout_routes import rollout_blueprint
from chalicelib.api.routes import api_blueprint
from chalicelib.composition import Container


def all_blueprints(container: Container) -> list[Blueprint]:
    return [
        api_blueprint(container),
        access_blueprint(container),
        rollout_blueprint(container),
        lifecycle_blueprint(container),
    ]
