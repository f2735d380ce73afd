"""The facade: :class:`Guardrail` checks each tool call before it runs, and :class:`Verdict` is its answer.

>>> from microloop import Guardrail
>>> guard = Guardrail("balanced")
>>> v = guard.check("open_page", {"url": "https://example.com"})
>>> v.action, v.allowed
('allow', True)
>>> guard.record(v.call_id, "Please solve the CAPTCHA")
>>> v = guard.check("open_page", {"url": "https://example.com"})
>>> guard.record(v.call_id, "Please solve the CAPTCHA")
>>> v = guard.check("open_page", {"url": "https://example.com"})
>>> v.blocked, v.rule
(True, 'loop.no_progress')
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
import operator
from typing import Any, Callable, Dict, Iterable, Iterator, List, Literal, NamedTuple, Optional, Tuple, Type, TypeVar, Union, overload

from . import _binding
from ._binding import ffi, lib, raise_status
from ._call import ToolCall
from ._encode import encode_args, encode_output
from .errors import ArgumentsNotSerializable, InvalidUTF8, blocked_error
from .policy import load_policy

__all__ = ["Guardrail", "Engine", "Verdict", "Stats", "Action"]

F = TypeVar("F", bound=Callable[..., Any])
G = TypeVar("G", bound="Guardrail")

Action = Literal["allow", "warn", "block", "halt"]
"""A verdict's action: ``allow``, ``warn`` (allowed, nudged), ``block`` or ``halt``."""

_ACTIONS: Tuple[Action, ...] = ("allow", "warn", "block", "halt")

try:  # CPython's fast field accessor (what namedtuple uses); plain itemgetter elsewhere
    from collections import _tuplegetter  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    def _tuplegetter(index: int, doc: str) -> Any:
        return property(operator.itemgetter(index), doc=doc)

_item = operator.itemgetter


def _text(p: Any, n: int) -> str:
    return ffi.unpack(p, n).decode("utf-8", "replace") if p else ""


