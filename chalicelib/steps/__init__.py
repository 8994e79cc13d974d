"""Workflow layer: the Lambda steps of ``statemachine/deployment.asl.json``, one per Task state."""
