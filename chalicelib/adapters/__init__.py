"""Small boto3 wrappers that implement the service's ports.

Each exposes only the calls the service makes and turns botocore errors into domain errors
(through ``chalicelib.domain.aws_errors``). None creates a client on import: the composition root
hands each one its client.
"""
