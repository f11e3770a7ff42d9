"""
The decorators users put on tool functions (`requires_tool`,
`needs_approval`) and `tool_spec`, which reads back what one requires.

Deciding is the engine's job (`Gatekeeper` in `_enforce`); this module
decides only *when* and *where* the decision runs: where the body runs.

- A plain function or method is checked when called, then called.
- Calling a coroutine function returns a coroutine that is checked when it
  starts, in the task that awaits it; the body coroutine is only created
  once the check has passed.
- Calling a generator function returns a generator that is checked at its
  first `next()`, in the consumer's context; the body is then stepped under
  its own Context (`scoped_iter`), so its pushes never reach the consumer.
- An async generator likewise, checked at its first `__anext__()` and
  stepped with `scoped_aiter`.

Every decorated callable is a `wrapt.FunctionWrapper`, so signature,
`inspect` predicates, metadata and method binding (instance methods,
classmethods and staticmethods, in either decorator order) are the wrapped
callable's. One exception, Python's and wrapt's alike: from Python 3.13 a
`@classmethod` written *above* the decorator no longer binds what it wraps,
so the wrapper is called as a plain function with `cls` as its first
argument (the check still runs; `instance` is None). What a callable *is* (sync, coroutine, generator, async
generator) is read once, at decoration, from `inspect` on the callable, or
on the `__call__` of a callable object.

Speed: `FunctionWrapper.__call__` costs a no-op `wrapt.decorator` ~22x a
bare call (CPython 3.11), mostly probing `__self__` and reading the proxy's
attributes through its `__getattr__` hook. A direct call of a decorated
callable skips both: each decorated callable gets its own small subclass
whose `__call__` holds the keeper, the wrapped callable and the instance
wrapt would have found, all fixed at decoration; for a synchronous plain
function it is compiled from `_SYNC_CALL` with the function's own
parameter list, as attrs compiles `__init__` (a closure taking `*args,
**kwargs` for the rest). Bound calls (methods through an instance or
a class) go through wrapt's own `BoundFunctionWrapper`, unchanged.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import (
    AsyncGenerator,
    Callable,
    Coroutine,
    Generator,
    Iterator,
    Sequence,
)
from keyword import iskeyword
from typing import (
    Any,
    ParamSpec,
    Protocol,
    TypeVar,
    cast,
    overload,
)

import wrapt

from . import _enforce as _engine
from . import events
from ._ambient import CHECKING, checked_values
from ._enforce import (
    _ATOMS,
    Gatekeeper,
    ToolSpec,
    _arguments_key,
    approval_get,
    autonomy_get,
    epoch_get,
    execution_get,
    permissions_get,
)
from ._exceptions import PolicyConfigError
from ._scope import Scope
from ._tasks import scoped_aiter, scoped_iter
from .commands._engine import _CommandLayer
from .events import Action, Decision
from .policies._common import Level, enum_value, str_tuple
from .stacks import approval, autonomy, permissions

__all__ = ["check_tool", "needs_approval", "requires_tool", "tool_spec"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

#: `check(instance, args, kwargs)` and `acheck(...)` of a `Gatekeeper`.
_Check = Callable[[object, tuple[Any, ...], dict[str, Any]], None]
_ACheck = Callable[
    [object, tuple[Any, ...], dict[str, Any]], Coroutine[Any, Any, None]
]
#: wrapt's wrapper signature: `(wrapped, instance, args, kwargs)`.
_Runner = Callable[
    [Callable[..., Any], object, tuple[Any, ...], dict[str, Any]], Any
]


class ToolDecorator(Protocol):
    """
    What `requires_tool(...)` and `needs_approval(...)` return: a decorator
    that keeps the decorated callable's type.

    `Callable[P, R]` in, `Callable[P, R]` out; a `staticmethod` or
    `classmethod` object (the decorator written above `@staticmethod` or
    `@classmethod`) keeps its type too, so either order type-checks.
    """

    @overload
    def __call__(self, fn: staticmethod[P, R], /) -> staticmethod[P, R]: ...
    @overload
    def __call__(
        self, fn: classmethod[T, P, R], /
    ) -> classmethod[T, P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Callable[P, R]: ...


# --- Validation, at decoration time -----------------------------------


def _name(value: object, decorator: str) -> str:
    if not isinstance(value, str) or not value:
        hint = (
            f"; write the decorator with its arguments: @{decorator}(...)"
            if callable(value)
            else ""
        )
        msg = f"expected a non-empty tool name, got {value!r}{hint}"
        raise PolicyConfigError("name", msg)
    return value


def _capability(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        cap, dot, op = value.partition(".")
        if cap and dot and op and "." not in op:
            return value
    msg = f"expected 'capability.op' ('workspace.read_text'), got {value!r}"
    raise PolicyConfigError("capability", msg)


def _level(value: object) -> Level | None:
    return None if value is None else enum_value(Level, value, "side_effect")


def _flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        msg = f"expected True or False, got {value!r}"
        raise PolicyConfigError(field, msg)
    return value


def _reason(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    msg = f"expected a string or None, got {value!r}"
    raise PolicyConfigError("reason", msg)


def _check_paths(fn: Callable[..., Any], paths: tuple[str, ...]) -> None:
    """Every name in *paths* must be a parameter of *fn* (or **kwargs)."""
    if not paths:
        return
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError) as e:
        msg = f"cannot read the signature of {fn!r} to find its path arguments ({e})"
        raise PolicyConfigError("paths", msg) from None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    for index, path in enumerate(paths):
        if path not in params:
            msg = (
                f"{path!r} is not a parameter of {_label(fn)}; "
                f"its parameters are {', '.join(params) or '(none)'}"
            )
            raise PolicyConfigError(f"paths[{index}]", msg)


def _label(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))


# --- What a callable is ------------------------------------------------

_SYNC = "sync"
_COROUTINE = "coroutine"
_GENERATOR = "generator"
_ASYNC_GENERATOR = "async generator"


def _kind(fn: Callable[..., Any]) -> str:
    """
    Which of the four call protocols *fn* follows, as `inspect` reports it;
    for a callable object (not a function, method, partial or class), as
    its `__call__` does.
    """
    targets: list[object] = [fn]
    if not (
        inspect.isroutine(fn)
        or inspect.isclass(fn)
        or isinstance(fn, functools.partial)
    ):
        # The class's __call__, not whether fn is callable.
        targets.append(getattr(type(fn), "__call__", None))  # noqa: B004
    for target in targets:
        if inspect.iscoroutinefunction(target):
            return _COROUTINE
        if inspect.isasyncgenfunction(target):
            return _ASYNC_GENERATOR
        if inspect.isgeneratorfunction(target):
            return _GENERATOR
    return _SYNC


def _direct_instance(fn: object) -> object:
    """
    The `instance` wrapt gives the wrapper when the (unbound) wrapper is
    called directly: the `__self__` of an already bound callable, else None
    (mirrors `FunctionWrapper.__call__`, which probes on every call; here
    it is probed once).
    """
    if (
        inspect.isbuiltin(fn)
        or inspect.isclass(fn)
        or isinstance(fn, staticmethod)
    ):
        return None
    return getattr(fn, "__self__", None)


def _undecorated(fn: object, instance: object) -> Callable[..., Any]:
    """
    The callable the `Gatekeeper` reads the signature of. Whenever the
    keeper gets an `instance`, this callable's first parameter receives it
    (`self` or `cls`); `args` never hold it.
    """
    if isinstance(fn, staticmethod | classmethod):
        return cast("Callable[..., Any]", fn.__func__)
    if instance is not None:
        return cast("Callable[..., Any]", getattr(fn, "__func__", fn))
    return cast("Callable[..., Any]", fn)


# --- The checked call, one per kind ------------------------------------
#
# Each `_run_*` factory returns a function with wrapt's wrapper signature,
# `(wrapped, instance, args, kwargs)`: what wrapt's `BoundFunctionWrapper`
# calls for methods. `_direct_call` makes the `__call__` of the unbound
# wrapper from it.


async def _checked_coroutine(
    acheck: _ACheck,
    wrapped: Callable[..., Any],
    instance: object,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    # Runs when the coroutine starts, in the task that awaits it; the
    # body coroutine does not exist until the check has passed.
    await acheck(instance, args, kwargs)
    return await wrapped(*args, **kwargs)


def _checked_generator(
    check: _Check,
    wrapped: Callable[..., Any],
    instance: object,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Generator[Any, Any, Any]:
    # Runs at the first next(), in the consumer's context. `yield from`
    # forwards send(), throw() and close() and returns the body's value.
    check(instance, args, kwargs)
    return (yield from scoped_iter(Scope.current(), wrapped(*args, **kwargs)))


async def _checked_async_generator(
    acheck: _ACheck,
    wrapped: Callable[..., Any],
    instance: object,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> AsyncGenerator[Any, Any]:
    # Runs at the first __anext__(), in the consumer's task. Async
    # generators have no `yield from`: forward by hand what it would.
    await acheck(instance, args, kwargs)
    body = scoped_aiter(Scope.current(), wrapped(*args, **kwargs))
    step = body.__anext__()
    while True:
        try:
            item = await step
        except StopAsyncIteration:
            return
        try:
            sent = yield item
        except GeneratorExit:
            await body.aclose()
            raise
        except BaseException as exc:  # noqa: BLE001 - forwarded, as `yield from` would
            step = body.athrow(exc)
        else:
            step = body.__anext__() if sent is None else body.asend(sent)


def _run_sync(keeper: Gatekeeper) -> _Runner:
    check = keeper.check

    def run(
        wrapped: Callable[..., Any],
        instance: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        check(instance, args, kwargs)
        return wrapped(*args, **kwargs)

    return run


def _run_coroutine(keeper: Gatekeeper, name: str, qualname: str) -> _Runner:
    acheck = keeper.acheck

    def run(
        wrapped: Callable[..., Any],
        instance: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        coro = cast(
            "types.CoroutineType[Any, Any, Any]",
            _checked_coroutine(acheck, wrapped, instance, args, kwargs),
        )
        # Named after the tool function, so task reprs and "never
        # awaited" warnings name it rather than this module.
        coro.__name__, coro.__qualname__ = name, qualname
        return coro

    return run


def _run_generator(keeper: Gatekeeper, name: str, qualname: str) -> _Runner:
    check = keeper.check

    def run(
        wrapped: Callable[..., Any],
        instance: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        gen = cast(
            "types.GeneratorType[Any, Any, Any]",
            _checked_generator(check, wrapped, instance, args, kwargs),
        )
        gen.__name__, gen.__qualname__ = name, qualname
        return gen

    return run


def _run_async_generator(
    keeper: Gatekeeper, name: str, qualname: str
) -> _Runner:
    acheck = keeper.acheck

    def run(
        wrapped: Callable[..., Any],
        instance: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        agen = cast(
            "types.AsyncGeneratorType[Any, Any]",
            _checked_async_generator(acheck, wrapped, instance, args, kwargs),
        )
        agen.__name__, agen.__qualname__ = name, qualname
        return agen

    return run


def _direct_call(
    kind: str,
    keeper: Gatekeeper,
    run: _Runner,
    wrapped: Callable[..., Any],
    instance: object,
) -> Callable[..., Any]:
    """The `__call__` of one decorated callable's wrapper class."""
    if kind == _SYNC:
        return _sync_call(keeper, wrapped, instance)

    def call(_self: object, /, *args: Any, **kwargs: Any) -> Any:
        return run(wrapped, instance, args, kwargs)

    return call


