"""NexusAI Deployer: the code behind ``app.py``.

The layers, outermost first; dependencies only point down::

    app.py                    Chalice app: registers routes, workflow steps, event handlers
      chalicelib/api/         HTTP layer: auth, request models (pydantic), the one error->HTTP mapping
      chalicelib/steps/       workflow layer: one function per state of statemachine/deployment.asl.json
        chalicelib/service/   use cases (targets, deployments, workflow); talks to ports (typing.Protocol)
          chalicelib/domain/  records, rules, errors; imports neither boto3 nor chalice
      chalicelib/adapters/    small boto3 wrappers that implement the ports (STS, CloudFormation,
                              Step Functions, DynamoDB) and translate AWS errors into domain errors
    chalicelib/composition.py the one place that reads settings and builds clients and services
    chalicelib/settings.py    settings, read from the environment when the composition root asks

Request flow: POST /deployments -> DeploymentService writes the record and starts one execution of
the state machine (named after the operation id) -> the steps assume the target role with the
target's external ID and drive CloudFormation in the target account -> DynamoDB holds the outcome.
"""
