"""The command groups of ``nexus``, one module each."""