#: The hot path, written out once and compiled per decorated function (as
#: attrs writes `__init__`): the fast paths of `Gatekeeper.check` inline
#: (the first is `_in_force`; a stack no frame was ever pushed on is None
#: everywhere, `_used`, so it is not read), one Python frame, no attribute
#: read on the proxy (each costs ~3x a bare call), nothing allocated on
#: the fast path; then the remembered arguments (`_fast_allowed_call`, its
#: `_in_force` inline too, and a one-argument call's key built in place as
#: `_arguments_key` builds it), then the gates.
#: `{params}` is the function's own parameter list where it can be copied
#: (no tuple and dict to pack: ~45 ns of ~190 here), else `*args, **kwargs`.
_SYNC_CALL = """\
def _cs_call(_cs_self, {params}):
    _cs_under = _cs_keeper.allowed_under
    _cs_frame = _cs_execution_get()
    if _cs_plain and _cs_under is not None and _cs_frame is not None and {under}:
        if _cs_events._subscribers:
            _cs_emit_allowed()
        return _cs_wrapped({forward})
    _cs_calls = _cs_keeper.allowed_calls
    if _cs_calls is not None and _cs_frame is not None:
        _cs_were = _cs_calls[0]
        if {were} and ({key}) in _cs_calls[1]:
            if _cs_events._subscribers:
                _cs_emit_allowed()
            return _cs_wrapped({forward})
    _cs_check_gates(_cs_instance, {args}, {kwargs})
    return _cs_wrapped({forward})
"""

