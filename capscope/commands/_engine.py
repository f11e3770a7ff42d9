"""
The command policy engine: `check_command` and `@guards_command`.

A command is parsed, each simple command normalised (wrappers unwrapped,
flags split, programs by basename) and labelled; then, in this order
(a test pins it):

0. the limits: a line too large or too deeply nested to analyse is denied
   (`analysis_limit`), never asked about;
1. the recursion guard: inside a command-policy hook (`command_hook_depth`
   > 0) a command is denied unless every command frame sets
   `allow_recursive`;
2. the catastrophic floor: `catastrophic` denies, under any policy or none;
3. per command frame: deny-tier labels -> `deny_patterns` -> ask-tier
   labels -> allow rules (every simple command must match one) -> the
   frame's `default`;
4. every frame must allow: any deny wins, then any ask.

With no command policy: the floor and the default deny tier deny, the
default ask tier asks, and everything else is allowed. Labels beat allow
rules: `cat ~/.ssh/id_rsa` is denied although `cat *` matches.

**Soundness.** An allow rule can only let through a command every word of
which the analysis proved exact: `capscope.commands._parse` names every
expansion bash could still evaluate, and a reason is the label
`execution_semantics_unresolved`, which no policy can let an allow rule
pass (`ALWAYS_ASK_LABELS`). A glob word matches only a rule's trailing
`*` (the names it becomes are judged by the labeller, not matched).
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import os
import re
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar, cast

import attrs
import wrapt

from .. import events
from .._ambient import CHECKING
from .._asking import NOT_ANSWERED, call_async, call_sync
from .._current import current_overlay
from .._exceptions import CommandBlocked, PolicyConfigError
from ..events import Action, CommandDecision, Gate
from ..policies import CommandPolicy
from ..policies._common import ToolCall, glob_match, is_glob
from ..policies.command import (
    ALWAYS_ASK_LABELS,
    DEFAULT_APPROVAL_LABELS,
    DEFAULT_DENY_LABELS,
    CommandDefault,
    CommandLabel,
)
from ..policies.protocol import Verdict
from ..stacks import approval, command, command_hook_depth
from ._model import GlobWord, ParsedCommand, SimpleCommand

__all__ = ["check_command", "guards_command"]

P = ParamSpec("P")
R = TypeVar("R")
_T = TypeVar("_T")

_RANK = {
    CommandDefault.ALLOW: 0,
    CommandDefault.ASK: 1,
    CommandDefault.DENY: 2,
}
_ACTION = {
    CommandDefault.ALLOW: Action.ALLOW,
    CommandDefault.ASK: Action.ASK,
    CommandDefault.DENY: Action.DENY,
}


@attrs.frozen
class _Analysis:
    """What a command is, before any policy judges it."""

    segments: tuple[tuple[str, ...], ...]
    labels: dict[CommandLabel, list[str]]
    refused: str | None = None


@attrs.frozen
class _Verdict:
    action: CommandDefault
    reason: str
    rule: Any = None


def _line(cmd: str | Sequence[str]) -> str:
    """The command as typed (an argv as the shell line that runs it)."""
    if isinstance(cmd, str):
        return cmd
    import shlex

    return shlex.join(cmd)


def _check_type(cmd: object) -> None:
    """
    A command is a `str` (a shell line) or a list or tuple of `str`. Not
    a subclass of list or tuple: its iteration, which the analysis and
    `subprocess` each run, could show them different words.
    """
    if isinstance(cmd, str):
        return
    if isinstance(cmd, list | tuple) and type(cmd) not in (list, tuple):
        msg = (
            "an argv command is a list or tuple, not a "
            f"{type(cmd).__name__}: pass list(...) of it"
        )
        raise TypeError(msg)
    if isinstance(cmd, list | tuple) and all(isinstance(w, str) for w in cmd):
        return
    if isinstance(cmd, list | tuple):
        bad = next(w for w in cmd if not isinstance(w, str))
        msg = (
            "an argv command is a list or tuple of str; it holds a "
            f"{type(bad).__name__}: {bad!r}"
        )
    else:
        msg = (
            "a command is a str (a shell line) or a list or tuple of str "
            f"(an argv), not a {type(cmd).__name__}"
        )
    raise TypeError(msg)


def _checked(cmd: object) -> str | Sequence[str]:
    """
    *cmd* as a command (`_check_type`), as what runs: a `str` subclass's
    own characters (what `subprocess` and the kernel are handed), never
    what its methods, which the analysis would call, say they are.
    """
    _check_type(cmd)
    if type(cmd) is str:
        return cmd
    if isinstance(cmd, str):
        return str.__str__(cmd)
    words = cast("Sequence[str]", cmd)
    if all(type(w) is str for w in words):
        return words
    return tuple(str.__str__(w) for w in words)


def _parse(cmd: str | Sequence[str]) -> ParsedCommand:
    from ._parse import MAX_CHARS, MAX_WORDS, parse

    if isinstance(cmd, str):
        return parse(cmd)
    if len(cmd) > MAX_WORDS or sum(map(len, cmd)) > MAX_CHARS:
        return ParsedCommand(
            (),
            refused=f"an argv beyond {MAX_WORDS} words or {MAX_CHARS} characters",
        )
    # An argv runs with no shell: its words are exactly what runs.
    return ParsedCommand((SimpleCommand(tuple(cmd)),))


def _workspace_roots(
    frames: Sequence[CommandPolicy],
) -> tuple[str, ...] | None:
    for frame in reversed(frames):
        if frame.workspace_roots is not None:
            return frame.workspace_roots
    return None


def _analyse(
    cmd: str | Sequence[str], cwd: str | None, frames: Sequence[CommandPolicy]
) -> _Analysis:
    from ._label import label
    from ._normalise import normalise_all

    parsed = _parse(cmd)
    if parsed.refused is not None:
        return _Analysis((), {}, refused=parsed.refused)
    normals = normalise_all(parsed.commands)
    labels = label(
        normals,
        cwd=cwd if cwd is not None else os.getcwd(),  # noqa: PTH109 - a str, once
        workspace_roots=_workspace_roots(frames),
        home=os.path.expanduser("~"),  # noqa: PTH111 - a str, once
        line_unresolved=parsed.unresolved,
    )
    return _Analysis(tuple(n.argv for n in normals), labels)


#: An allow rule, split: its words before a trailing `*`, and whether it
#: has one (then more words may follow).
_Allow = tuple[tuple[str, ...], bool]


def _split_allow(pattern: str) -> _Allow:
    tokens = tuple(pattern.split())
    if tokens and tokens[-1] == "*":
        return tokens[:-1], True
    return tokens, False


def _matches_allow(rule: _Allow, argv: Sequence[str]) -> bool:
    head, more = rule
    if len(argv) < len(head) or (not more and len(argv) != len(head)):
        return False
    # A glob may become any number of names: only the trailing `*` of a
    # rule stands for that many words.
    return all(
        not isinstance(a, GlobWord) and glob_match(t, a)
        for t, a in zip(head, argv, strict=False)
    )


@attrs.frozen
class _Compiled:
    """
    A command policy's patterns, compiled once per policy: the allow
    rules indexed by their first word (a rule whose first word is a glob,
    or that has none, is tried on every command), and every deny pattern
    in one regex that says whether any of them can match at all.
    """

    by_first: Mapping[str, tuple[_Allow, ...]]
    anywhere: tuple[_Allow, ...]
    deny_any: re.Pattern[str] | None

    def allows(self, argv: Sequence[str]) -> bool:
        candidates = self.by_first.get(argv[0], ()) if argv else ()
        return any(
            _matches_allow(rule, argv)
            for rule in (*candidates, *self.anywhere)
        )


@functools.lru_cache(maxsize=128)
def _compiled(allow: tuple[str, ...], deny: tuple[str, ...]) -> _Compiled:
    by_first: dict[str, list[_Allow]] = {}
    anywhere: list[_Allow] = []
    for pattern in allow:
        rule = _split_allow(pattern)
        head = rule[0]
        if head and not is_glob(head[0]):
            by_first.setdefault(head[0], []).append(rule)
        else:
            anywhere.append(rule)
    # A deny pattern with `*` is a glob on the whole text; without, a
    # substring (fnmatch.translate matches whole, `(?s:...)\Z`).
    alternatives = [
        fnmatch.translate(p) if "*" in p else f"(?s:.*{re.escape(p)})"
        for p in deny
    ]
    return _Compiled(
        {word: tuple(rules) for word, rules in by_first.items()},
        tuple(anywhere),
        re.compile("|".join(alternatives)) if alternatives else None,
    )


def _deny_pattern(pattern: str, text: str) -> bool:
    if "*" in pattern:
        return glob_match(pattern, text)
    return pattern in text


def _first(
    labels: Iterable[CommandLabel], tier: Iterable[CommandLabel]
) -> CommandLabel | None:
    tier_set = set(tier)
    return next((lbl for lbl in labels if lbl in tier_set), None)


def _judge_frame(
    policy: CommandPolicy | None, cmd: str | Sequence[str], analysis: _Analysis
) -> _Verdict:
    """One frame's verdict (`None`: the defaults of no policy)."""
    labels = list(analysis.labels)
    deny_tier = policy.effective_deny_labels if policy else DEFAULT_DENY_LABELS
    ask_tier = (
        policy.effective_approval_labels
        if policy
        else DEFAULT_APPROVAL_LABELS | ALWAYS_ASK_LABELS
    )
    hit = _first(labels, deny_tier)
    if hit is not None:
        return _Verdict(CommandDefault.DENY, _label_reason(hit, analysis), hit)
    compiled = None
    if policy is not None:
        compiled = _compiled(policy.allow, policy.deny_patterns)
        whole = cmd if isinstance(cmd, str) else " ".join(cmd)
        texts = [whole, *(" ".join(argv) for argv in analysis.segments)]
        deny_any = compiled.deny_any
        if deny_any is not None and any(deny_any.match(t) for t in texts):
            for pattern in policy.deny_patterns:  # the first, by its order
                if any(_deny_pattern(pattern, text) for text in texts):
                    return _Verdict(
                        CommandDefault.DENY,
                        f"command denied by the policy pattern {pattern!r}",
                        pattern,
                    )
    if policy is None or compiled is None:
        rest = _Verdict(
            CommandDefault.ALLOW, "no command policy; nothing risky found"
        )
    elif analysis.segments and all(
        compiled.allows(argv) for argv in analysis.segments
    ):
        rest = _Verdict(
            CommandDefault.ALLOW, "every command matches an allow rule"
        )
    else:
        rest = _Verdict(
            policy.default,
            "no allow rule matches; the policy's default is "
            f"{policy.default.value}",
        )
    hit = _first(labels, ask_tier)
    if hit is not None and _RANK[rest.action] < _RANK[CommandDefault.ASK]:
        # An ask-tier label beats an allow rule, but never softens a
        # denial: `sudo whoami` is no weaker than `whoami`.
        return _Verdict(CommandDefault.ASK, _label_reason(hit, analysis), hit)
    return rest