class Verdict(tuple):
    """The verdict on one call (immutable; compares, hashes, unpacks and pickles as the tuple
    ``(action, rule, message, call_id, count)``).

    Attributes:
        action: ``"allow"``, ``"warn"`` (run it, and show ``message`` to the model with the result:
            the next like call is blocked), ``"block"`` (do not run it; give ``message`` to the model)
            or ``"halt"`` (do not run it; stop the run).
        rule: the deciding rule's id (``loop.no_progress``, ``tool.unknown``...); ``""`` for allow.
        approval: under ``[approval]``, the token of a call that may run (else ``None``); not
            part of the tuple.
        message: written for the model; ``""`` for allow.
        call_id: pass it to :meth:`Guardrail.record`; 0 when the call must not run.
        count: for allow, how many times this exact call already ran in the window; otherwise the
            count the deciding rule reached.
        observed: observe mode only: the action an enforcing guard would have taken (``"warn"``,
            ``"block"``, ``"halt"``) on a call let run as ``"allow"``; ``""`` otherwise. Not part
            of the tuple.

    The rule and message of a verdict from :meth:`Guardrail.check` stay in the library's memory
    and are decoded when read (an allowed call has none).
    """

    # Stored as (action, rule, message, call_id, count, native verdict or None): with a native
    # verdict, rule and message are read from it (it frees them when collected).
    __slots__ = ()
    _fields = ("action", "rule", "message", "call_id", "count")

    def __new__(cls, action: Action, rule: str = "", message: str = "", call_id: int = 0, count: int = 0) -> "Verdict":
        return tuple.__new__(cls, (action, rule, message, call_id, count, None))

    action: Action = _tuplegetter(0, "allow, warn, block or halt")
    call_id: int = _tuplegetter(3, "the id to pass to record(); 0 when the call must not run")
    count: int = _tuplegetter(4, "the count the deciding rule reached (allow: runs of this call in the window)")  # type: ignore[assignment]
    _rule = _tuplegetter(1, "")
    _message = _tuplegetter(2, "")
    _native = _tuplegetter(5, "")

    @property
    def rule(self) -> str:
        """The deciding rule's id; ``""`` for allow."""
        v = self._native
        return self._rule if v is None else _text(v.rule, v.rule_len)

    @property
    def message(self) -> str:
        """Written for the model; ``""`` for allow."""
        v = self._native
        return self._message if v is None else _text(v.message, v.message_len)

    @property
    def approval(self) -> Optional[str]:
        """Under a policy with an ``[approval]`` section, for a call that may run (allow, warn):
        the approval token, a compact JWS the tool server checks with
        :func:`microloop.approval.verify`. ``None`` otherwise (see :attr:`approval_error`)."""
        v = self._native
        return None if v is None or v.approval == ffi.NULL else _text(v.approval, v.approval_len)

    @property
    def approval_error(self) -> Optional[str]:
        """Why a call that may run under ``[approval]`` has no token: its arguments have no RFC 8785
        canonical form (an integer outside ±(2**53 - 1), a duplicate key). ``None`` otherwise."""
        v = self._native
        return None if v is None or v.approval_error == ffi.NULL else _text(v.approval_error, v.approval_error_len)

    @property
    def observed(self) -> str:
        """Observe mode (a policy with ``mode = "observe"``): the action an enforcing guard would
        have taken (``"warn"``, ``"block"`` or ``"halt"``) on a call that is let run; ``action`` is
        then ``"allow"``, and ``rule``, ``message`` and ``count`` are the would-be verdict's. ``""``
        otherwise."""
        v = self._native
        return "" if v is None or not v.observed else _ACTIONS[v.observed]

    @property
    def allowed(self) -> bool:
        """True for allow and warn: the call may run."""
        a = self.action
        return a == "allow" or a == "warn"

    @property
    def blocked(self) -> bool:
        """True for block and halt: the call must not run."""
        a = self.action
        return a == "block" or a == "halt"

    @property
    def halted(self) -> bool:
        """True for halt: the run must stop."""
        return self.action == "halt"

    # -- the tuple (action, rule, message, call_id, count) ------------------------------------

    def _public(self) -> Tuple[Action, str, str, int, int]:
        return (self.action, self.rule, self.message, self.call_id, self.count)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._public())

    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: Any) -> Any:
        return self._public()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Verdict):
            return self._public() == other._public()
        if isinstance(other, tuple):
            return self._public() == other
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(self._public())

    def __getnewargs__(self) -> Tuple[Any, ...]:
        return self._public()

    def __repr__(self) -> str:
        a, r, m, c, n = self._public()
        return f"Verdict(action={a!r}, rule={r!r}, message={m!r}, call_id={c!r}, count={n!r})"

    def _asdict(self) -> Dict[str, Any]:
        return dict(zip(self._fields, self._public(), strict=True))

    def _replace(self, **changes: Any) -> "Verdict":
        d = self._asdict()
        d.update(changes)
        return Verdict(**d)


class Stats(NamedTuple):
    """A session's counters (:attr:`Guardrail.stats`)."""

    calls: int  #: calls allowed to run
    blocked: int  #: calls blocked or halted
    errors: int  #: results recorded as errors
    history_len: int  #: calls in the history window now
    history_hash: int  #: a hash of the whole history, unchanged by any call that did not change it
    results: int  #: results recorded, late ones included
    late: int  #: results recorded after their call had left the window
    observed: int = 0  #: observe mode: calls let run although the verdict was warn, block or halt


_new_verdict = tuple.__new__
_no_native = None
# One native verdict per thread, reused by every check of that thread that is allowed (an allowed
# verdict owns no strings); a warn/block/halt verdict keeps its buffer and the thread gets a new one.
_local = threading.local()
_tool_names: Dict[Any, bytes] = {}  # tool name -> its UTF-8, for the names an agent repeats