#: `_in_force({frames})`, written out: whether the frames tuple held in
#: `{frames}` (as `Gatekeeper._in_force` makes it) is in force here.
_IN_FORCE = """(
        {frames}[0] is _cs_frame[0]
        and (not _cs_approval._used or {frames}[1] is _cs_approval_get())
        and (not _cs_permissions._used or {frames}[2] is _cs_permissions_get())
        and (not _cs_autonomy._used or {frames}[3] is _cs_autonomy_get())
        and (
            {frames}[1] is None
            or (
                {frames}[4] == _cs_engine._remembered_generation
                and {frames}[5] is _cs_epoch_get()
            )
        )
        and not (_cs_CHECKING and _cs_checked_values())
    )"""


def _sync_call(
    keeper: Gatekeeper, wrapped: Callable[..., Any], instance: object
) -> Callable[..., Any]:
    namespace: dict[str, Any] = {
        "_cs_keeper": keeper,
        "_cs_execution_get": execution_get,
        "_cs_plain": keeper.plain,
        "_cs_approval": approval,
        "_cs_approval_get": approval_get,
        "_cs_permissions": permissions,
        "_cs_permissions_get": permissions_get,
        "_cs_autonomy": autonomy,
        "_cs_autonomy_get": autonomy_get,
        "_cs_engine": _engine,
        "_cs_epoch_get": epoch_get,
        "_cs_CHECKING": CHECKING,
        "_cs_checked_values": checked_values,
        "_cs_events": events,
        "_cs_emit_allowed": keeper.emit_allowed,
        "_cs_wrapped": wrapped,
        "_cs_arguments_key": _arguments_key,
        "_cs_ATOMS": _ATOMS,
        "_cs_type": type,  # `type` may be one of the function's parameters
        "_cs_check_gates": keeper.check_gates,
        "_cs_instance": instance,
    }
    params, forward, args, kwargs, key = _parameters(
        wrapped, instance, namespace
    )
    source = _SYNC_CALL.format(
        params=params,
        forward=forward,
        args=args,
        kwargs=kwargs,
        key=key,
        under=_IN_FORCE.format(frames="_cs_under"),
        were=_IN_FORCE.format(frames="_cs_were"),
    )
    exec(_compiled(source), namespace)  # noqa: S102 - our own template, names checked
    call: types.FunctionType = namespace["_cs_call"]
    # Named after the tool function, in tracebacks too.
    name = getattr(wrapped, "__name__", None)
    if isinstance(name, str):
        call.__code__ = call.__code__.replace(
            co_name=name,
            co_qualname=name,
            co_filename=f"<capscope call of {name}>",
        )
        call.__name__ = call.__qualname__ = name
    return call


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> types.CodeType:
    """`_SYNC_CALL` filled in, compiled: tools of one signature share it."""
    return compile(source, "<capscope call>", "exec")


