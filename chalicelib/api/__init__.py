"""HTTP layer: the route table (``routing.py``, ``table.py``), request and answer models, the error
mapping, and the console's files (``console_routes.py``, registered apart: ``blueprints.py``)."""
