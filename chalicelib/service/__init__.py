"""Use cases. Services speak to AWS only through the ports in ``ports.py``."""