_GENERIC = (
    "*args, **kwargs",
    "*args, **kwargs",
    "args",
    "kwargs",
    "_cs_arguments_key(args, kwargs)",
)


def _parameters(
    fn: object, instance: object, namespace: dict[str, Any]
) -> tuple[str, str, str, str, str]:
    """
    How `_SYNC_CALL` takes and passes on the arguments of *fn*: its own
    parameter list (with its defaults, passed on explicitly: the same
    objects its body would get), when *fn* is a plain function whose
    parameters read as its code says; else `_GENERIC`. As `(params,
    forward, args, kwargs, key)`: the parameter list, the call of *fn*,
    the `args` tuple and `kwargs` dict the gates bind, and their
    `_arguments_key` (a one-argument call's, its common case, inline).
    """
    code = getattr(fn, "__code__", None)
    if (
        type(fn) is not types.FunctionType
        or instance is not None
        or not isinstance(code, types.CodeType)
        or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)
    ):
        return _GENERIC
    positional = code.co_argcount
    names = code.co_varnames[: positional + code.co_kwonlyargcount]
    if any(n.startswith("_cs_") or iskeyword(n) for n in names):
        return _GENERIC
    defaults = fn.__defaults__ or ()
    kwdefaults = fn.__kwdefaults__ or {}
    namespace["_cs_defaults"] = defaults
    namespace["_cs_kwdefaults"] = kwdefaults
    first_default = positional - len(defaults)
    params = []
    for index, name in enumerate(names[:positional]):
        if index >= first_default:
            name = f"{name}=_cs_defaults[{index - first_default}]"  # noqa: PLW2901
        params.append(name)
        if index + 1 == code.co_posonlyargcount:
            params.append("/")
    keywords = names[positional:]
    if keywords:
        params.append("*")
        params.extend(
            f"{n}=_cs_kwdefaults[{n!r}]" if n in kwdefaults else n
            for n in keywords
        )
    given = names[:positional]
    forward = [*given, *(f"{n}={n}" for n in keywords)]
    args = f"({', '.join(given)}{',' if len(given) == 1 else ''})"
    kwargs = "{" + ", ".join(f"{n!r}: {n}" for n in keywords) + "}"
    key = f"_cs_arguments_key({args}, {kwargs})"
    if len(given) == 1 and not keywords:
        (one,) = given
        key = (
            f"(({one},), _cs_kind) if (_cs_kind := _cs_type({one})) "
            "in _cs_ATOMS else None"
        )
    return ", ".join(params), ", ".join(forward), args, kwargs, key