def _native_verdict() -> Any:
    v = _local.v = ffi.new("ml_verdict *", [_binding.VERDICT_SIZE])
    return v


def _tool_bytes(tool: Any) -> bytes:
    if tool.__class__ is str:
        try:
            t = tool.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidUTF8("the tool name is not valid UTF-8 (it contains a lone surrogate)") from None
        if len(_tool_names) < 4096:
            _tool_names[tool] = t
        return t
    return bytes(tool)


class Engine:
    """A compiled policy that any number of guards share (``Guardrail(engine)``): the policy is
    parsed and its schemas and regexes compiled once, so a guard per conversation, request or
    worker thread costs none of that. Immutable, so safe to share between threads; each guard
    holds its own reference.

    Args:
        policy: as for :class:`Guardrail`.

    Raises:
        PolicyError: the policy was refused; ``.path`` names the bad entry.

    >>> engine = Engine("strict")
    >>> a, b = Guardrail(engine), Guardrail(engine)
    >>> a.engine is engine and a.policy == "strict"
    True
    """

    __slots__ = ("_e", "_policy", "_source", "__weakref__")

    def __init__(self, policy: Any = "balanced") -> None:
        text, source = load_policy(policy)
        self._policy: bytes = text
        self._source: Optional[str] = source
        out = ffi.new("ml_engine **")
        errp = ffi.new("ml_error **")
        status = lib.ml_engine_new(text, len(text), out, errp)
        if status:
            raise_status(status, errp, source)
        self._e = ffi.gc(out[0], lib.ml_engine_free)

    @property
    def policy(self) -> str:
        """The policy as given to the library (JSON or TOML text, or a preset name)."""
        return self._policy.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Engine policy={self.policy[:60]!r}>"


