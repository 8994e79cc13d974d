"""Domain: the records the service keeps, the rules they obey and the errors it can report.

Nothing here performs I/O or imports boto3 or chalice, so the rules are testable without AWS.
"""
