"""``nexus``: the operator's command line for NexusAI Deployer.

Operator-side, so it lives outside ``chalicelib`` and ships only in the development requirements:
the product guide's "Test Credentials" button as a command (``nexus credentials test``), the
bootstrap of a target account (``nexus targets bootstrap``) and the first tenant token on AWS
(``nexus tokens create``). Modules, outermost first::

    main.py    Typer commands, option parsing, rich/JSON output, exit codes (0 ok, 1 a check failed, 2 usage)
    signin.py  the four sign-in methods (role ARN + external ID, access keys, profile incl. SSO, ADFS),
               each with optional MFA, into an in-memory boto3 session
    adfs.py    the ADFS IdP-initiated sign-on form flow and the SAML assertion's AWS roles
    checks.py  the guide's checklist: account access, STS identity, account ID, IAM permissions
    api.py     the service's HTTP API (bootstrap template, validate)

Every AWS error goes through ``chalicelib.domain.aws_errors.translate``, so the CLI shows the same
codes and hints (ACCESS_DENIED, INVALID_ROLE_ARN, SESSION_EXPIRED, MFA_REQUIRED) as the API.
Secrets (secret keys, session tokens, passwords, assertions) stay in memory: never written to a file,
a log or the terminal.
"""
