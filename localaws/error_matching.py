"""``States.ALL`` does not match ``States.DataLimitExceeded`` or ``States.Runtime``, as on AWS.

Why this exists: moto 5.2.5's ``ErrorEqualsDecl._eval_body`` lets ``States.ALL`` match every error
name, so a Retrier or Catcher on ``["States.ALL"]`` retried or caught a task whose output exceeded
256 KiB (``States.DataLimitExceeded``) and a runtime error (``States.Runtime``, e.g. a
``TimeoutSecondsPath`` the input lacks). AWS documents that ``States.ALL`` catches
neither: "This error type can't catch the States.DataLimitExceeded terminal error type and runtime
error types", and "A retry or catch on States.ALL won't catch States.Runtime errors"; the execution
fails with that error. A workflow tested on the unpatched local AWS could rely on its catch-all
(``RecordFailure``, ``RecordRolloutFailure``) to record such a failure; on AWS that state never runs
and only the execution's end (its "Execution Status Change" event, ``execution_ended`` in
chalicelib/service/workflow/failures.py) can end the operation.

:func:`install` wraps ``ErrorEqualsDecl._eval_body``: when its names are ``States.ALL`` and the error
is one of those two, the decl answers "no match" (it pops the error and pushes ``False``, as moto's
body does), so the Retry or Catch falls through. An ErrorEquals that names the error itself
(``["States.DataLimitExceeded"]``, ``["States.Runtime"]``) still matches it, as moto has it; whether AWS
lets an explicit name catch these is not documented, so that is left as moto does it. Also left as moto
has it: which failures it names ``States.Runtime`` (a direct Lambda task's ``Parameters`` path that the
input lacks is ``States.TaskFailed`` here, so ``States.ALL`` still catches it).
"""

from __future__ import annotations

import importlib
from typing import Any

from localaws.patching import Patcher

__all__ = ["NOT_MATCHED_BY_STATES_ALL", "check_moto_internals", "install"]

_PATCHER = Patcher("localaws.error_matching")
_DECL = "moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl"
# sha256 of inspect.getsource(ErrorEqualsDecl._eval_body) in moto 5.2.5: it pops the ErrorName off
# env.stack and pushes whether it matches; States.ALL (``_STATE_ALL_ERROR``) matches any.
_EVAL_BODY_SHA256 = "aeda14a0cc01747d7fe2e620ba35c9c78b43178fbb03665b8578c206f196b019"
NOT_MATCHED_BY_STATES_ALL = frozenset({"States.DataLimitExceeded", "States.Runtime"})


def _decl_class() -> Any:
    return importlib.import_module(_DECL).ErrorEqualsDecl


def check_moto_internals() -> None:
    decl = _decl_class()
    _PATCHER.expect_source(decl, "_eval_body", _EVAL_BODY_SHA256)
    all_error = getattr(decl, "_STATE_ALL_ERROR", None)
    _PATCHER.expect(
        getattr(all_error, "error_name", None) == "States.ALL", "ErrorEqualsDecl._STATE_ALL_ERROR moved"
    )


def _eval_body(original: Any) -> Any:
    def eval_body(self: Any, env: Any) -> None:
        error = env.stack[-1]  # the ErrorName moto's body pops
        if (
            getattr(error, "error_name", None) in NOT_MATCHED_BY_STATES_ALL
            and self._STATE_ALL_ERROR in self.error_names
        ):
            env.stack.pop()
            env.stack.append(False)  # not matched: the Retry/Catch falls through, as on AWS
            return
        original(self, env)

    return eval_body


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        _PATCHER.wrap(_decl_class(), "_eval_body", _eval_body)
