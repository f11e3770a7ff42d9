"""
Ambient stacks and counters: per-task LIFO state on context variables.

Each stack owns one `ContextVar` whose value is the innermost frame of a
persistent linked list. A frame is an immutable tuple
`(value, parent, owner, depth, cell)`: pushing makes one new tuple whose
parent is the old top, popping sets the variable back to the parent. So
push, pop, `top()` and `depth` are O(1) at any depth, and a task spawned in
the meantime keeps the snapshot it started with (its context holds the old
chain, which nobody can change).

Frames are plain tuples rather than instances of a class because a tuple is
built about three times faster, and push+pop sits on every scoped call; the
tuple is the frame *token* handed to callers, who only ever pass it back.

Frame state (`frame_state()`) needs one refinement. It must be shared by
inline captures (the same agent, same frame) but fresh in workers, even for
COPY stacks whose frames the worker shares with its parent. Rather than
re-creating frames at every worker capture (a cost per stack), every context
carries an *epoch*: worker captures set a new one, inline captures keep it,
and a frame's state is looked up per epoch. A worker capture therefore costs
one `ContextVar.set`, whatever the number of COPY stacks.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import warnings
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Generic, NamedTuple, TypeAlias, TypeVar, final

from ._exceptions import ScopeError, ScopeWarning

__all__ = [
    "AmbientCounter",
    "AmbientStack",
    "Codec",
    "FrameToken",
    "Inherit",
]

T = TypeVar("T")

#: A frame: (value, parent frame or None, owning stack, depth, state cell).
#: Opaque to callers: `push` returns one, `pop` takes it back.
FrameToken: TypeAlias = tuple[Any, ...]

_VALUE, _PARENT, _OWNER, _DEPTH, _CELL = range(5)


class Inherit(enum.StrEnum):
    """
    What a *worker* (a new logical call stack: `spawn`, `worker`,
    `Scope.capture_inherited()`) gets of a stack.

    - `COPY`: the whole stack, as it is.
    - `TOP`: only the parent's innermost value, as one fresh frame
      (`to_worker` applied), so the worker starts from the parent's ceiling.
    - `NONE`: nothing; the worker starts empty.

    Inline captures (`Scope.current()`) copy every stack whatever its mode.

    Examples:
        >>> import capscope as cs
        >>> cs.Inherit.TOP == "top"
        True
    """

    COPY = "copy"
    TOP = "top"
    NONE = "none"


class Codec(NamedTuple, Generic[T]):
    """
    How a stack's values become data and back, for policy files and process
    boundaries.

    Examples:
        >>> import capscope as cs
        >>> c = cs.lowlevel.Codec(to_data=str, from_data=int)
        >>> c.from_data(c.to_data(3))
        3
    """

    to_data: Callable[[T], Any]
    from_data: Callable[[Any], T]


@final
class _Epoch:
    """Identity of one logical call stack; see the module docstring."""

    __slots__ = ("__weakref__",)


# Why a module global: every context needs an epoch, and contexts that never
# passed through a worker capture share the process's root epoch.
_ROOT_EPOCH = _Epoch()
_EPOCH: ContextVar[_Epoch] = ContextVar("capscope.epoch", default=_ROOT_EPOCH)

# Guards the lazy creation of a frame's state table and of the instance
# tables below; never taken on a push, pop or read.
_LOCK = threading.Lock()

# Every ambient variable alive, and the ones a worker capture must change.
# Why global: worker captures apply every AmbientStack's inherit mode,
# registered or not, so the instances themselves are the registry of rules.
# Readers iterate immutable snapshot tuples, rebuilt on change.
_ALL_VARS: dict[int, ContextVar[FrameToken | None]] = {}
_WORKER_VARS: dict[int, tuple[ContextVar[FrameToken | None], _Rule]] = {}
_all_snapshot: tuple[ContextVar[FrameToken | None], ...] = ()
# The worker rules, split by what a worker does to each (COPY: nothing):
# TOP stacks with a `to_worker` map their top into a fresh root frame, the
# other TOP stacks are cut to their top, NONE stacks and counters emptied.
_map_snapshot: tuple[
    tuple[ContextVar[FrameToken | None], Callable[[Any], Any]], ...
] = ()
_top_snapshot: tuple[ContextVar[FrameToken | None], ...] = ()
_none_snapshot: tuple[ContextVar[FrameToken | None], ...] = ()
# Keys of stacks that died. A finalizer runs wherever the garbage collector
# happens to run, possibly inside _track while it holds _LOCK, so it only
# appends here (atomic) and _track drains the list under the lock. A dead
# stack's key is queued before its id can be reused, and drained before
# any new stack is recorded, so a reused id never loses its entry.
_DEAD: list[int] = []

# What a worker capture does to a stack, besides a TOP stack's to_worker.
_CUT = "cut"  # a TOP stack without to_worker: keep only the top frame
_CLEAR = "clear"  # a NONE stack or a counter: empty
_Rule: TypeAlias = Callable[[Any], Any] | str


#: The stacks made with a `check` hook, in the order made, held weakly (a
#: stack nobody holds has no frame). A list changed in place, so the hot
#: path's test "any at all?" is one truth test of a name it imported.
CHECKING: list[weakref.ref[AmbientStack[Any]]] = []


def _unchecked(ref: weakref.ref[AmbientStack[Any]]) -> None:
    with contextlib.suppress(ValueError):
        CHECKING.remove(ref)


def checked_values() -> list[tuple[AmbientStack[Any], Any]]:
    """Each checking stack that has a frame here, with its top value."""
    found = []
    for ref in tuple(CHECKING):
        stack = ref()
        if stack is not None:
            frame = stack._get()  # noqa: SLF001 - the stack's own read
            if frame is not None:
                found.append((stack, frame[_VALUE]))
    return found


def _track(
    obj: object,
    var: ContextVar[FrameToken | None],
    *,
    worker_rule: _Rule | None,
) -> None:
    """
    Record *obj*'s variable; *worker_rule* is None for COPY (nothing to do
    in a worker), a TOP stack's `to_worker`, `_CUT` for a TOP stack without
    one, and `_CLEAR` for NONE stacks and counters.
    """
    key = id(obj)
    with _LOCK:
        _forget_dead()
        _ALL_VARS[key] = var
        if worker_rule is not None:
            _WORKER_VARS[key] = (var, worker_rule)
        _snapshot()
    weakref.finalize(obj, _DEAD.append, key)


def _forget_dead() -> None:
    """Drop the stacks that died from the tables (hold _LOCK)."""
    while _DEAD:
        dead = _DEAD.pop()
        _ALL_VARS.pop(dead, None)
        _WORKER_VARS.pop(dead, None)


def _snapshot() -> None:
    """Rebuild the snapshots readers iterate (hold _LOCK)."""
    global _all_snapshot, _map_snapshot, _top_snapshot, _none_snapshot  # noqa: PLW0603 - see above
    rules = _WORKER_VARS.values()
    _all_snapshot = tuple(_ALL_VARS.values())
    _map_snapshot = tuple((v, r) for v, r in rules if callable(r))
    _top_snapshot = tuple(v for v, r in rules if r is _CUT)
    _none_snapshot = tuple(v for v, r in rules if r is _CLEAR)


def _collect_dead() -> None:
    """Stop paying, in every capture, for stacks that died since the last."""
    with _LOCK:
        _forget_dead()
        _snapshot()


def all_vars() -> tuple[ContextVar[FrameToken | None], ...]:
    """The variables of every live stack and counter (for installs)."""
    return _all_snapshot


def apply_worker_rules() -> None:
    """
    Turn the *current* context into a worker's: a new epoch, TOP stacks cut
    to one fresh frame (`to_worker` applied), NONE stacks and counters
    emptied. COPY stacks are left alone. Run inside a copied context.
    """
    if _DEAD:
        _collect_dead()
    _EPOCH.set(_Epoch())
    # Literal indices (a frame is (value, parent, owner, depth, cell)):
    # these loops run once per stack at every spawn.
    for var, to_worker in _map_snapshot:
        frame = var.get()
        if frame is not None:
            var.set((to_worker(frame[0]), None, frame[2], 1, []))
    for var in _top_snapshot:
        frame = var.get()
        # A lone root frame is shared as it is: its state is fresh here
        # anyway (state is kept per epoch).
        if frame is not None and frame[3] != 1:
            var.set((frame[0], None, frame[2], 1, []))
    for var in _none_snapshot:
        if var.get() is not None:
            var.set(None)


def clear_all() -> None:
    """Empty every stack and counter in the *current* context (new epoch)."""
    _EPOCH.set(_Epoch())
    for var in _all_snapshot:
        var.set(None)


def describe_frame(frame: FrameToken) -> str:
    """A readable name for a frame, for error messages."""
    owner = frame[_OWNER]
    text = repr(frame[_VALUE])
    if len(text) > 60:  # noqa: PLR2004 - keeps messages on one line
        text = text[:57] + "..."
    return f"frame #{frame[_DEPTH]} of {owner.name!r} ({text})"


def _is_frame_of(token: object, owner: object) -> bool:
    return (
        type(token) is tuple
        and len(token) == 5  # noqa: PLR2004 - the frame layout
        and token[_OWNER] is owner
    )


class _Ambient:
    """What stacks and counters share: a name, a doc and a frame chain."""

    __slots__ = ("__weakref__", "_get", "_set", "_var", "doc", "name")

    name: str
    doc: str

    def __init__(self, name: str, doc: str) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            msg = f"a stack name must be an identifier, got {name!r}"
            raise TypeError(msg)
        self.name = name
        self.doc = doc
        # One variable per stack, named for debuggers and context dumps.
        self._var: ContextVar[FrameToken | None] = ContextVar(
            f"capscope.{name}", default=None
        )
        self._get = self._var.get
        self._set = self._var.set

    def _pop(self, token: FrameToken) -> None:
        """Pop *token* if on top; else ScopeError or ScopeWarning."""
        top = self._get()
        if top is token:
            self._set(token[_PARENT])
            return
        if not _is_frame_of(token, self):
            msg = (
                f"{token!r:.80} is not a frame token of {self.name!r}; pass "
                "back exactly what push() returned, to the stack that made it"
            )
            raise ScopeError(msg)
        frame = top
        while frame is not None:
            if frame is token:
                assert top is not None  # noqa: S101 - the loop ran once
                msg = (
                    f"LIFO violation on {self.name!r}: popping "
                    f"{describe_frame(token)} while {describe_frame(top)} "
                    "is still on top; pop the inner frame first"
                )
                raise ScopeError(msg)
            frame = frame[_PARENT]
        warnings.warn(
            ScopeWarning(
                f"{describe_frame(token)} is not on this context's "
                f"{self.name!r} stack (popped already, or pushed in another "
                "task or copied context); nothing was changed"
            ),
            stacklevel=3,
        )


@final
class AmbientStack(_Ambient, Generic[T]):
    """
    A per-task LIFO stack of policy values, one `ContextVar` underneath.

    Each asyncio task, trio task or thread started through capscope sees its
    own stack; pushes in one never show in another. What a *worker* gets is
    set by *inherit*; *narrow* is applied on every push (it may raise
    `CeilingExceeded`); *to_worker* maps the value a TOP worker frame
    starts from; *codec* lets the stack travel in policy files and across
    processes (`None`: it never travels).

    Args:
        name: unique registry name (an identifier).
        inherit: `Inherit.COPY`, `Inherit.TOP` or `Inherit.NONE`; required.
        narrow: `(outer_value | None, new_value) -> stored_value`.
        to_worker: `value -> value` for the fresh frame a TOP worker gets.
        codec: `(to_data, from_data)`.
        check: `(top_value, call) -> Verdict | None`: this stack's opinion
            of a tool call or command (`call` is a `ToolCall`; for a
            command its `command` holds the line), asked whenever the
            stack has a frame, before any person is asked. A deny refuses
            the call and an ask asks, with the gate `"<name>:<gate>"`;
            it can never make a decision weaker. Every stack made with a
            `check` takes part, registered or not, in the order made.
        doc: one line for `capscope stacks` and the docs.

    Examples:
        >>> import capscope as cs
        >>> tenant = cs.AmbientStack("doc_tenant", inherit=cs.Inherit.COPY)
        >>> with tenant.pushed("acme"):
        ...     tenant.top(), tenant.depth
        ('acme', 1)
        >>> tenant.top() is None
        True
    """

    __slots__ = (
        "_inherit",
        "_to_worker",
        "_used",
        "check",
        "codec",
        "narrow",
    )

    def __init__(  # noqa: PLR0913 - the contract's hooks, all keyword-only
        self,
        name: str,
        *,
        inherit: Inherit,
        narrow: Callable[[T | None, T], T] | None = None,
        to_worker: Callable[[T], T] | None = None,
        codec: tuple[Callable[[T], Any], Callable[[Any], T]] | None = None,
        check: Callable[[T, Any], Any] | None = None,
        doc: str = "",
    ) -> None:
        super().__init__(name, doc)
        #: Whether a frame was ever pushed on this stack, in any context:
        #: until then `top()` is None everywhere (every frame is made by
        #: `push`; workers, scopes and copies only carry frames made so),
        #: so a hot path may skip reading it. Never goes back to False.
        self._used = False
        try:
            self._inherit = Inherit(inherit)
        except ValueError:
            msg = (
                f"inherit must be Inherit.COPY, Inherit.TOP or Inherit.NONE, "
                f"got {inherit!r}"
            )
            raise TypeError(msg) from None
        hooks = (
            ("narrow", narrow),
            ("to_worker", to_worker),
            ("check", check),
        )
        for hook_name, hook in hooks:
            if hook is not None and not callable(hook):
                msg = f"{hook_name} must be callable or None, got {hook!r}"
                raise TypeError(msg)
        if to_worker is not None and self.inherit is not Inherit.TOP:
            msg = "to_worker only applies to stacks with inherit=Inherit.TOP"
            raise TypeError(msg)
        self.narrow = narrow
        self._to_worker = to_worker
        self.check = check
        self.codec: Codec[T] | None = None
        if codec is not None:
            to_data, from_data = codec
            if not (callable(to_data) and callable(from_data)):
                msg = "codec must be a pair of callables (to_data, from_data)"
                raise TypeError(msg)
            self.codec = Codec(to_data, from_data)
        if self._inherit is Inherit.TOP:
            _track(self, self._var, worker_rule=to_worker or _CUT)
        else:
            rule = _CLEAR if self._inherit is Inherit.NONE else None
            _track(self, self._var, worker_rule=rule)
        if check is not None:
            CHECKING.append(weakref.ref(self, _unchecked))

    @property
    def inherit(self) -> Inherit:
        """What a worker gets of this stack (fixed when it is made)."""
        return self._inherit

    @property
    def to_worker(self) -> Callable[[T], T] | None:
        """The map of a TOP worker's fresh frame (fixed when it is made)."""
        return self._to_worker

    def __repr__(self) -> str:
        return f"<AmbientStack {self.name!r} inherit={self.inherit.value}>"

    @classmethod
    def for_policy(
        cls,
        name: str,
        policy: type[T],
        *,
        inherit: Inherit,
        doc: str = "",
    ) -> AmbientStack[T]:
        """
        A stack for a policy kind that implements
        `capscope.policies.protocol.Policy`: pushes narrow through
        `outer.narrow(new)` (a value of another type is a `TypeError`),
        the `check` hook is the top value's `verdict`, and the codec is
        `to_dict`/`from_dict`.

        Examples:
            >>> import attrs, capscope as cs
            >>> from capscope.policies.protocol import Verdict
            >>> @attrs.frozen
            ... class Quota:
            ...     calls: int
            ...     def narrow(self, inner): return Quota(min(self.calls, inner.calls))
            ...     def verdict(self, call): return None if self.calls else Verdict.deny("no calls left", gate="exhausted")
            ...     def describe(self): return f"{self.calls} calls"
            ...     def to_dict(self): return {"calls": self.calls}
            ...     @classmethod
            ...     def from_dict(cls, data, *, path="quota"): return cls(data["calls"])
            >>> quota = cs.AmbientStack.for_policy("doc_quota", Quota, inherit=cs.Inherit.COPY)
            >>> with quota.pushed(Quota(5)), quota.pushed(Quota(9)):
            ...     quota.top()
            Quota(calls=5)
        """

        def narrow(outer: T | None, new: T) -> T:
            if not isinstance(new, policy):
                msg = f"the {name} stack holds {policy.__name__}, got {new!r}"
                raise TypeError(msg)
            return new if outer is None else outer.narrow(new)  # type: ignore[attr-defined]

        def check(value: T, call: Any) -> Any:
            return value.verdict(call)  # type: ignore[attr-defined]

        return cls(
            name,
            inherit=inherit,
            narrow=narrow,
            check=check,
            codec=(policy.to_dict, policy.from_dict),  # type: ignore[attr-defined]
            doc=doc,
        )

    def push(self, value: T) -> FrameToken:
        """
        Push *value* (through `narrow`, if set) and return the frame token.

        Raises:
            CeilingExceeded: from `narrow`, if *value* asks for more than
                the outer frame allows. Nothing is pushed.

        Examples:
            >>> import capscope as cs
            >>> s = cs.AmbientStack("doc_push", inherit=cs.Inherit.COPY)
            >>> token = s.push(1)
            >>> s.top()
            1
            >>> s.pop(token)
        """
        parent = self._get()
        if self.narrow is not None:
            value = self.narrow(
                None if parent is None else parent[_VALUE], value
            )
        frame: FrameToken = (
            value,
            parent,
            self,
            1 if parent is None else parent[_DEPTH] + 1,
            [],
        )
        self._used = True  # before the frame exists anywhere
        self._set(frame)
        return frame

    def pop(self, token: FrameToken) -> None:
        """
        Pop the frame *token* names, which must be on top.

        A token deeper in this context's stack is a LIFO violation
        (`ScopeError`, naming both frames; nothing changes). A token this
        context does not hold at all (popped already, pushed in another task
        or in a copied context) changes nothing and emits a `ScopeWarning`.

        Examples:
            >>> import capscope as cs
            >>> s = cs.AmbientStack("doc_pop", inherit=cs.Inherit.COPY)
            >>> t = s.push("x"); s.pop(t); s.depth
            0
        """
        self._pop(token)

    def pushed(self, value: T) -> _Pushed[T]:
        """
        Push *value* for the duration of a `with` block; yields the stored
        (narrowed) value.

        Examples:
            >>> import capscope as cs
            >>> s = cs.AmbientStack("doc_pushed", inherit=cs.Inherit.COPY)
            >>> with s.pushed("inner") as v:
            ...     v
            'inner'
        """
        return _Pushed(self, value)

    def top(self) -> T | None:
        """
        The innermost value, or `None` when the stack is empty. O(1).

        Examples:
            >>> import capscope as cs
            >>> cs.AmbientStack("doc_top", inherit=cs.Inherit.COPY).top() is None
            True
        """
        frame = self._get()
        return None if frame is None else frame[_VALUE]

    def frames(self) -> tuple[T, ...]:
        """
        Every value on the stack, outermost first.

        Examples:
            >>> import capscope as cs
            >>> s = cs.AmbientStack("doc_frames", inherit=cs.Inherit.COPY)
            >>> with s.pushed("a"), s.pushed("b"):
            ...     s.frames()
            ('a', 'b')
        """
        return frames_of(self._get())

    @property
    def depth(self) -> int:
        """
        How many frames are on the stack. O(1).

        Examples:
            >>> import capscope as cs
            >>> cs.AmbientStack("doc_depth", inherit=cs.Inherit.COPY).depth
            0
        """
        frame = self._get()
        return 0 if frame is None else frame[_DEPTH]

    def frame_state(self) -> dict[str, Any]:
        """
        A dict owned by the top frame, for state that lives and dies with it
        (remembered approvals, say).

        Inline captures of the same agent (`Scope.current()`, `to_thread`,
        `ScopedExecutor`) share it; a worker gets a fresh one even when it
        copies the frame; popping the frame drops it.

        Raises:
            ScopeError: the stack is empty, so there is no frame to own it.

        Examples:
            >>> import capscope as cs
            >>> s = cs.AmbientStack("doc_state", inherit=cs.Inherit.COPY)
            >>> with s.pushed("policy"):
            ...     s.frame_state()["seen"] = 1
            ...     s.frame_state()
            {'seen': 1}
        """
        frame = self._get()
        if frame is None:
            msg = f"{self.name!r} is empty: there is no frame to hold state"
            raise ScopeError(msg)
        return state_of(frame)


