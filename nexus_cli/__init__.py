"""``nexus``: the operator's command line for NexusAI Deployer.

Operator-side, so it lives outside ``chalicelib`` and ships only in the development requirements.
Everyday work goes through the service's public HTTP API only (targets, deploy/apply, deployments,
rollouts); the guide's "Test Credentials" button (``nexus credentials test``), the bootstrap of a
target account (``nexus targets bootstrap``) and local mode's account admins (``nexus local admin``)
use the operator's own AWS credentials; the first tenant token on AWS (``nexus tokens create``) writes
to the service table. Modules, outermost first::

    main.py         the Typer app: --version, completion, one sub-app per group
    commands/       one module per command group; common.py holds the connection, exits and printing
    live.py         following a deployment (only new events) or a rollout; rich live views or plain lines
    api.py          the HTTP API client (Idempotency-Key on every write, retried in transit)
    config.py       nexus configure's 0600 file, NEXUS_API_URL / NEXUS_API_TOKEN overrides
    inputs.py       K=V pairs, parameter files, templates, rollout targets
    output.py       scrubbed text or one JSON document; the check report
    local_admin.py  an admin IAM user in an account of the embedded AWS; AWS CLI profiles
    signin.py       the four sign-in methods (role ARN + external ID, access keys, profile incl. SSO, ADFS),
                    each with optional MFA, into an in-memory boto3 session
    adfs.py         the ADFS IdP-initiated sign-on form flow and the SAML assertion's AWS roles
    checks.py       the guide's checklist: account access, STS identity, account ID, IAM permissions
    bootstrap.py    the bootstrap stack, deployed with the operator's credentials

Exit codes: 0 success, 1 failure, 2 usage error (before any call). Every AWS error goes through
``chalicelib.domain.aws_errors.translate``, so the CLI shows the same codes and hints (ACCESS_DENIED,
INVALID_ROLE_ARN, SESSION_EXPIRED, MFA_REQUIRED) as the API. Secrets (secret keys, session tokens,
passwords, assertions, the API token) stay in memory: never written to a log or the terminal; the API
token is written only to nexus configure's 0600 file.
"""