def _label_reason(label: CommandLabel, analysis: _Analysis) -> str:
    reasons = analysis.labels.get(label) or []
    detail = f": {reasons[0]}" if reasons else ""
    return f"{label.value}{detail}"


def _decide(
    cmd: str | Sequence[str], cwd: str | None, tool: str
) -> CommandDecision:
    cmd = _checked(cmd)
    frames = command.frames()
    analysis = _analyse(cmd, cwd, frames)
    verdict = _verdict(cmd, analysis, frames)
    gate = Gate.COMMAND
    if CHECKING and verdict.action is not CommandDefault.DENY:
        found = _stacks_verdict(tool, cmd, analysis)
        if found is not None:
            theirs = CommandDefault(found[1].action.value)
            if _RANK[theirs] > _RANK[verdict.action]:
                gate, verdict = found[0], _Verdict(theirs, found[1].reason)
    return CommandDecision(
        action=_ACTION[verdict.action],
        gate=gate,
        tool=tool,
        reason=verdict.reason,
        rule=verdict.rule,
        overlay=current_overlay(),
        labels=tuple(sorted(label.value for label in analysis.labels)),
        segments=tuple(
            tuple(str(word) for word in argv) for argv in analysis.segments
        ),
        line=_line(cmd),
    )


def _stacks_verdict(
    tool: str, cmd: str | Sequence[str], analysis: _Analysis
) -> tuple[Gate, Verdict] | None:
    """The stacks' `check` hooks on a command: its line, simple commands
    and labels, as a `ToolCall` whose `command` is the line.
    """
    from .._enforce import stack_checks

    line = _line(cmd)
    call = ToolCall(
        tool,
        {
            "command": [
                [str(word) for word in argv] for argv in analysis.segments
            ],
            "line": line,
            "labels": sorted(label.value for label in analysis.labels),
        },
        command=line,
    )
    return stack_checks(call)