class Guardrail:
    """One agent run's history of tool calls under one policy; checks each call before it runs.

    Args:
        policy: a preset name (``"strict"``, ``"balanced"``, ``"permissive"``), a dict, a path
            (``str`` ending in ``.toml``/``.json``, or any ``os.PathLike``), TOML/JSON text, or an
            :class:`Engine` to share (its policy compiled once for every guard given it).
        tools: the agent's tool names; a call to any other tool is then blocked (``tool.unknown``)
            with a message listing the real ones.
        on_warn: called with the verdict when :meth:`verify` lets a ``warn`` call run.
        store: keep the session outside the process, e.g. ``RedisStore(client, key=...)``
            (:mod:`microloop.store`): it is loaded before each call and saved after with a
            compare-and-set, so many workers share one history without losing each other's calls.

    A policy with ``mode = "observe"`` (shadow mode) gives an
    :class:`~microloop._observe.ObservingGuardrail`: every call is allowed and enters the history;
    a verdict that would have warned, blocked or halted comes back as ``allow`` with that action in
    :attr:`Verdict.observed` (rule, message and count kept), logged (its ``observe_log=``
    argument: a path or a text file) and counted in ``stats.observed``.

    Raises:
        PolicyError: the policy was refused; ``.path`` names the bad entry.

    Safe to use from many threads: every call allocates its own out-parameters and the library
    serializes calls on one session. ``last_warning`` holds the latest ``warn`` verdict (the last
    one any thread saw).

    >>> guard = Guardrail({"preset": "strict"}, tools=["search"])
    >>> guard.check("serach", {"q": "x"}).rule
    'tool.unknown'
    """

    __slots__ = ("_s", "_engine", "_tools", "_sessions", "_lock", "_store", "on_warn", "last_warning", "__weakref__")

    def __new__(cls: Type[G], policy: Any = "balanced", *args: Any, **kwargs: Any) -> G:
        if cls is Guardrail:  # a policy in observe mode (shadow mode) gets the observing guard
            from ._observe import ObservingGuardrail, observe_mode

            if observe_mode(policy):
                cls = ObservingGuardrail  # type: ignore[assignment]
        return object.__new__(cls)

    def __init__(
        self,
        policy: Any = "balanced",
        *,
        tools: Optional[Iterable[str]] = None,
        on_warn: Optional[Callable[[Verdict], Any]] = None,
        store: Any = None,
    ) -> None:
        self._init(policy if isinstance(policy, Engine) else Engine(policy), on_warn)
        if store is not None:
            self._store = store
            self.__class__ = _StoredGuardrail
        if tools is not None:
            self.set_tools(tools)

    def _init(self, engine: Engine, on_warn: Optional[Callable[[Verdict], Any]], session: Any = None) -> None:
        self._s = ffi.NULL
        self._store = None
        self._engine = engine
        self._tools: Optional[List[str]] = None
        self._sessions: Dict[str, Guardrail] = {}
        self._lock = threading.RLock()  # reentrant: a stored guard holds it around set_tools
        self.on_warn = on_warn
        self.last_warning: Optional[Verdict] = None
        if session is not None:
            self._s = session
            return
        out = ffi.new("ml_session **")
        errp = ffi.new("ml_error **")
        status = lib.ml_session_new_from_engine(engine._e, out, errp)
        if status:
            raise_status(status, errp)
        self._s = ffi.gc(out[0], lib.ml_session_free)

    # -- the calls -------------------------------------------------------------------------------

    def check(self, tool: Union[str, bytes], args: Any = None) -> Verdict:
        """Decides on a tool call before it runs.

        Args:
            tool: the tool's name.
            args: its arguments: a mapping or any JSON-serialisable value, or JSON text already
                encoded (``str``/``bytes``). ``None`` means ``{}``.

        Returns:
            The :class:`Verdict`. An allowed call (allow/warn) enters the history under
            ``verdict.call_id``: report its output with :meth:`record`. A blocked call leaves the
            history unchanged.

        Raises:
            ArgumentsNotSerializable: ``args`` cannot be encoded as JSON.
            InvalidJSON: ``args`` is text that is not JSON (or nests deeper than 128 levels).
            InvalidArgument: an empty tool name. InvalidUTF8: text that is not UTF-8.
            Errors leave the history unchanged.
        """
        t = _tool_names.get(tool) if tool.__class__ is str else None
        if t is None:
            t = _tool_bytes(tool)
        a = encode_args(args)
        try:
            v = _local.v
        except AttributeError:
            v = _native_verdict()
        # One C call. Nothing between it and the reads below can run another check on this thread.
        status = lib.ml_check_call(self._s, t, len(t), a, len(a), v, ffi.NULL)
        if status:
            # A failing call changes nothing (history, counters): ask again for the error's detail,
            # which keeps an allocation off the fast path.
            errp = ffi.new("ml_error **")
            status = lib.ml_check_call(self._s, t, len(t), a, len(a), v, errp)
            raise_status(status, errp)
        action = v.action
        # An allowed call without an approval token (no `[approval]`) or a would-be verdict owns no strings.
        if action == 0 and v.observed == 0 and not v.approval_len and not v.approval_error_len:
            return _new_verdict(Verdict, ("allow", "", "", v.call_id, v.count, None))
        # The verdict keeps this native verdict (its strings, decoded when read, freed with it).
        _native_verdict()
        verdict = _new_verdict(Verdict, (_ACTIONS[action], "", "", v.call_id, v.count, ffi.gc(v, lib.ml_verdict_clear)))
        if action == 1:
            self.last_warning = verdict
        return verdict

    def record(self, call_id: int, output: Any = None, error: bool = False) -> None:
        """Tells the guard what an allowed call returned (needed for no-progress detection).

        A result that comes after its call has left the history window (a slow tool while many
        other calls were checked) is accepted as *late* (``stats.late``): it still counts toward
        the error budget, and a successful write is still progress.

        Args:
            call_id: the verdict's ``call_id``.
            output: ``str``, ``bytes`` or anything JSON-serialisable (JSON is compared as JSON);
                ``None`` records an empty output; other objects are recorded as ``str(output)``.
            error: the call failed.

        Raises:
            UnknownCall: the id is 0 (a blocked call) or was never issued by this session.
            AlreadyRecorded: the call already has a result.
        """
        out = output.encode("utf-8", "surrogatepass") if output.__class__ is str else encode_output(output)
        status = lib.ml_record_result(self._s, call_id, out, len(out), bool(error), ffi.NULL)
        if status:
            # As in check: a failing record changes nothing, so ask again for the error's detail.
            errp = ffi.new("ml_error **")
            status = lib.ml_record_result(self._s, call_id, out, len(out), bool(error), errp)
            if status:
                raise_status(status, errp)

    def set_tools(self, names: Iterable[str]) -> None:
        """Registers the agent's tool names: a call to any other tool is then blocked (``tool.unknown``).
        An empty list forgets them. The sessions made by :meth:`session` get the same names."""
        if isinstance(names, (str, bytes)):
            raise TypeError("set_tools takes an iterable of tool names, not a single string")
        tools = list(names)
        try:
            text = json.dumps(tools, ensure_ascii=False).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError) as e:
            raise ArgumentsNotSerializable(f"tool names must be strings: {e}") from None
        errp = ffi.new("ml_error **")
        status = lib.ml_session_set_tools(self._s, text, len(text), errp)
        if status:
            raise_status(status, errp)
        self._tools = tools or None
        with self._lock:
            children = list(self._sessions.values())
        for child in children:
            child.set_tools(tools)

    def reset(self) -> None:
        """Forgets the history, the counters and any halt; keeps the policy and the tool names."""
        errp = ffi.new("ml_error **")
        status = lib.ml_session_reset(self._s, errp)
        if status:
            raise_status(status, errp)
        self.last_warning = None

    def replay(self, conversation: Any, dialect: str = "openai") -> Dict[str, Any]:
        """Replays a recorded LLM API conversation into this guard exactly as ``microloop-proxy``
        reads each request it guards (the same native code): every tool call of an assistant turn is
        checked, every tool result recorded under the call it answers, and the conversation's
        ``tools`` become the tool names when it lists them.

        ``dialect``: ``"openai"`` (Chat Completions) or ``"anthropic"`` (Messages). ``conversation``:
        a request body (``{"messages": [...], "tools": [...]}``), the list of messages, or its JSON
        text. Returns the report: ``{"calls": [{"id", "tool", "args", "action", "rule", "message",
        "count", "result"}], "warnings", "results", "orphan_results"}``.

        >>> guard = Guardrail("balanced")
        >>> call = {"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "get", "arguments": "{}"}}]}
        >>> report = guard.replay([call, {"role": "tool", "tool_call_id": "1", "content": "same"}] * 3)
        >>> [c["action"] for c in report["calls"]]
        ['allow', 'warn', 'block']
        """
        if isinstance(conversation, bytes):
            text = conversation
        elif isinstance(conversation, str):
            text = conversation.encode("utf-8", "surrogatepass")
        else:
            text = json.dumps(conversation, ensure_ascii=False).encode("utf-8", "surrogatepass")
        name = dialect.encode("utf-8")
        json_out = ffi.new("uint8_t **")
        len_out = ffi.new("size_t *")
        errp = ffi.new("ml_error **")
        status = lib.ml_session_replay(self._s, name, len(name), text, len(text), json_out, len_out, errp)
        if status:
            raise_status(status, errp)
        try:
            report: Dict[str, Any] = json.loads(ffi.buffer(json_out[0], len_out[0])[:])
        finally:
            lib.ml_bytes_free(json_out[0], len_out[0])
        return report

    # -- snapshots -----------------------------------------------------------------------------------

    def save(self) -> bytes:
        """The session as bytes for :meth:`load`, in this process or another: its history window,
        counters, registered tool names and any halt (not the policy: the bytes name its hash; not
        the sessions made by :meth:`session`). The guard is unchanged.

        >>> guard = Guardrail("balanced")
        >>> guard.record(guard.check("open_page", {"url": "x"}).call_id, "CAPTCHA")
        >>> again = Guardrail.load(guard.save(), "balanced")
        >>> again.check("open_page", {"url": "x"}).action
        'warn'
        """
        bytes_out = ffi.new("uint8_t **")
        len_out = ffi.new("size_t *")
        errp = ffi.new("ml_error **")
        status = lib.ml_session_save(self._s, bytes_out, len_out, errp)
        if status:
            raise_status(status, errp)
        try:
            return ffi.buffer(bytes_out[0], len_out[0])[:]
        finally:
            lib.ml_bytes_free(bytes_out[0], len_out[0])

    @classmethod
    def load(
        cls,
        snapshot: bytes,
        policy: Any = "balanced",
        *,
        any_policy: bool = False,
        tools: Optional[Iterable[str]] = None,
        on_warn: Optional[Callable[[Verdict], Any]] = None,
    ) -> "Guardrail":
        """A guard from :meth:`save`'s bytes under ``policy`` (an :class:`Engine` or anything
        :class:`Guardrail` takes): it gives exactly the verdicts the saved one would have given.

        Raises:
            PolicyMismatch: the bytes were saved under another policy (``any_policy=True`` loads
                them anyway, judged by the new rules).
            InvalidSnapshot: the bytes are not a snapshot, or are corrupt or truncated.
            SnapshotVersion: the bytes come from a newer MicroLoop.

        The session keeps the tool names it had registered (calls to other tools stay blocked);
        ``tools=`` replaces them, and is what :attr:`tools` then lists.
        """
        engine = policy if isinstance(policy, Engine) else Engine(policy)
        data = bytes(snapshot)
        out = ffi.new("ml_session **")
        errp = ffi.new("ml_error **")
        status = lib.ml_session_load(engine._e, data, len(data), lib.ML_LOAD_ANY_POLICY if any_policy else 0, out, errp)
        if status:
            raise_status(status, errp)
        guard = cls.__new__(cls, engine)  # an observe-mode policy gives the observing guard
        guard._init(engine, on_warn, session=ffi.gc(out[0], lib.ml_session_free))
        if tools is not None:
            guard.set_tools(tools)
        return guard

    def __reduce__(self) -> Any:
        # Pickled as the policy and a snapshot (on_warn and named sessions are left out).
        return (_unpickle, (self._engine._policy, self.save(), self._tools))

    @property
    def stats(self) -> Stats:
        """The session's counters: ``calls``, ``blocked``, ``errors``, ``history_len``, ``history_hash``,
        ``results``, ``late``."""
        st = ffi.new("ml_stats *", [_binding.STATS_SIZE])
        errp = ffi.new("ml_error **")
        status = lib.ml_session_stats(self._s, st, errp)
        if status:
            raise_status(status, errp)
        return Stats(st.calls, st.blocked, st.errors, st.history_len, st.history_hash, st.results, st.late, st.observed)

    @property
    def policy(self) -> str:
        """The policy as given to the library (JSON text or a preset name)."""
        return self._engine.policy

    @property
    def engine(self) -> Engine:
        """The compiled policy this guard checks under, to share with other guards."""
        return self._engine

    @property
    def tools(self) -> Optional[List[str]]:
        """The registered tool names, or ``None``."""
        return list(self._tools) if self._tools else None

    # -- sessions ------------------------------------------------------------------------------------

    def session(self, name: str) -> "Guardrail":
        """An independent history under the same compiled policy (and tool names), cached by ``name``.

        Use one per agent, conversation or LangGraph thread id. A guard with a ``store`` gives
        sessions kept in the same store, under ``store.child(name)`` (``RedisStore``: the key
        ``"<key>:<name>"``), so a thread's history outlives the process too.

        >>> guard = Guardrail()
        >>> guard.session("thread-1") is guard.session("thread-1")
        True
        >>> guard.session("thread-1") is guard.session("thread-2")
        False
        """
        s = self._sessions.get(name)
        if s is not None:
            return s
        with self._lock:
            s = self._sessions.get(name)
            if s is None:
                s = Guardrail.__new__(Guardrail)
                s._init(self._engine, self.on_warn)
                if self._store is not None:
                    s._store = self._store.child(name)
                    s.__class__ = _StoredGuardrail
                if self._tools:
                    s.set_tools(self._tools)
                self._sessions[name] = s
            return s

    def close(self) -> None:
        """Frees the native session now (it is freed when the object is collected otherwise).
        Must not race with calls on other threads; later calls raise ``NullArgument``."""
        s, self._s = self._s, ffi.NULL
        if s != ffi.NULL:
            ffi.release(s)
        for child in list(self._sessions.values()):
            child.close()

    def __enter__(self) -> "Guardrail":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Guardrail policy={self.policy[:60]!r} {self.stats if self._s != ffi.NULL else 'closed'}>"

    # -- the decorator -------------------------------------------------------------------------------

    @overload
    def verify(self, func: F) -> F: ...
    @overload
    def verify(self, func: None = None, *, tool: Optional[str] = None) -> Callable[[F], F]: ...

    def verify(self, func: Optional[F] = None, *, tool: Optional[str] = None) -> Any:
        """Decorates a tool function (sync or async): check, run, record.

        The arguments checked are the call's bound arguments as a dict (defaults applied; ``self``
        and ``cls`` left out). A blocked call raises :class:`~microloop.Blocked`
        (``LoopDetected``, ``RuleViolation`` or ``Halted``) without running the function; a
        ``warn`` runs it, sets ``last_warning`` and calls ``on_warn``. An exception raised by
        the function is recorded as an error, then re-raised. The wrapper keeps the function's
        name, docstring and signature; an async function stays async.

        >>> guard = Guardrail()
        >>> @guard.verify
        ... def search(q: str) -> str:
        ...     '''Search the web.'''
        ...     return "no results"
        >>> search("x"), search.__name__, search.__doc__
        ('no results', 'search', 'Search the web.')

        Args:
            tool: the tool name to check under (default: the function's ``__name__``).
        """
        if func is None:
            return lambda f: self.verify(f, tool=tool)
        name = tool or getattr(func, "__name__", None) or type(func).__name__
        sig = inspect.signature(func)
        params = list(sig.parameters.values())
        skip = params[0].name if params and params[0].name in ("self", "cls") else None
        var_kw = next((p.name for p in params if p.kind is inspect.Parameter.VAR_KEYWORD), None)

        # Fast path for the common signature (no *args): map positional arguments to their names
        # without inspect's bind, which costs several microseconds.
        simple = not any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
        positional = [p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        named = {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}
        required = {p.name for p in params if p.default is inspect.Parameter.empty and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)}
        defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        n_positional = len(positional)

        def arguments(a: tuple, kw: dict) -> Dict[str, Any]:
            if simple and len(a) <= n_positional and (var_kw is not None or named.issuperset(kw)):
                out = dict(defaults)
                out.update(zip(positional, a, strict=False))
                if not kw or not (kw.keys() & out.keys() - defaults.keys()):
                    out.update(kw)
                    if required.issubset(out):
                        if skip is not None:
                            out.pop(skip, None)
                        return out
            return slow_arguments(a, kw)

        def slow_arguments(a: tuple, kw: dict) -> Dict[str, Any]:
            try:
                bound = sig.bind(*a, **kw)
            except TypeError:
                return {"args": list(a), "kwargs": kw}  # the call itself will raise the TypeError
            bound.apply_defaults()
            out = dict(bound.arguments)
            if skip is not None:
                out.pop(skip, None)
            if var_kw is not None and var_kw in out:
                out.update(out.pop(var_kw))
            return out

        guard = self

        def before(a: tuple, kw: dict) -> ToolCall:
            call = ToolCall(guard, name, arguments(a, kw))
            v = call.verdict
            if v.action != "allow":
                if v.action != "warn":
                    raise blocked_error(v)
                if guard.on_warn is not None:
                    guard.on_warn(v)
            return call

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*a: Any, **kw: Any) -> Any:
                call = before(a, kw)
                out = await call.arun(func, *a, **kw)
                call.done(out)
                return out

            async_wrapper.__signature__ = sig  # type: ignore[attr-defined]
            return async_wrapper

        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            call = before(a, kw)
            out = call.run(func, *a, **kw)
            call.done(out)
            return out

        wrapper.__signature__ = sig  # type: ignore[attr-defined]
        return wrapper