def state_of(frame: FrameToken) -> dict[str, Any]:
    """The state dict of *frame* for the current epoch."""
    cell: list[weakref.WeakKeyDictionary[_Epoch, dict[str, Any]]]
    cell = frame[_CELL]
    epoch = _EPOCH.get()
    if cell:
        state = cell[0].get(epoch)
        if state is not None:
            return state
    with _LOCK:
        if not cell:
            cell.append(weakref.WeakKeyDictionary())
        return cell[0].setdefault(epoch, {})


def frames_of(frame: FrameToken | None) -> tuple[Any, ...]:
    """The values of the chain ending at *frame*, outermost first."""
    values = []
    while frame is not None:
        values.append(frame[_VALUE])
        frame = frame[_PARENT]
    values.reverse()
    return tuple(values)


@final
class _Pushed(Generic[T]):
    """The context manager `AmbientStack.pushed()` returns."""

    __slots__ = ("_stack", "_token", "_value")

    def __init__(self, stack: AmbientStack[T], value: T) -> None:
        self._stack = stack
        self._value = value
        self._token: FrameToken | None = None

    def __enter__(self) -> T:
        if self._token is not None:
            msg = "this pushed() block is already entered; make a new one"
            raise ScopeError(msg)
        self._token = self._stack.push(self._value)
        return self._token[_VALUE]  # type: ignore[no-any-return]

    def __exit__(self, *exc_info: object) -> None:
        # Cleared only once popped: after a LIFO ScopeError the block can
        # still be exited properly once the inner frame is gone.
        if self._token is not None:
            self._stack.pop(self._token)
            self._token = None


