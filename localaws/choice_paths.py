"""A Choice rule whose variable is not in the state's input fails the execution, as on AWS.

Why this exists: AWS Step Functions fails the execution with ``States.Runtime`` ("Invalid path '$.x':
The choice state's condition path references an invalid value.") when a Choice rule's ``Variable``
names a path that the input lacks, for every comparison but ``IsPresent`` (the Choice state's
documentation: "If the state input doesn't contain the $.type field, the execution fails"). moto 5.2.5
evaluates such a rule to false (``Variable`` keeps a ``NoSuchVariable``, which no comparison matches)
and goes on to the next rule or the Default. A definition whose Choice reads a field that one path to it
does not set then passed every local run and failed on AWS.

:func:`install` wraps ``ComparisonVariable._eval_body``: once a JSONPath variable (``$.`` or ``$$.``) is
read, a ``NoSuchVariable`` compared by anything but ``IsPresent`` raises the failure AWS records (moto
prefixes the cause with the state's name and the event that entered it, as AWS does for
``States.Runtime``). moto's And and Or stop at their first deciding rule, as the usual guard
``And: [IsPresent, ...]`` needs (``tests/localaws/test_choice_paths.py`` checks both). A workflow
variable (``$name``) is left to moto, which cannot read one in 5.2.5; our definitions use none.
"""

from __future__ import annotations

from typing import Any

from localaws.patching import Patcher

__all__ = ["check_moto_internals", "install"]

_PATCHER = Patcher("localaws.choice_paths")
_CHOICE = "moto.stepfunctions.parser.asl.component.state.choice.comparison"
# sha256 of inspect.getsource(ComparisonVariable._eval_body) in moto 5.2.5: it evaluates the variable
# (which pushes its value, or a NoSuchVariable, on the stack), then the comparison (which pops it).
_EVAL_SHA256 = "55861cce2befeedf9c173b4593cd1cfdf97b5a54b5189569df590d3ba59e98fe"


def _comparison_variable() -> Any:
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_variable import (
        ComparisonVariable,
    )

    return ComparisonVariable


def check_moto_internals() -> None:
    _PATCHER.expect_source(_comparison_variable(), "_eval_body", _EVAL_SHA256)
    from moto.stepfunctions.parser.asl.component.state.choice.comparison import variable

    _PATCHER.expect(hasattr(variable, "NoSuchVariable"), f"{_CHOICE}.variable.NoSuchVariable moved")


def _invalid_path(env: Any, path: str) -> Exception:
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )

    runtime = StatesErrorNameType.StatesRuntime
    cause = f"Invalid path '{path}': The choice state's condition path references an invalid value."
    # moto's TypedDicts are total and this one carries one member: built through Any, as moto does.
    details: Any = {"executionFailedEventDetails": {"error": runtime.to_name(), "cause": cause}}
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=runtime),
            event_type=HistoryEventType.ExecutionFailed,
            event_details=details,
        )
    )


def _eval_body(original: Any) -> Any:
    from moto.stepfunctions.parser.asl.component.common.string.string_expression import StringJsonPath
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_operator_type import (
        ComparisonOperatorType,
    )
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.variable import NoSuchVariable

    def eval_body(self: Any, env: Any) -> None:
        sampler = self.variable.string_sampler
        # A JSONPath of the input or of the context object ($$); not a workflow variable ($name), which
        # moto 5.2.5 cannot read at all (it would fail every such rule, present or not).
        if self.comparison_function.operator_type == ComparisonOperatorType.IsPresent or not isinstance(
            sampler, StringJsonPath
        ):
            original(self, env)
            return
        self.variable.eval(env)
        if isinstance(env.stack[-1], NoSuchVariable):
            env.stack.pop()
            # A context path's literal_value has lost one "$": the path as written is context_object_path.
            raise _invalid_path(env, getattr(sampler, "context_object_path", sampler.literal_value))
        self.comparison_function.eval(env)

    return eval_body


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        _PATCHER.wrap(_comparison_variable(), "_eval_body", _eval_body)
