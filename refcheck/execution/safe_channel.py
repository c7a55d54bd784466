"""Reading what the implementation's workers send back without running anything of theirs.

A worker process runs the user's code, and that code can replace whatever refcheck's worker sends:
results come back through pebble's pipe as a pickle, and unpickling an arbitrary pickle can call
any function in the trusted process (which could then judge every case green). So the pool's
reading end in this process is wrapped (:func:`restrict_results`): a message may only build the
types the worker protocol uses (plain containers, strings and numbers, numeric numpy arrays and
scalars, pebble's messages, refcheck's own record types such as a plan's cases, builtin
exceptions), and calls nothing of the sender's choosing. Anything else is refused
as an unpicklable message: pebble gives up on that pool and the runner reports the cases it had in
flight as errors naming what was refused (:func:`refused`).
"""
from __future__ import annotations

import builtins
import dataclasses
import enum
import io
import pickle
import sys
from typing import Any, Self

__all__ = ["RefusedMessage", "refused", "restrict_results", "safe_loads", "shut_to_workers"]

_BUILTIN_TYPES = frozenset({"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int",
                            "float", "complex", "bool", "slice", "range"})
_ALLOWED = {
    # numpy arrays, dtypes and scalars (numpy 2 names, and numpy 1's for a worker on an older numpy).
    "numpy": {"ndarray", "dtype"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.numeric": {"_frombuffer"},
    "numpy.core.numeric": {"_frombuffer"},
    # pebble's messages from a worker.
    "pebble.pool.process": {"TaskResult", "TaskProblem", "Acknowledgement"},
    "pebble.common.types": {"Result", "ResultStatus", "RemoteException", "RemoteException.rebuild_exception",
                            "RemoteTraceback"},
    "refcheck.adapters.contract": {"ForeignResult"},
}


class _Dropped:
    """Stands for what a message may carry but this side does not need (a remote traceback's frames)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _exception_class(value: Any) -> type[BaseException]:
    if not (isinstance(value, type) and issubclass(value, BaseException)):
        raise RefusedMessage(f"a worker's message would rebuild an exception from {type(value).__name__}")
    return value


def _linked(error: BaseException, cause: Any, context: Any, suppress_context: Any) -> BaseException:
    error.__cause__ = cause if isinstance(cause, BaseException) else None
    error.__context__ = context if isinstance(context, BaseException) else None
    error.__suppress_context__ = bool(suppress_context)
    return error


def _exception(func: Any, args: Any, cause: Any = None, tb: Any = None, context: Any = None,
               suppress_context: Any = False, notes: Any = None) -> BaseException:
    """tblib's rebuilding of an exception (Dask workers install it), without the traceback."""
    return _linked(_exception_class(func)(*args), cause, context, suppress_context)


def _exception_with_attrs(func: Any, attrs: Any, cause: Any, tb: Any, context: Any, suppress_context: Any,
                          notes: Any, args: Any = ()) -> BaseException:
    error = _exception_class(func).__new__(func, *args)
    for key, value in dict(attrs).items():
        if isinstance(key, str) and not key.startswith("__"):
            setattr(error, key, value)
    return _linked(error, cause, context, suppress_context)


# What tblib (installed by Dask's workers) pickles exceptions with: rebuilt here by these.
_SUBSTITUTES = {
    ("tblib.pickling_support", "unpickle_exception"): _exception,
    ("tblib.pickling_support", "unpickle_exception_with_attrs"): _exception_with_attrs,
    ("tblib.pickling_support", "unpickle_traceback"): lambda tb_frame, tb_lineno, tb_next: None,
    ("tblib", "Code"): _Dropped,
    ("tblib", "Frame"): _Dropped,
    ("tblib", "Traceback"): _Dropped,
}


# Containers a message may build by a call (older protocols): from data the message holds, never
# from a count (``bytearray(10**10)`` is 30 bytes of pickle) or a lazy range.
_MATERIAL = (bytes, bytearray, str, list, tuple, set, frozenset, dict)
_SIZED = frozenset({"bytes", "bytearray", "list", "tuple", "set", "frozenset", "dict"})


def _from_data(name: str) -> Any:
    kind = getattr(builtins, name)

    def build(*args: Any) -> Any:
        if not all(isinstance(arg, _MATERIAL) for arg in args):
            raise RefusedMessage(f"a worker's message would build a {name} from a {type(args[0]).__name__}")
        return kind(*args)

    return build


def _empty_array(subtype: Any, shape: Any, dtype: Any) -> Any:
    """numpy's ``_reconstruct`` as numpy's own pickles call it: an empty array that the message's
    state then fills (a larger one would be memory of the sender's choosing)."""
    import numpy as np

    if subtype is not np.ndarray or tuple(shape) != (0,):
        raise RefusedMessage(f"a worker's message would build an array of shape {shape!r} before its data")
    return np.ndarray.__new__(np.ndarray, (0,), dtype)


class RefusedMessage(pickle.PicklingError):
    """A worker's message would build something outside the protocol. A PicklingError so that
    pebble treats it as an unpicklable message (it gives up on the pool, failing its tasks)."""


class _ProtocolUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _SIZED:
            return _from_data(name)
        if module in ("numpy._core.multiarray", "numpy.core.multiarray") and name == "_reconstruct":
            return _empty_array
        if module == "builtins" and (name in _BUILTIN_TYPES or _is_builtin_exception(name)):
            return super().find_class(module, name)
        if name in _ALLOWED.get(module, ()):
            return super().find_class(module, name)
        if (module, name) in _SUBSTITUTES:
            return _SUBSTITUTES[(module, name)]
        if module.startswith("refcheck.") and "." not in name and module in sys.modules:
            found = getattr(sys.modules[module], name, None)
            if _is_record_type(found):  # a plan, a case, a summary: built from its fields alone
                return found
        raise RefusedMessage(f"a worker's message would build {module}.{name}")


def _is_record_type(value: Any) -> bool:
    """A refcheck dataclass, named tuple or enumeration that unpickles without code of its own."""
    if not isinstance(value, type) or "__setstate__" in vars(value) or "__reduce__" in vars(value):
        return False
    named_tuple = issubclass(value, tuple) and hasattr(value, "_fields")
    return dataclasses.is_dataclass(value) or named_tuple or issubclass(value, enum.Enum)


def _is_builtin_exception(name: str) -> bool:
    value = getattr(builtins, name, None)
    return isinstance(value, type) and issubclass(value, BaseException)


def safe_loads(data: bytes) -> Any:
    """pickle.loads, building nothing outside the worker protocol (else :class:`RefusedMessage`).

    Whatever else reading the message raises (``int('abc')``, a MemoryError, a recursion too deep)
    is a refusal too: an exception of another kind would end pebble's thread that reads results,
    and the run would wait for them for ever."""
    try:
        return _ProtocolUnpickler(io.BytesIO(data)).load()
    except RefusedMessage:
        raise
    except Exception as error:  # noqa: BLE001 - a message shaped by the code under test
        raise RefusedMessage(f"a worker's message could not be read: {type(error).__name__}: {error}") from None


class _RestrictedReader:
    """A multiprocessing Connection's reading end whose ``recv`` builds only protocol types."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def recv(self) -> Any:
        return safe_loads(self._connection.recv_bytes())

    def __getattr__(self, name: str) -> Any:  # fileno, poll, close, closed...
        return getattr(self._connection, name)


def restrict_results(pool: Any) -> Any:
    """Make ``pool`` (a pebble ProcessPool, not yet started) read its workers' messages with
    :func:`safe_loads`. Raises RuntimeError when pebble is not shaped as expected: running the
    user's code without the restriction is not an option."""
    try:
        manager = pool._pool_manager.worker_manager
        create_channels = manager.create_channels
    except AttributeError as error:
        raise RuntimeError(f"this pebble version is not supported (its pool has no {error.name}); "
                           "install pebble 5") from error

    def create_restricted_channels() -> None:
        create_channels()
        channel = manager.pool_channel
        channel.reader = _RestrictedReader(channel.reader)

    manager.create_channels = create_restricted_channels
    return pool


def refused(error: BaseException | None) -> str:
    """What a worker's refused message would have built ('' when ``error`` is no such refusal)."""
    while error is not None:
        if isinstance(error, RefusedMessage):
            return str(error)
        error = error.__cause__
    return ""


def shut_to_workers() -> bool:
    """Make this process non-dumpable (Linux): processes of the same user, the workers running the
    code under test among them, can then neither read its memory nor open its files through /proc
    (root still can). False where that is not possible."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) == 0  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        return False