@final
class AmbientCounter(_Ambient):
    """
    A per-task depth counter (how deep inside trusted handlers, say).

    Raised for the duration of a `with` block; reads `0` in workers, which
    start a new logical call stack. It unwinds like a stack: out-of-order
    exits raise `ScopeError`, an exit in a context that never entered warns.

    Examples:
        >>> import capscope as cs
        >>> depth = cs.AmbientCounter("doc_depth_counter")
        >>> with depth.raised():
        ...     with depth.raised():
        ...         depth.value
        2
        >>> depth.value
        0
    """

    __slots__ = ()

    def __init__(self, name: str, *, doc: str = "") -> None:
        super().__init__(name, doc)
        _track(self, self._var, worker_rule=_CLEAR)

    def __repr__(self) -> str:
        return f"<AmbientCounter {self.name!r}>"

    @property
    def value(self) -> int:
        """The current count; 0 outside any `raised()` block. O(1)."""
        frame = self._get()
        return 0 if frame is None else frame[_DEPTH]

    def raised(self) -> _Raised:
        """
        Add one to the counter for the duration of a `with` block.

        Examples:
            >>> import capscope as cs
            >>> c = cs.AmbientCounter("doc_raised")
            >>> with c.raised():
            ...     c.value
            1
        """
        return _Raised(self)

    def _raise(self) -> FrameToken:
        # The same frame as AmbientStack.push, with no value; written out
        # rather than shared because push is on every scoped call's path.
        parent = self._get()
        frame: FrameToken = (
            None,
            parent,
            self,
            1 if parent is None else parent[_DEPTH] + 1,
            [],
        )
        self._set(frame)
        return frame


@final
class _Raised:
    """The context manager `AmbientCounter.raised()` returns."""

    __slots__ = ("_counter", "_token")

    def __init__(self, counter: AmbientCounter) -> None:
        self._counter = counter
        self._token: FrameToken | None = None

    def __enter__(self) -> int:
        if self._token is not None:
            msg = "this raised() block is already entered; make a new one"
            raise ScopeError(msg)
        self._token = self._counter._raise()  # noqa: SLF001 - same module
        return self._token[_DEPTH]  # type: ignore[no-any-return]

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            self._counter._pop(self._token)  # noqa: SLF001 - same module
            self._token = None