class _StoredGuardrail(Guardrail):
    """A :class:`Guardrail` whose session lives in a store: each call loads it, runs, and saves it
    with a compare-and-set, made again on the newer session when another writer came first."""

    __slots__ = ()

    def _stored(self, op: Callable[[], Any], write: bool = True) -> Any:
        from .store import StoreConflict

        store = self._store
        with self._lock:
            for _ in range(store.max_attempts):
                version, snapshot = store.load()
                self._s = self._session_from(snapshot)
                result = op()
                if not write or store.save(version, Guardrail.save(self)):
                    return result
            raise StoreConflict(f"{store!r}: {store.max_attempts} saves in a row lost to other writers")

    def _session_from(self, snapshot: Optional[bytes]) -> Any:
        out = ffi.new("ml_session **")
        errp = ffi.new("ml_error **")
        if snapshot is None:
            status = lib.ml_session_new_from_engine(self._engine._e, out, errp)
        else:
            status = lib.ml_session_load(self._engine._e, snapshot, len(snapshot), 0, out, errp)
        if status:
            raise_status(status, errp)
        session = ffi.gc(out[0], lib.ml_session_free)
        if snapshot is None and self._tools:
            text = json.dumps(self._tools, ensure_ascii=False).encode("utf-8", "surrogatepass")
            status = lib.ml_session_set_tools(session, text, len(text), errp)
            if status:
                raise_status(status, errp)
        return session

    def check(self, tool: Union[str, bytes], args: Any = None) -> Verdict:
        verdict: Verdict = self._stored(lambda: Guardrail.check(self, tool, args))
        return verdict

    def record(self, call_id: int, output: Any = None, error: bool = False) -> None:
        self._stored(lambda: Guardrail.record(self, call_id, output, error))

    def set_tools(self, names: Iterable[str]) -> None:
        tools = list(names) if not isinstance(names, (str, bytes)) else names
        self._stored(lambda: Guardrail.set_tools(self, tools))

    def reset(self) -> None:
        self._stored(lambda: Guardrail.reset(self))

    def replay(self, conversation: Any, dialect: str = "openai") -> Dict[str, Any]:
        report: Dict[str, Any] = self._stored(lambda: Guardrail.replay(self, conversation, dialect))
        return report

    @property
    def stats(self) -> Stats:
        stats: Stats = self._stored(lambda: Guardrail.stats.fget(self), write=False)  # type: ignore[attr-defined]
        return stats

    def save(self) -> bytes:
        data: bytes = self._stored(lambda: Guardrail.save(self), write=False)
        return data


def _unpickle(policy: bytes, snapshot: bytes, tools: Optional[List[str]]) -> Guardrail:
    guard = Guardrail.load(snapshot, Engine(policy))
    guard._tools = tools
    return guard
