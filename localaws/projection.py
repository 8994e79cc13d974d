"""DynamoDB projections on the local AWS: the item converted once per projection, not once per attribute.

Why this exists: moto 5.2.5's ``Item.project`` converts the whole item to plain JSON
(``to_regular_json``, a recursive walk of every attribute) once for *each* path of the
``ProjectionExpression``, then picks that path out. StartItem reads a rollout item and its rollout with
a projection of 21 attribute names (so that a record's large fields, the rollout's target list and an
item's task token, are not sent), and moto converted both records 21 times: a profile of a 300-target
rollout put 41% of StartItem's CPU in that one read. On AWS a projection is the server's work and the
caller pays the item's read units, however many attributes it names.

:func:`install` wraps ``Item.project``: when every path is one top-level attribute name (no ``a.b``, no
``a[1]``), the item is converted once and each named attribute taken from that conversion, which is
what moto's loop computes (for one top-level name, ``find_nested_key`` returns ``{name: value}`` and
``merge_dicts`` adds it); any other projection goes to moto unchanged.
``tests/localaws/test_projection.py`` compares the two answers.
"""

from __future__ import annotations

from typing import Any

from localaws.patching import Patcher

__all__ = ["check_moto_internals", "install"]

_PATCHER = Patcher("localaws.projection")
# sha256 of inspect.getsource(Item.project) in moto 5.2.5: a find_nested_key over a fresh
# to_regular_json() per path, merged, serialized back into a new Item.
_PROJECT_SHA256 = "f411e6d8b56886f45f401edc20c2fd6d4e671136d9cf7ff21c434479b1e84a79"


def _item_class() -> Any:
    from moto.dynamodb.models.dynamo_type import Item

    return Item


def check_moto_internals() -> None:
    _PATCHER.expect_source(_item_class(), "project", _PROJECT_SHA256)
    from moto.dynamodb.models import dynamo_type

    _PATCHER.expect(hasattr(dynamo_type, "serializer"), "moto.dynamodb.models.dynamo_type.serializer moved")


def _top_level(paths: list[list[str]]) -> list[str] | None:
    """The attribute names of a projection whose every path is one plain top-level name, else None."""
    names = []
    for path in paths:
        if len(path) != 1 or "[" in path[0]:
            return None
        names.append(path[0])
    return names


def _project(original: Any) -> Any:
    item_class = _item_class()

    def project(self: Any, projection_expressions: list[list[str]]) -> Any:
        names = _top_level(projection_expressions)
        if names is None:
            return original(self, projection_expressions)
        from moto.dynamodb.models.dynamo_type import serializer

        plain = self.to_regular_json()
        result = {name: plain[name] for name in names if name in plain}
        return item_class(
            hash_key=self.hash_key, range_key=self.range_key, attrs=serializer.serialize(result)["M"]
        )

    return project


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        _PATCHER.wrap(_item_class(), "project", _project)