# --- The wrapper -------------------------------------------------------


class _ToolWrapper(wrapt.FunctionWrapper[Any, Any]):
    """
    Base class of every decorated callable's wrapper. Each decorated
    callable gets a subclass of its own, holding its spec and its
    `__call__` (see the module docstring).
    """

    # No annotations in this body: any would make an `__annotations__`
    # here that shadows the wrapped function's. Each subclass holds its
    # spec as `_capscope_spec` (read by `tool_spec`).
    __slots__ = ()
    # wrapt looks this up on every binding (`obj.method`) of a subclass;
    # unset, each lookup raises and clears an AttributeError (~0.5 us).
    __bound_function_wrapper__ = wrapt.BoundFunctionWrapper


def _decorate(fn: object, spec: ToolSpec) -> Any:
    if not (callable(fn) or isinstance(fn, classmethod)):
        msg = f"@{_decorator_name(spec)} decorates a callable, got {fn!r}"
        raise TypeError(msg)
    instance = _direct_instance(fn)
    undecorated = _undecorated(fn, instance)
    _check_paths(undecorated, spec.paths)
    keeper = Gatekeeper(spec, undecorated)
    kind = _kind(undecorated)
    name = str(getattr(undecorated, "__name__", spec.name))
    qualname = str(getattr(undecorated, "__qualname__", name))
    if kind == _SYNC:
        run = _run_sync(keeper)
    elif kind == _COROUTINE:
        run = _run_coroutine(keeper, name, qualname)
    elif kind == _GENERATOR:
        run = _run_generator(keeper, name, qualname)
    else:
        run = _run_async_generator(keeper, name, qualname)
    wrapped = cast("Callable[..., Any]", fn)
    namespace = {
        "__slots__": (),
        "__call__": _direct_call(kind, keeper, run, wrapped, instance),
        "_capscope_spec": spec,
        "_capscope_keeper": keeper,
    }
    # Named after the tool, for debugging: type(read) is <class "tool 'fs.read'">.
    cls = type(f"tool {spec.name!r}", (_ToolWrapper,), namespace)
    return cls(wrapped, run)


def _decorator_name(spec: ToolSpec) -> str:
    return "needs_approval" if spec.needs_approval else "requires_tool"


# --- Public API --------------------------------------------------------


