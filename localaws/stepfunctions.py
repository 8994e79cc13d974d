"""Take the work that does not depend on the execution out of moto's Step Functions interpreter's loop.

Why this exists: profiling a fleet rollout (every item runs two executions in this one process)
showed moto 5.2.5's interpreter redoing, for every state of every execution, work whose result never
changes:

* every Lambda task builds a new boto3 client (``asl/utils/boto_client.py::boto_client_for``): client
  class creation, endpoint resolution and hook copying, about 8 ms of CPU per task here;
* every JSONPath (``InputPath``, ``ResultPath``, ``SecondsPath``, Choice variables, ...) is parsed
  by a newly built PLY parser (``jsonpath_ng.parse`` called in ``asl/utils/json_path.py`` and in
  ``component/common/path/result_path.py``), and so is every path of an EventBridge input
  transformer (``moto/events/utils.py``), which carries CloudFormation's stack events here;
* every execution lexes and parses its whole definition with ANTLR before it starts
  (``ExecutionWorker._get_evaluation_entrypoint``), although a state machine has one definition;
  and so does every ``CreateStateMachine``, to validate it (``_validate_definition``): about 0.05 s of
  CPU for the service's two machines, paid again by every test that deploys the service.

:func:`install` keeps the same results and caches what is immutable: one client per (region, service)
while moto intercepts botocore in-process (a botocore client is thread-safe; in server mode, whose
endpoint is an HTTP server, moto's own per-task client is kept), parsed JSONPath expressions by their
text (jsonpath_ng's two ``parse`` functions, whose expression trees are not changed by
``find``/``update``; only moto uses jsonpath_ng in this process), and the ANTLR parse tree
of each definition, from which a fresh program is built for every execution exactly as moto builds it
(``Preprocessor().visit(tree)``), so no evaluation state is shared between executions. A definition
whose tree is kept parsed without error, so creating a machine with it again is valid without a new
parse; one that does not parse is refused ``InvalidDefinition`` with moto's messages.

Everything moto-internal this relies on is checked by :func:`check_moto_internals`, which
:func:`install` calls first, so a moto upgrade fails loudly.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import threading
from typing import Any

from localaws.patching import MotoInternalsChanged, source_digest

__all__ = ["check_moto_internals", "install"]

_BOTO_CLIENT = "moto.stepfunctions.parser.asl.utils.boto_client"
_JSON_PATH = "moto.stepfunctions.parser.asl.utils.json_path"
_RESULT_PATH = "moto.stepfunctions.parser.asl.component.common.path.result_path"
_WORKER = "moto.stepfunctions.parser.backend.execution_worker"
_ASL_PARSER = "moto.stepfunctions.parser.asl.parse.asl_parser"
_MODELS = "moto.stepfunctions.parser.models"

# sha256 of inspect.getsource(...) in moto 5.2.5: the bodies these replacements reproduce.
_SOURCE_SHA256 = {
    f"{_BOTO_CLIENT}.boto_client_for": "1f44dc2ac8aa2179df62365a6e5ea377f1770ea828a0f107440a2554f1b4edb8",
    f"{_WORKER}.ExecutionWorker._get_evaluation_entrypoint": (
        "2b25949ae855da8035b347b28ac72f90d7d6542bf26ef7e1f03a50ce6a981fde"
    ),
    f"{_ASL_PARSER}.AmazonStateLanguageParser.parse": (
        "a59a7d18760fb22efc9fd46d8f0fb3bb6c0293abbce2b9053e1589181c6f0711"
    ),
    f"{_MODELS}.StepFunctionsParserBackend._validate_definition": (
        "a5921e3d3b46dcd341ec3a64e61af486cd2f843751a1890e07e9ea0f0008569b"
    ),
}

_lock = threading.Lock()
_installed = False
_clients: dict[tuple[str, str], Any] = {}
_trees: dict[str, Any] = {}  # definition -> its ANTLR parse tree
_MAX_TREES = 64
_originals: dict[str, Any] = {}


def _resolve(dotted: str) -> Any:
    module_name, _, attribute = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except ImportError:
        owner_module, _, owner = module_name.rpartition(".")
        return getattr(getattr(importlib.import_module(owner_module), owner), attribute)


def check_moto_internals() -> None:
    """Fail loudly when a moto internal this module replaces, wraps or calls has moved or changed."""
    problems: list[str] = []
    for dotted, expected in _SOURCE_SHA256.items():
        try:
            function = _originals.get(dotted) or _resolve(dotted)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{dotted} is missing ({exc})")
            continue
        if source_digest(function) != expected:
            problems.append(f"{dotted} changed upstream: re-compare it with localaws/stepfunctions.py")
    try:
        boto_client = importlib.import_module(_BOTO_CLIENT)
        if not hasattr(boto_client.botocore_stubber, "enabled") or not callable(boto_client.moto_server_port):
            problems.append(f"{_BOTO_CLIENT} no longer reads botocore_stubber.enabled / moto_server_port")
        from jsonpath_ng.ext.parser import parse as extended_parse
        from jsonpath_ng.parser import parse as plain_parse

        for module_name, parse in ((_JSON_PATH, extended_parse), (_RESULT_PATH, plain_parse)):
            current = getattr(importlib.import_module(module_name), "parse", None)
            if current is None or inspect.unwrap(current) is not inspect.unwrap(parse):
                problems.append(f"{module_name} no longer parses with {parse.__module__}.parse")
        from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

        if not callable(getattr(Preprocessor, "visit", None)):
            problems.append("Preprocessor.visit is missing")
    except (ImportError, AttributeError) as exc:
        problems.append(str(exc))
    if problems:
        raise MotoInternalsChanged(
            "localaws.stepfunctions relies on moto internals that changed (pin moto==5.2.5 or update the "
            "patch): " + "; ".join(problems)
        )


# ------------------------------------------------------------------------------- replacements


def _boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's function, but one client per (region, service) while moto intercepts botocore."""
    boto_client = sys.modules[_BOTO_CLIENT]
    original = _originals[f"{_BOTO_CLIENT}.boto_client_for"]
    if not boto_client.botocore_stubber.enabled:
        return original(region, service, state_credentials)  # server mode: an HTTP endpoint per call
    key = (region, service)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = original(region, service, state_credentials)
    return client