def _verdict(
    cmd: str | Sequence[str],
    analysis: _Analysis,
    frames: Sequence[CommandPolicy],
) -> _Verdict:
    if analysis.refused is not None:
        return _Verdict(
            CommandDefault.DENY,
            f"command not analysed: {analysis.refused}; split it into "
            "smaller commands",
            "analysis_limit",
        )
    if command_hook_depth.value > 0 and not (
        frames and all(f.allow_recursive for f in frames)
    ):
        return _Verdict(
            CommandDefault.DENY,
            "command-policy hooks cannot run commands (allow_recursive is off)",
            "recursion_guard",
        )
    if CommandLabel.CATASTROPHIC in analysis.labels:
        return _Verdict(
            CommandDefault.DENY,
            _label_reason(CommandLabel.CATASTROPHIC, analysis),
            "catastrophic_floor",
        )
    verdicts = [_judge_frame(f, cmd, analysis) for f in frames] or [
        _judge_frame(None, cmd, analysis)
    ]
    # Every frame must allow: the strictest verdict (the outermost on a tie).
    return max(verdicts, key=lambda v: _RANK[v.action])


def frame_verdict(policy: CommandPolicy, cmd: str | Sequence[str]) -> Verdict:
    """One command policy's verdict on *cmd* alone (`CommandPolicy.verdict`):
    the analysis, the catastrophic floor and that frame's rules.
    """
    cmd = _checked(cmd)
    frames = (policy,)
    verdict = _verdict(cmd, _analyse(cmd, None, frames), frames)
    return Verdict(verdict.action.value, verdict.reason, "command")


