"""botocore sessions for the local AWS, made without redoing per session what is the same for all.

``LocalAws`` makes a botocore session for each administrator and role session it hands out, and every
test makes a ``LocalAws``. Two parts of making one repeat work whose result never differs within a
process, and are shared here instead:

* the data loader (:func:`shared_loader`): botocore's service models and endpoint data, read and parsed
  from its data files once per process rather than once per ``LocalAws`` (about 0.1 s of each setup);
* the builtin event handlers (:func:`new_core_session`): botocore registers its ~150
  ``handlers.BUILTIN_HANDLERS`` on every new session, aliasing each event name as it goes (about 13 ms
  of CPU a session). They are registered once, on an emitter kept as a template, and each session gets
  a copy of it: the same handlers in the same order, as each client already gets a copy of its
  session's. The template is rebuilt if ``BUILTIN_HANDLERS`` changes (moto appends its own at import).

Neither holds state of any one local AWS: credentials, config and every handler a caller registers
belong to the session, and the loader only caches botocore's read-only data files.
"""

from __future__ import annotations

import copy
import threading

import botocore.handlers
import botocore.hooks
import botocore.loaders
import botocore.session

__all__ = ["new_core_session", "shared_loader"]

_lock = threading.Lock()
_loaders: list[botocore.loaders.Loader] = []
# (BUILTIN_HANDLERS as registered, the emitter holding them); the emitter is only ever copied.
_builtin: list[tuple[tuple[object, ...], botocore.hooks.HierarchicalEmitter]] = []


class _PathsOnce(list[str]):
    """A loader's search paths that take each path once: every ``boto3.Session`` appends boto3's data
    directory to its loader's paths, and a loader shared by every session of a process would otherwise
    grow by one path per session (and search them all on each lookup it does not cache)."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def shared_loader() -> botocore.loaders.Loader:
    """botocore's data loader for every ``LocalAws`` of this process (its clients already shared one
    within a ``LocalAws``, so no state passes from one ``LocalAws`` to the next)."""
    with _lock:
        if not _loaders:
            _loaders.append(botocore.loaders.Loader(extra_search_paths=_PathsOnce()))
        return _loaders[0]


def _builtin_handlers() -> botocore.hooks.HierarchicalEmitter:
    """A copy of an emitter with ``BUILTIN_HANDLERS`` registered as ``Session._register_builtin_handlers``
    registers them (through the event aliaser, first and last ones where the spec says so)."""
    specs = tuple(botocore.handlers.BUILTIN_HANDLERS)
    with _lock:
        if not _builtin or _builtin[0][0] != specs:
            emitter = botocore.hooks.HierarchicalEmitter()
            events = botocore.hooks.EventAliaser(emitter)
            for spec in specs:
                if len(spec) == 2:
                    events.register(spec[0], spec[1])
                elif spec[2] is botocore.handlers.REGISTER_FIRST:
                    events.register_first(spec[0], spec[1])
                elif spec[2] is botocore.handlers.REGISTER_LAST:
                    events.register_last(spec[0], spec[1])
            _builtin[:] = [(specs, emitter)]
        return copy.copy(_builtin[0][1])


def new_core_session() -> botocore.session.Session:
    """A new botocore session, as ``botocore.session.Session()`` makes one, on the shared loader."""
    core = botocore.session.Session(event_hooks=_builtin_handlers(), include_builtin_handlers=False)
    core.register_component("data_loader", shared_loader())
    return core