def _parsed(definition: str) -> tuple[Any | None, Any]:
    """The definition's (program, ANTLR tree) from moto's parser, or (None, tree) once its tree is kept;
    raises as moto's parser does on a bad definition (nothing is kept)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    tree = _trees.get(definition)
    if tree is not None:
        return None, tree
    program, tree = AmazonStateLanguageParser.parse(definition)
    with _lock:
        if len(_trees) >= _MAX_TREES:  # tests create many machines; a process runs a handful
            _trees.clear()
        _trees[definition] = tree
    return program, tree


def _get_evaluation_entrypoint(self: Any) -> Any:
    """moto's method, with the definition's ANTLR parse tree kept; the program is built afresh."""
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    program, tree = _parsed(self._evaluation_details.state_machine_details.definition)
    return program if program is not None else Preprocessor().visit(tree)


def _validate_definition(definition: str) -> None:
    """moto's check at CreateStateMachine/UpdateStateMachine (the definition must parse), with its
    messages, through the kept trees. The error's code is AWS's ``InvalidDefinition`` (HTTP 400): moto's
    own exception sets a ``code`` its ``AWSError`` base does not read, so it answered with an empty code."""
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.asl.parse.asl_parser import ASLParserException

    try:
        _parsed(definition)
    except ASLParserException as asl_parser_exception:
        raise AWSError(repr(asl_parser_exception), "InvalidDefinition", 400) from None
    except Exception as exception:  # noqa: BLE001 - moto's own catch-all, reproduced
        exception_name = exception.__class__.__name__
        exception_args = list(exception.args)
        message = f"Error={exception_name} Args={exception_args} in definition '{definition}'."
        raise AWSError(message, "InvalidDefinition", 400) from None


def _replace_everywhere(module_name: str, name: str, original: Any, replacement: Any) -> None:
    """Replace ``module.name`` and every ``from module import name`` copy already imported."""
    setattr(importlib.import_module(module_name), name, replacement)
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("moto.stepfunctions") and (
            getattr(module, name, None) is original
        ):
            setattr(module, name, replacement)


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        check_moto_internals()
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        original_client = _resolve(f"{_BOTO_CLIENT}.boto_client_for")
        _originals[f"{_BOTO_CLIENT}.boto_client_for"] = original_client
        _replace_everywhere(_BOTO_CLIENT, "boto_client_for", original_client, _boto_client_for)
        import jsonpath_ng
        import jsonpath_ng.ext

        for package in (jsonpath_ng.ext, jsonpath_ng):
            original_parse = getattr(package, "parse")  # noqa: B009 - re-exported, not declared
            cached = functools.lru_cache(maxsize=4096)(original_parse)
            setattr(package, "parse", cached)  # noqa: B010 - moto.events imports it at call time
            _replace_everywhere(
                _JSON_PATH if package is jsonpath_ng.ext else _RESULT_PATH, "parse", original_parse, cached
            )
        _originals[f"{_WORKER}.ExecutionWorker._get_evaluation_entrypoint"] = (
            ExecutionWorker._get_evaluation_entrypoint
        )
        setattr(ExecutionWorker, "_get_evaluation_entrypoint", _get_evaluation_entrypoint)  # noqa: B010
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        validate = f"{_MODELS}.StepFunctionsParserBackend._validate_definition"
        _originals[validate] = StepFunctionsParserBackend._validate_definition
        setattr(StepFunctionsParserBackend, "_validate_definition", staticmethod(_validate_definition))  # noqa: B010
        _installed = True