def requires_tool(
    name: str,
    *,
    capability: str | None = None,
    side_effect: Level | str | None = None,
    paths: Sequence[str] = (),
    bridged: bool = False,
) -> ToolDecorator:
    """
    Make a callable a tool named *name*: every call is checked against the
    live policies of the task that runs it, and refused with a
    `PolicyDenied` subclass before the body runs.

    With no execution policy in the context the call is refused
    (`NoPolicyInstalled`): install one at the application's root, e.g.
    `CapabilityPolicy.unrestricted()`.

    The check runs where the body runs. A plain function or method is
    checked when called. Methods, classmethods and staticmethods work with
    the decorator above or below `@classmethod`/`@staticmethod`, and so do
    callables made by other decorators (`functools.wraps` wrappers,
    `functools.partial` objects, objects with `__call__`). On Python 3.13
    and later, write it above `@classmethod`: below, Python no longer
    binds the class for it, so the check sees `cls` as the first argument.

    A coroutine function's coroutine is checked when it starts, in the task
    that awaits it: a coroutine made under one scope and awaited under
    another is decided by the awaiting one. A generator is checked at its
    first `next()` and an async generator at its first `__anext__()`; their
    bodies then run under a Context of their own, so a push inside them
    never reaches the consumer.

    The decorated callable keeps its signature, `__name__`, `__qualname__`,
    `__doc__`, `__wrapped__`, the `inspect` predicates
    (`iscoroutinefunction`, `isgeneratorfunction`, ...) and, for type
    checkers, its type.

    Args:
        name: The tool's name, as policies match it (`"fs.read"`).
        capability: The capability the tool uses, as `"capability.op"`
            (`"workspace.read_text"`), checked against the capability
            ceiling.
        side_effect: The tool's side-effect level (`"read_only"`, ...),
            checked against the side-effect ceiling.
        paths: Names of the parameters that hold paths, checked against the
            workspace and read-only roots.
        bridged: The tool bridges into a trusted host: allowed only inside
            `trusted()`, with an execution policy active.

    Returns:
        A decorator.

    Raises:
        PolicyConfigError: At decoration, for a bad argument (the error's
            `field` names it: `side_effect`, `paths[1]`, ...), or a path
            name that is not a parameter of the decorated callable (unless
            it takes `**kwargs`).

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> @cs.requires_tool("fs.read", side_effect="read_only", paths=["path"])
        ... def read(path: str) -> str:
        ...     return f"contents of {path}"
        >>> with cs.using(execution=CapabilityPolicy.unrestricted()):
        ...     read("/srv/notes.txt")
        'contents of /srv/notes.txt'
        >>> try:
        ...     read("/srv/notes.txt")
        ... except cs.NoPolicyInstalled:
        ...     print("refused: no execution policy here")
        refused: no execution policy here
    """
    fields: dict[str, Any] = {
        "name": _name(name, "requires_tool"),
        "capability": _capability(capability),
        "side_effect": _level(side_effect),
        "paths": str_tuple(paths, "paths"),
        "bridged": _flag(bridged, "bridged"),
    }

    def decorate(fn: Any) -> Any:
        return _decorate(fn, ToolSpec(**fields))

    return cast("ToolDecorator", decorate)


def needs_approval(
    name: str | None = None,
    *,
    reason: str | None = None,
    paths: Sequence[str] = (),
    side_effect: Level | str | None = None,
) -> ToolDecorator:
    """
    Make a callable a tool that asks for approval: every call is checked as
    by `requires_tool`, and unless an approval rule or a remembered answer
    says otherwise, the approval policy's handler is asked first.

    No handler, a handler error, a timeout, or an answer that is not a
    clear grant: the call is refused (`ApprovalDenied`). Where and when the
    check runs, and what the decorated callable keeps, is as for
    `requires_tool`.

    Args:
        name: The tool's name; the decorated callable's `__name__` if
            omitted.
        reason: Why the tool needs approval, shown to whoever approves.
        paths: Names of the parameters that hold paths, checked against the
            workspace and read-only roots and the sensitive paths.
        side_effect: The tool's side-effect level, checked against the
            side-effect ceiling.

    Returns:
        A decorator.

    Raises:
        PolicyConfigError: At decoration, for a bad argument (the error's
            `field` names it), a path name that is not a parameter of the
            decorated callable (unless it takes `**kwargs`), or no *name*
            for a callable without a `__name__`.

    Examples:
        >>> import capscope as cs
        >>> @cs.needs_approval(reason="deletes files", paths=["path"])
        ... def delete(path: str) -> None:
        ...     ...
        >>> spec = cs.tool_spec(delete)
        >>> spec.name, spec.needs_approval, spec.reason
        ('delete', True, 'deletes files')
    """
    fields: dict[str, Any] = {
        "reason": _reason(reason),
        "paths": str_tuple(paths, "paths"),
        "side_effect": _level(side_effect),
        "needs_approval": True,
    }
    tool_name = None if name is None else _name(name, "needs_approval")

    def decorate(fn: Any) -> Any:
        own = tool_name
        if own is None:
            try:
                own = _name(getattr(fn, "__name__", None), "needs_approval")
            except PolicyConfigError:
                msg = f"{fn!r} has no __name__: give the tool a name"
                raise PolicyConfigError("name", msg) from None
        return _decorate(fn, ToolSpec(name=own, **fields))

    return cast("ToolDecorator", decorate)


