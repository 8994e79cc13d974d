"""Find the account of a request's access key by a look-up, not by walking every account.

Why this exists: moto 5.2.5 finds the account of every request (``BaseResponse.get_current_account``
calls ``moto.iam.models.get_account_id_from``) by walking every account's IAM backend in each of its six
partitions until one holds the key. So every call to the local AWS costs time in proportion to the
number of accounts it has seen: with a fleet of 1,000 target accounts, a key of a target account
(every assumed-role session's) was found after thousands of look-ups. AWS resolves a key in constant
time. The walk made local calls slower as the fleet grew and charged a side that makes more calls
than another more than AWS would (the fan-out benchmark compares two such sides).

:func:`install` keeps an index, access key id → (account, partition), filled where moto stores a key
(``IAMBackend.create_access_key`` and ``create_temp_access_key``, moto's only writes to
``IAMBackend.access_keys``: :func:`check_moto_internals` checks both bodies and that the module writes
that dict nowhere else) and emptied where it deletes one (``delete_access_key_by_name``); keys stored
before :func:`install` are indexed then. It replaces ``get_account_id_from``: a key in the index whose
backend still holds it (a reset of moto's backends drops every key) answers its account; any other key
is in no backend, and gets the default account, moto's own answer for it. Those are many: the Step
Functions interpreter's Lambda client signs with credentials no account holds, so every Lambda task
of every execution took moto's whole walk to reach that answer.
"""

from __future__ import annotations

import importlib
import re
import threading
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID

from localaws.patching import Patcher, source, source_digest

__all__ = ["check_moto_internals", "install", "lookups"]

_PATCHER = Patcher("localaws.access_keys")
_IAM = "moto.iam.models"
# sha256 of inspect.getsource(...) in moto 5.2.5: the walk this replaces (its answer for a key no
# account holds is the default account), and the only two places that store a key in
# ``IAMBackend.access_keys``.
_SOURCE_SHA256 = {
    "get_account_id_from": "83d4b96f7c5b4fc5ba728e9cd9e87bb5fbfdbe69be952769892fe63f75d77f5e",
    "IAMBackend.create_access_key": "07c995a5b885292d423d02af60392ac69833ec79f0f8614beab36ce1866e0e56",
    "IAMBackend.create_temp_access_key": "c620cf15a5eb915de05d7078808dc00c0aa5687032955465da12c3a5e3d6e113",
    "IAMBackend.delete_access_key_by_name": "1893fbfb20d1d87c8fc6c8cbebdabb0cf1ae6826c0bb9303eb2e2cb5b5e126a4",
}
_index: dict[str, tuple[str, str]] = {}  # access key id -> (account id, partition)
_lock = threading.Lock()
_counts = {"indexed": 0, "unknown": 0}


def _module() -> Any:
    return importlib.import_module(_IAM)


def check_moto_internals() -> None:
    iam = _module()
    for name, digest in _SOURCE_SHA256.items():
        owner: Any = iam
        for part in name.split("."):
            owner = getattr(owner, part, None)
        original = getattr(owner, "__wrapped__", owner)
        _PATCHER.expect(original is not None, f"{_IAM}.{name} is missing")
        _PATCHER.expect(source_digest(original) == digest, f"{_IAM}.{name} changed upstream")
    _PATCHER.expect(hasattr(iam, "iam_backends"), f"{_IAM}.iam_backends is missing")
    writes = re.findall(r"access_keys\[[^\]]+\]\s*=", source(iam))
    _PATCHER.expect(len(writes) == 2, f"{_IAM} stores access keys in {len(writes)} places, not 2")


def lookups() -> dict[str, int]:
    """How many look-ups found their key in the index, and how many keys no account holds."""
    return dict(_counts)


def _storing(original: Any) -> Any:
    def store(self: Any, *args: Any, **kwargs: Any) -> Any:
        key = original(self, *args, **kwargs)
        with _lock:
            _index[str(key.access_key_id)] = (str(self.account_id), str(self.partition))
        return key

    return store


def _deleting(original: Any) -> Any:
    def delete(self: Any, name: str) -> None:
        original(self, name)
        with _lock:
            _index.pop(name, None)

    return delete


def _looking_up() -> Any:
    def get_account_id_from(access_key: str) -> str:
        found = _index.get(access_key)
        if found is not None:
            account_id, partition = found
            # moto's backend dicts create the backend they are asked for: look only at what exists
            account = dict.get(_module().iam_backends, account_id)
            backend = dict.get(account, partition) if account is not None else None
            if backend is not None and access_key in backend.access_keys:
                _counts["indexed"] += 1
                return account_id
            with _lock:  # gone since (deleted, or moto's backends were reset): forget it
                _index.pop(access_key, None)
        _counts["unknown"] += 1
        return DEFAULT_ACCOUNT_ID  # what moto's walk answers for a key that no account holds

    return get_account_id_from


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        iam = _module()
        _PATCHER.wrap(iam.IAMBackend, "create_access_key", _storing)
        _PATCHER.wrap(iam.IAMBackend, "create_temp_access_key", _storing)
        _PATCHER.wrap(iam.IAMBackend, "delete_access_key_by_name", _deleting)
        current = iam.get_account_id_from
        if not _PATCHER.is_ours(current):
            replacement = _looking_up()
            replacement.__wrapped__ = current
            setattr(replacement, _PATCHER.mark, True)
            iam.get_account_id_from = replacement
        # keys stored before the patches: index them once
        with _lock:
            for account_id, account in list(iam.iam_backends.items()):
                for partition, backend in list(account.items()):
                    for key_id in list(backend.access_keys):
                        _index.setdefault(str(key_id), (str(account_id), str(partition)))
