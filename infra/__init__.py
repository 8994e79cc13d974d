"""Build tooling for the cloud template (``make package``); never imported by the deployed service."""