def tool_spec(fn: object) -> ToolSpec:
    """
    What a decorated callable requires: its name, capability, side effect,
    path arguments and whether it needs approval. For manifests, linting
    and tests.

    Found through bound methods, `classmethod` and `staticmethod` objects,
    `functools.partial` objects and any layer that sets `__wrapped__`
    (`functools.wraps`, other wrapt decorators). When several
    `requires_tool`/`needs_approval` decorators are stacked, the outermost
    one's spec.

    Raises:
        TypeError: *fn* is not decorated with `requires_tool` or
            `needs_approval`.

    Examples:
        >>> import capscope as cs
        >>> class Files:
        ...     @cs.requires_tool("fs.write", capability="workspace.write_text", paths=["path"])
        ...     def write(self, path: str, text: str) -> None:
        ...         ...
        >>> spec = cs.tool_spec(Files().write)
        >>> spec.name, spec.capability, spec.paths
        ('fs.write', 'workspace.write_text', ('path',))
    """
    spec: ToolSpec = _wrapper_class(fn).__dict__["_capscope_spec"]
    return spec


def check_tool(fn_or_name: object, /, *args: Any, **kwargs: Any) -> Decision:
    """
    What a call would be decided, as a dry run: the same gates as a real
    call, but nothing runs, no one is asked and no event is emitted. A
    callable stacked on `guards_command` has its command checked too
    (`check_command`; hooks are code and do not run): the first refusal
    of any layer is the answer, else the first ask.

    *fn_or_name* is a decorated callable (bound methods included), called
    with *args* and *kwargs* as it would be; or a tool name, or a
    `ToolSpec` (a tool's name, capability, side effect and path
    arguments, without its code), with its arguments as keywords.

    Raises:
        TypeError: *fn_or_name* has no capscope layer, or the arguments do
            not bind to its signature.

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy, CommandPolicy
        >>> @cs.requires_tool("fs.read")
        ... def read(path: str) -> str: ...
        >>> with cs.using(execution=CapabilityPolicy(tools=("net.*",))):
        ...     cs.check_tool(read, "/tmp/x").gate
        <Gate.TOOL_CEILING: 'tool_ceiling'>
        >>> @cs.requires_tool("shell")
        ... @cs.guards_command(arg="cmd", name="shell")
        ... def shell(cmd: str) -> str: ...
        >>> with cs.using(execution=CapabilityPolicy(tools=("shell",)), command=CommandPolicy(allow=["ls *"])):
        ...     cs.check_tool(shell, "rm -rf /").gate
        <Gate.COMMAND: 'command'>
        >>> cs.check_tool("fs.read", path="/tmp/x").gate
        <Gate.NO_POLICY: 'no_policy'>
        >>> spec = cs.ToolSpec("fs.write", side_effect="workspace_write", paths=("path",))
        >>> with cs.using(execution=CapabilityPolicy(workspace_roots=("/srv/ws",))):
        ...     cs.check_tool(spec, path="/etc/passwd").gate
        <Gate.WORKSPACE_BOUNDARY: 'workspace_boundary'>
    """
    if isinstance(fn_or_name, str):
        return _keeper_for(ToolSpec(fn_or_name)).dry_run(None, args, kwargs)
    if isinstance(fn_or_name, ToolSpec):
        return _keeper_for(fn_or_name).dry_run(None, args, kwargs)
    gates = _gates(fn_or_name)
    if not gates:
        msg = (
            f"{fn_or_name!r} is not decorated with @requires_tool, "
            "@needs_approval or @guards_command"
        )
        raise TypeError(msg)
    instance, args = _as_wrapt_calls(fn_or_name, args)
    return strongest([gate.dry_run(instance, args, kwargs) for gate in gates])