def check_command(
    cmd: str | Sequence[str], *, cwd: str | None = None
) -> CommandDecision:
    """
    What the command stack would decide for *cmd*: a dry run (no hooks,
    no asking, no event). Consults only the command stack and the
    catastrophic floor; pair `guards_command` with `requires_tool` for the
    tool ceiling.

    *cmd* is a shell command line, or an argv (a list or tuple of `str`,
    run with no shell; not a subclass of list or tuple); anything else is
    a `TypeError` naming its type. A `str` subclass is judged by its
    characters, never through its methods. A
    line longer than 65,536 characters, with more than 2,048 words, 512
    simple commands or 8,192 pieces (quotes, expansions, operators), or
    nested deeper than 32 levels, is denied without analysis (rule
    `analysis_limit`).

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CommandPolicy
        >>> with cs.using(command=CommandPolicy(allow=["git status *"], default="deny")):
        ...     print(cs.check_command("git status --short").action, cs.check_command("git status; rm -rf /").action)
        allow deny
    """
    return _decide(cmd, cwd, "command")


def _command_of(
    sig: inspect.Signature,
    arg: str,
    instance: object,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[inspect.BoundArguments, Any]:
    bound = (
        sig.bind(instance, *args, **kwargs)
        if instance is not None
        else sig.bind(*args, **kwargs)
    )
    bound.apply_defaults()
    return bound, bound.arguments[arg]


def _call_hook(hook: Callable[..., Any], *args: Any) -> Any:
    with command_hook_depth.raised():
        return hook(*args)


#: The preflight is written once, as generators that yield each call of
#: a consent hook or approval handler and take back its answer: a sync
#: guarded function makes the call in its thread (`_drive`: an async hook
#: is not an answer there), an async one awaits it (`_drive_async`: a sync
#: hook runs in a thread). Either way within the approval policy's
#: `timeout` for the handler; a failing or late answer is a refusal.
_Call = tuple[Callable[..., Any], tuple[Any, ...], float | None]
_Steps = Generator[_Call, object, _T]


def _answer(
    hook: Callable[..., Any], *args: Any, timeout: float | None = None
) -> _Steps[bool]:
    """Ask *hook*; only a clear grant is True."""
    answer = yield hook, args, timeout
    return _granted(answer)


def _ask(
    decision: CommandDecision, frames: Sequence[CommandPolicy]
) -> _Steps[bool]:
    """
    Ask every answerer in force: each policy's consent hook, then each
    approval handler (`ToolApprovalPolicy.handlers`). All must grant, and
    with none the ask is refused: a frame pushed inside can add an
    answerer, never stand in for one outside.
    """
    consents = [f.consent for f in frames if f.consent is not None]
    with command_hook_depth.raised():
        for consent in consents:
            if not (yield from _answer(consent, decision)):
                return False
    policy = approval.top()
    if policy is None or not policy.handlers:
        return bool(consents)
    from .._enforce import ApprovalRequest

    request = ApprovalRequest(
        decision.tool,
        {
            "command": [list(s) for s in decision.segments],
            "line": decision.line,
            "labels": list(decision.labels),
        },
        decision.reason,
        decision.rule,
        decision.overlay,
    )
    for handler in policy.handlers:
        if not (yield from _answer(handler, request, timeout=policy.timeout)):
            return False
    return True


def _drive(steps: _Steps[_T]) -> _T:
    """Run a preflight synchronously."""
    try:
        hook, args, seconds = next(steps)
        while True:
            try:
                answer = call_sync(hook, *args, seconds=seconds)
            except Exception:  # noqa: BLE001 - a failing or late answer refuses
                answer = NOT_ANSWERED
            hook, args, seconds = steps.send(answer)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        steps.close()


async def _drive_async(steps: _Steps[_T]) -> _T:
    """Run a preflight in async code."""
    try:
        hook, args, seconds = next(steps)
        while True:
            try:
                answer = await call_async(hook, *args, seconds=seconds)
            except Exception:  # noqa: BLE001 - a failing or late answer refuses
                answer = NOT_ANSWERED
            hook, args, seconds = steps.send(answer)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        steps.close()


def _granted(answer: object) -> bool:
    """Whether a hook's or handler's answer is a clear grant (see
    `capscope._enforce.read_answer`: tools and commands read answers alike).
    """
    from .._enforce import read_answer

    return read_answer(answer)[0]


def _blocked(decision: CommandDecision) -> CommandBlocked:
    events.emit(decision)
    return CommandBlocked(f"command blocked: {decision.reason}", decision)


def _refused(
    decision: CommandDecision, reason: str, action: Action = Action.DENY
) -> CommandBlocked:
    return _blocked(attrs.evolve(decision, action=action, reason=reason))


def _settle_ask(
    decision: CommandDecision, frames: Sequence[CommandPolicy]
) -> _Steps[CommandDecision]:
    events.emit(decision)
    if not (yield from _ask(decision, frames)):
        raise _refused(decision, f"not approved: {decision.reason}")
    return attrs.evolve(decision, action=Action.GRANTED)


def _run_pre_hooks(
    decision: CommandDecision, frames: Sequence[CommandPolicy]
) -> _Steps[Any]:
    """Every frame's `pre` hook, outer first; a rewrite, or `None`."""
    for frame in frames:
        if frame.pre is None:
            continue
        action, rewrite = _read_pre(_call_hook(frame.pre, decision))
        if action == "deny":
            raise _refused(decision, "denied by a pre hook")
        if action in ("dry_run", "explain_only"):
            raise _refused(
                decision, f"a pre hook asked for {action}", Action.SKIPPED
            )
        if action == "require_approval" and not (
            yield from _ask(decision, frames)
        ):
            raise _refused(
                decision, "a pre hook required approval; not approved"
            )
        if rewrite is not None:
            return rewrite
    return None


def _decided(tool: str, cmd: Any, cwd: str | None) -> _Steps[CommandDecision]:
    """The decision, with an ask settled; a denial raises."""
    decision = _decide(cmd, cwd, tool)
    if decision.action is Action.DENY:
        raise _blocked(decision)
    if decision.action is Action.ASK:
        decision = yield from _settle_ask(decision, command.frames())
    return decision


def _preflight(
    tool: str, cmd: Any, cwd: str | None
) -> _Steps[tuple[Any, CommandDecision]]:
    """Decide, ask, run the pre hooks; the command to run and its decision."""
    decision = yield from _decided(tool, cmd, cwd)
    rewritten = yield from _run_pre_hooks(decision, command.frames())
    if rewritten is not None:
        # A rewrite is checked again from the floor (not by the hooks again).
        cmd = rewritten
        decision = yield from _decided(tool, cmd, cwd)
    if events.has_subscribers():
        events.emit(decision)
    return cmd, decision


#: What a `pre` hook may answer, as an action name.
_PRE_WORDS = {"allow", "deny", "require_approval", "dry_run", "explain_only"}


def _read_pre(result: object) -> tuple[str, Any]:
    """A pre hook's answer as `(action, rewrite)`; anything unclear denies."""
    if result is None or result is True:
        return "allow", None
    if isinstance(result, str):
        return (result if result in _PRE_WORDS else "deny"), None
    if not isinstance(result, dict):
        return "deny", None
    if "rewrite" in result:
        return "allow", result["rewrite"]
    if result.get("allow"):
        return "allow", None
    word = result.get("action")
    return (word if word in _PRE_WORDS else "deny"), None


def _post(decision: CommandDecision, result: Any) -> Any:
    for frame in command.frames():
        if frame.post is not None:
            replaced = _call_hook(frame.post, decision, result)
            if replaced is not None:
                result = replaced
    return result


@attrs.frozen
class _Guard:
    """What `guards_command` checks: the tool name and where the command
    (and its working directory) sit among the arguments.
    """

    tool: str
    sig: inspect.Signature
    arg: str
    cwd_arg: str | None

    def _command(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[inspect.BoundArguments, Any, Any]:
        bound, cmd = _command_of(self.sig, self.arg, instance, args, kwargs)
        cwd = bound.arguments.get(self.cwd_arg) if self.cwd_arg else None
        return bound, cmd, cwd

    def prepare(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Steps[tuple[tuple[Any, ...], dict[str, Any], CommandDecision]]:
        """The preflight of one call: the arguments to call with, and the
        decision.
        """
        bound, cmd, cwd = self._command(instance, args, kwargs)
        final, decision = yield from _preflight(self.tool, cmd, cwd)
        bound.arguments[self.arg] = final
        call_args = bound.args[1:] if instance is not None else bound.args
        return call_args, bound.kwargs, decision

    def dry_run(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> CommandDecision:
        """What the call's command would be decided (`check_command`)."""
        _, cmd, cwd = self._command(instance, args, kwargs)
        return _decide(cmd, cwd, self.tool)

    def decide(self, arguments: Mapping[str, Any]) -> CommandDecision:
        """The same, from the arguments by name (the command line's
        `--arg`), defaults included; a missing command is a `TypeError`.
        """
        values = {
            name: p.default
            for name, p in self.sig.parameters.items()
            if p.default is not p.empty
        }
        values.update(arguments)
        if self.arg not in values:
            msg = f"missing the argument {self.arg!r} (the command)"
            raise TypeError(msg)
        cwd = values.get(self.cwd_arg) if self.cwd_arg else None
        return _decide(values[self.arg], cwd, self.tool)


class _CommandLayer(wrapt.FunctionWrapper):  # type: ignore[type-arg]
    """
    The layer `guards_command` adds, carrying its `_Guard` so that a dry
    run (`check_tool`) runs the command gate the real call runs.
    """

    def __init__(
        self, wrapped: Callable[..., Any], wrapper: Any, guard: _Guard
    ) -> None:
        super().__init__(wrapped, wrapper)
        self._self_guard = guard


def guards_command(
    arg: str = "cmd",
    *,
    cwd_arg: str | None = None,
    name: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """
    Run the command policy's full preflight on the argument *arg* before
    the body: the decision of `check_command`; an ask goes to the policies'
    `consent` hooks, else to the approval handler, else denies; then the
    `pre` hooks (allow, deny, require approval, dry run, explain only, or
    a rewrite, which is checked again from the floor); then the body, then
    the `post` hooks with the result. A denial raises `CommandBlocked`.

    *cwd_arg* names the argument holding the working directory; *name* is
    the tool name decisions carry (default: the function's `__name__`;
    give the `requires_tool` name when stacking both). An async function's
    preflight awaits async consent hooks and approval handlers (at most
    the approval policy's `timeout`); a sync function's cannot, so an
    awaitable answer there is a refusal.

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CommandPolicy
        >>> @cs.guards_command(arg="cmd")
        ... def run(cmd: str) -> str:
        ...     return f"ran {cmd}"
        >>> with cs.using(command=CommandPolicy(allow=["ls *"], default="deny")):
        ...     run("ls -la")
        'ran ls -la'
    """
    if not isinstance(arg, str) or not arg.isidentifier():
        raise PolicyConfigError(
            "arg", f"expected an argument name, got {arg!r}"
        )

    if name is not None and (not isinstance(name, str) or not name):
        raise PolicyConfigError(
            "name", f"expected a non-empty tool name, got {name!r}"
        )

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        sig = inspect.signature(fn)  # once: binding is per call
        if arg not in sig.parameters:
            raise PolicyConfigError("arg", f"{fn!r} has no parameter {arg!r}")
        guard = _Guard(
            name or str(getattr(fn, "__name__", "command")), sig, arg, cwd_arg
        )

        if inspect.iscoroutinefunction(fn):

            async def async_wrapper(
                wrapped: Any, instance: Any, args: Any, kwargs: Any
            ) -> Any:
                call_args, call_kwargs, decision = await _drive_async(
                    guard.prepare(instance, args, kwargs)
                )
                return _post(
                    decision, await wrapped(*call_args, **call_kwargs)
                )

            return _CommandLayer(fn, async_wrapper, guard)

        def wrapper(
            wrapped: Any, instance: Any, args: Any, kwargs: Any
        ) -> Any:
            call_args, call_kwargs, decision = _drive(
                guard.prepare(instance, args, kwargs)
            )
            return _post(decision, wrapped(*call_args, **call_kwargs))

        return _CommandLayer(fn, wrapper, guard)

    return decorate
