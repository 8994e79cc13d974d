"""The central account's deployment, made once per process and copied into every later in-process
``LocalAws`` of the same template.

Why: each test gets a fresh ``LocalAws``, whose ``__enter__`` deployed the service's whole template (83
resources, about 300 calls through botocore into moto: 0.25 s of CPU on an idle machine). In the test
suite that was 23% of all the CPU it used (py-spy, 2026-12-07). The deployment's result is all in moto's
backends of the central account; a deep copy of them taken after the first deployment, copied again into
the backends that ``mock_aws`` has just reset, gives the next ``LocalAws`` the same account in 0.03 s.

What is copied: every moto backend (``BackendDict._instances``: those the deployment touched) of that
account, in one ``copy.deepcopy`` so that objects shared between backends stay shared. Locks and
conditions are not copyable (moto's SQS queues hold a ``Condition``): each copy gets new ones, as a fresh
backend would. The copied ``AccountSpecificBackend`` gets an id of its own (moto hashes it by that id, and
caches on it).

Two things moto keeps beside the backends are mended in each copy. ``deepcopy`` copies a
``WeakValueDictionary``'s keys but keeps its values (Lambda's index of functions by ARN): each such index
in the copy is pointed at the copied objects. S3's bucket namespace lives on ``s3_backends`` itself
(``bucket_accounts``, cleared by the reset): the account's buckets are put back in it.

What is not copied: anything of another account, and anything else outside moto's backends. The
deployment only makes boto3 calls into moto (``localaws/stack.py``), so the backends are all it leaves;
``tests/localaws/test_snapshots.py`` checks that a restored account answers every read the deployment's
resources answer as a deployed one does, and that the mended indexes work. The copy keeps the first
deployment's creation dates and generated ids (an API's id, a KMS key); nothing compares them with now.
"""

from __future__ import annotations

import copy
import threading
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

from moto.core.base_backend import AccountSpecificBackend, BackendDict

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()), threading.Condition)


@dataclass(frozen=True)
class AccountSnapshot:
    account_id: str
    backends: list[tuple[BackendDict[Any], AccountSpecificBackend[Any]]]
    locks: list[Any]  # the locks and conditions inside ``backends``, replaced by new ones in each copy
    weak_indexes: list[weakref.WeakValueDictionary[Any, Any]]  # inside ``backends``: remapped in a copy
    buckets: dict[str, tuple[str, str]]  # S3's namespace entries of the account: bucket -> (partition, id)


def _fresh(lock: Any) -> Any:
    if isinstance(lock, threading.Condition):
        return threading.Condition()
    return threading.RLock() if isinstance(lock, type(threading.RLock())) else threading.Lock()


def _reachable(root: Any, kinds: tuple[type, ...]) -> list[Any]:
    """Every object of ``kinds`` reachable from ``root`` through containers and instance attributes."""
    found: list[Any] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        value = stack.pop()
        if id(value) in seen or isinstance(value, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(value))
        if isinstance(value, kinds):
            found.append(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
            stack.extend(vars(value).values() if hasattr(value, "__dict__") else ())
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend(value)
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            stack.extend(vars(value).values())
    return found


def _copied(
    backends: list[tuple[BackendDict[Any], AccountSpecificBackend[Any]]],
    locks: list[Any],
    weak_indexes: list[weakref.WeakValueDictionary[Any, Any]],
) -> list[tuple[BackendDict[Any], AccountSpecificBackend[Any]]]:
    memo: dict[int, Any] = {id(lock): _fresh(lock) for lock in locks}
    memo.update({id(backend_dict): backend_dict for backend_dict, _ in backends})  # the dicts stay moto's
    copied: list[tuple[BackendDict[Any], AccountSpecificBackend[Any]]] = copy.deepcopy(backends, memo)
    for index in weak_indexes:  # its copy holds the originals: point it at their copies
        copied_index = memo.get(id(index))
        if copied_index is not None:
            for key, value in list(index.items()):
                copied_index[key] = memo.get(id(value), value)
    for _, account in copied:
        account._id = str(uuid.uuid4())
    return copied


def _refuse_objects(current: list[tuple[BackendDict[Any], AccountSpecificBackend[Any]]]) -> None:
    """moto tracks every S3 object and multipart upload in a class-level list, and each S3 reset closes
    them all, a snapshot's copies too: a copy restored later would read every object as empty. The
    service's deployment writes none; one that does needs those copies kept out of that list first."""
    for backend_dict, account in current:
        if backend_dict.service_name != "s3":
            continue
        for backend in account.values():
            for bucket in backend.buckets.values():
                if bucket.keys or bucket.multiparts:
                    raise NotImplementedError(
                        f"the deployment wrote objects in s3://{bucket.name}: localaws/snapshots.py cannot "
                        "copy S3 objects (moto closes every tracked one on reset)"
                    )


def capture(account_id: str) -> AccountSnapshot:
    """A copy of every moto backend of ``account_id`` as it is now."""
    current = [
        (backend_dict, dict.__getitem__(backend_dict, account_id))
        for backend_dict in list(BackendDict._instances)  # type: ignore[misc]
        if dict.__contains__(backend_dict, account_id)
    ]
    accounts = [account for _, account in current]
    _refuse_objects(current)
    backends = _copied(
        current, _reachable(accounts, _LOCK_TYPES), _reachable(accounts, (weakref.WeakValueDictionary,))
    )
    copies = [account for _, account in backends]
    buckets = {
        name: owner
        for backend_dict, _ in current
        for name, owner in getattr(backend_dict, "bucket_accounts", {}).items()
        if owner[1] == account_id
    }
    return AccountSnapshot(
        account_id,
        backends,
        _reachable(copies, _LOCK_TYPES),
        _reachable(copies, (weakref.WeakValueDictionary,)),
        buckets,
    )


def restore(snapshot: AccountSnapshot) -> None:
    """Put a copy of ``snapshot`` in place of ``snapshot.account_id``'s backends (just reset: empty)."""
    for backend_dict, account in _copied(snapshot.backends, snapshot.locks, snapshot.weak_indexes):
        backend_dict._create_account_specific_backend(snapshot.account_id)  # registered for the next reset
        dict.__setitem__(backend_dict, snapshot.account_id, account)
        bucket_accounts = getattr(backend_dict, "bucket_accounts", None)
        if bucket_accounts is not None:
            bucket_accounts.update(snapshot.buckets)