def strongest(decisions: Sequence[Decision]) -> Decision:
    """
    The decision of a call through several layers' gates (outermost
    first, as the call meets them): the first refusal, else the first that
    would not simply run, else the outermost allow.
    """
    for decision in decisions:
        if decision.action is Action.DENY:
            return decision
    for decision in decisions:
        if decision.action is not Action.ALLOW:
            return decision
    return decisions[0]


class _DryRun(Protocol):
    def dry_run(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Decision: ...


def command_guard(fn: object) -> Any:
    """The guard of *fn*'s `guards_command` layer, if it has one."""
    for layer in _layers(fn):
        if issubclass(type(layer), _CommandLayer):
            return cast("_CommandLayer", layer)._self_guard  # noqa: SLF001
    return None


def _gates(fn: object) -> list[_DryRun]:
    """
    The dry-run gates of every capscope layer of *fn*, outermost first:
    a tool layer's `Gatekeeper`, a `guards_command` layer's guard.
    """
    gates: list[_DryRun] = []
    for layer in _layers(fn):
        cls = type(layer)
        if issubclass(cls, _ToolWrapper):
            gates.append(cls.__dict__["_capscope_keeper"])
        elif issubclass(cls, _CommandLayer):
            gates.append(command_guard(layer))
    return gates


def _layers(fn: object) -> Iterator[object]:
    """*fn* and every layer it wraps, outermost first."""
    seen: set[int] = set()
    current: object | None = fn
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = _unwrap_once(current)


def _as_wrapt_calls(
    fn: object, args: tuple[Any, ...]
) -> tuple[object, tuple[Any, ...]]:
    """
    The `instance` and arguments wrapt would hand our wrapper for a call of
    *fn* with *args* (its `BoundFunctionWrapper.__call__` rules), so that a
    dry run binds exactly as the real call does.
    """
    if type(fn) is types.MethodType and isinstance(
        fn.__func__, wrapt.FunctionWrapper
    ):
        # Python 3.13's classmethod binds our wrapper as a plain method:
        # the call passes the class first, with no instance.
        return None, (fn.__self__, *args)
    if not isinstance(fn, wrapt.BoundFunctionWrapper):
        return None, args
    binding = fn._self_binding  # noqa: SLF001 - wrapt's own API
    if binding in ("function", "callable"):
        instance = fn._self_instance  # noqa: SLF001
        if instance is None and args and isinstance(args[0], fn._self_owner):  # noqa: SLF001
            return args[0], args[1:]  # called through the class, self first
        return instance, args
    # classmethod: the class; staticmethod: None (wrapt reads __self__).
    return getattr(fn.__wrapped__, "__self__", None), args


def _by_name(**arguments: Any) -> None:
    """The signature a tool checked by name is bound with."""


@functools.lru_cache(maxsize=256)
def _keeper_for(spec: ToolSpec) -> Gatekeeper:
    """
    One gatekeeper per spec checked by name: a ceiling caches its verdicts
    by gatekeeper, so a new one per call would grow that cache forever.
    """
    return Gatekeeper(spec, _by_name)


def _wrapper_class(fn: object) -> type[_ToolWrapper]:
    """The class of the requires_tool/needs_approval layer of *fn*."""
    for layer in _layers(fn):
        cls = type(layer)
        if issubclass(cls, _ToolWrapper):
            return cls
    msg = f"{fn!r} is not decorated with @requires_tool or @needs_approval"
    raise TypeError(msg)


def _unwrap_once(obj: object) -> object | None:
    """The next layer inward of a decorated callable, if any."""
    # wrapt's types first: they forward __class__, __func__ and the rest to
    # what they wrap, which would skip their own layer.
    if isinstance(obj, wrapt.BoundFunctionWrapper):
        parent: object = obj._self_parent  # noqa: SLF001 - wrapt's own API
        return parent
    if isinstance(obj, staticmethod | classmethod) or (
        type(obj) is types.MethodType
    ):
        return obj.__func__
    if isinstance(obj, functools.partial):
        return obj.func
    inner: object = getattr(obj, "__wrapped__", None)
    return inner
