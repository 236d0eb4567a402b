"""hero_tracing: write durable, observable flows as plain Python.

::

    from hero_tracing import ask_user, flow, instrument

    @flow(inputs={"topic": "string"}, outputs={"summary": "string"})
    def summarise(topic):
        with flow.step("search", topic=topic):
            pages = search(topic)            # re-runs on replay: not memoized
        text = draft(pages)                  # a @flow call: memoized
        if not ask_user.confirm(f"Publish {topic!r}?"):
            raise flow.Failed("the editor said no")
        return {"summary": text}

Inside a play every ``@flow`` call is a span and a memoized step; outside one (``python
my_flow.py``) everything passes through and the functions just run. Standard library only,
cheap to import. The rest of this docstring is the wire protocol between a flow process and
the hero_logic service, and it is the source of truth for both sides.

Wire protocol
=============

Transport. The executor binds a Unix stream socket per play before starting the flow
process, and passes its path in ``HERO_FLOW_SPAN_SOCK``. The flow process opens one
connection (lazily, on its first event) and keeps it for its whole life. Every message, both
ways, is one JSON object of UTF-8 text on one line, ending with ``\\n``; strict JSON only
(no NaN or Infinity, no lone surrogates). Each has a ``type``. Times are integers,
milliseconds since the epoch. The flow sends; the service only ever answers ``request``
lines. The service skips lines that are malformed or longer than 1 MiB (1,048,576 bytes
before the newline), so the SDK keeps every line below that: it truncates log text, error
text and oversized tag values, and turns a step output that is too big into a failure of
that step.

Flow → service events:

``span_start``
    ``span_id`` (str; for a ``@flow`` call the first 20 hex digits of its ``step_key``, so
    every run of the play reports a step under the same span; for other spans 16 hex digits
    random per process, then a hex counter), ``parent_id`` (``""`` or a span id; the root
    span's parent is ``HERO_FLOW_PARENT_SPAN``), ``name``, ``kind`` (``flow_root`` | ``step``
    | ``rpc`` | ``subflow`` | ``other``), ``start_ms``. Optional: ``tags`` {}, ``source_file``,
    ``source_line``, ``step_key`` (on ``@flow`` calls and invocations), ``rpc_service``,
    ``rpc_method`` (on ``rpc`` spans), ``child_play_sid``, ``status`` (``"running"`` when
    absent; ``"replayed"`` for a step answered from the cache, which then also carries
    ``end_ms`` and gets no ``span_end``: one line per replayed step; a step taken from a
    forked-from play also carries the tag ``reused_from``: that play's sid). On a ``@flow``
    call: ``input``, its arguments by parameter name as JSON (``canonical_json`` of them, a
    value JSON cannot hold as its repr), or, when that is over 4 KiB (``MAX_TRACE_BYTES``)
    or not strict JSON, a string of it cut to 4 KiB with a note; ``parallel`` (true) on the
    first call or pause under a parent that is made from another thread or asyncio task than
    the one the parent's body runs in (strict replay does not hold such a parent's calls to
    their positions). On the zero-length span of a pause answered from the replay file:
    ``shape_key``, the pause's shape key. ``deadline_ms`` (on an
    attempt of a step with ``@flow(timeout=...)``: when it must have ended; see Step policies).
``span_tag``
    ``span_id``, ``tags`` {} — merged into the span's tags. A ``child_play_sid`` tag also
    sets the span's ``child_play_sid``.
``span_log``
    ``span_id``, ``text`` (at most 64 KiB).
``span_end``
    ``span_id``, ``end_ms``, ``status`` (``ok`` | ``failed`` | ``cancelled`` | ``timed_out``
    | ``replayed``); optional ``error``: the reason given to ``flow.Failed``, or
    ``"ExcType: message\\n<traceback>"`` for any other exception (at most 64 KiB). A span
    that a pause unwinds through gets no ``span_end``: it is still open when the process
    exits with status 75.
``step_output``
    ``span_id``, ``step_key``, ``output`` (any JSON) — sent when a ``@flow`` call returns,
    just before its ``span_end``, so a step whose span ended ``ok`` has its output stored.
    Also ``shape_key`` (the call's version-free key, see Forks below) and, when the output's
    JSON is over 4 KiB, ``output_preview``: that JSON cut to 4 KiB, as a string (what the
    span record shows as its ``output``). A step reused from a forked-from play is sent
    again as this play's own ``step_output`` (or ``step_failed``), right after its replayed
    ``span_start``.
    The call returns this output as JSON gives it back (a tuple as a list, a dict's int keys
    as strings), the same value every replay returns. A value JSON cannot hold (a set, a
    datetime, NaN) is no output: the step fails with ``flow.Failed`` naming the type, and
    that failure is recorded like any other.
``step_failed``
    ``span_id``, ``step_key``, ``shape_key``, ``error_type`` (the exception's class as ``module.QualName``,
    e.g. ``builtins.ValueError``, ``__hero_flow__.Declined``), ``message`` (its ``str``, at
    most 64 KiB); optional ``args`` (its arguments, a JSON array, present only when they are
    JSON and under 16 KiB; an ``OSError``'s are ``[errno, strerror, filename]``) and
    ``traceback`` (``"ExcType: message\n<traceback>"``, at most 64 KiB) — sent when a
    ``@flow`` call raises an ``Exception`` (``flow.Failed`` included), just before its
    ``span_end`` (status ``failed``). A pause unwinding through the call is not a failure,
    nor is an exception raised while one unwinds, nor a ``BaseException`` that is not an
    ``Exception`` (cancellation, ``SystemExit``): none is sent for them, and the call runs
    again on the next run. After a ``@flow(checkpoint=True)`` call's ``step_failed`` the
    SDK sends a ``checkpoint`` request too.
``output``
    ``output`` — the entry flow's return value, sent by the boot stub just before exit 0.
``pause``
    ``resume_id``, ``name``, ``schema`` (JSON schema of the answer, or null), ``ui`` (a form
    hint such as ``{"kind": "choice", "prompt": ..., "options": [...]}``, or null),
    ``span_id`` (the span that asked), ``asked_at``, ``shape_key`` (the pause's shape key);
    optional ``parallel`` (as on ``span_start``). Optional (durable waits, below):
    ``kind`` (``input`` when absent, ``timer``, ``event``), ``wake_at`` (ms: a timer's wake
    time, or an event wait's timeout; required for ``timer``), ``event_key`` (required for
    ``event``: at most 512 bytes, no control characters), ``group`` and ``branch`` (the
    branches of one ``flow.wait_any`` share a ``group``; its timeout is the ``timer`` branch
    ``timeout``). The process then exits with status 75. Several pauses may be sent by one run
    (parallel branches each ask). A pause the service cannot take (an unknown ``kind``, a timer
    without ``wake_at``, a bad ``event_key``) fails the play, naming it.
``request``
    ``id`` (int, increasing per connection), ``method``, ``params`` {}. The service answers
    on the same connection with a ``response`` line, ``{"type": "response", "id": n,
    "result": ...}`` or ``{"type": "response", "id": n, "error": {"code": int, "message":
    str}}``. The SDK files answers by id, so the service may answer concurrent requests in
    any order.

Request methods:

``flow_source`` {``name``, ``version_sid``}
    → {``source``, ``version_sid``, ``entry_flow``}: the source of a library flow (its
    current version when ``version_sid`` is ``""``), for an in-process ``flow.invoke``.
``start_child_play`` {``name``, ``version_sid``, ``inputs``, ``parent_span_id``, ``step_key``}
    → {``play_sid``}: start a child play for ``flow.invoke(spawn=True)``. ``step_key``
    identifies the invocation across re-runs of the parent, so a service can hand back the
    child it already started for it instead of starting another.
``wait_child_play`` {``play_sid``}
    → {``status``, ``output``, ``error``} once the child is terminal or ``awaiting_resume``.
``checkpoint`` {``step_key``}
    → {``ok``: true} once every line the flow sent before it is stored durably (a service
    must store a connection's earlier lines before it answers any request on it); sent after
    a ``@flow(checkpoint=True)`` step's ``step_output`` or ``step_failed``.
``secret_get`` {``name``}
    → {``value``}: a secret the entry flow declares in ``@flow(secrets=[...])`` (for
    ``flow.secret``), or an error naming what is undeclared or unset. The service redacts the
    value from every later event of the run (``[secret:NAME]``).
``check_answer`` {``resume_id``, ``name``, ``schema``, ``payload``}
    → {``ok``: true}, or an error (-32602 naming what breaks the schema): a prefilled answer
    checked as ``play_resume`` checks a payload, before the pause returns it.

Replay
======

The executor may pass ``HERO_FLOW_REPLAY_FILE``, a JSON object ``{"steps": {step_key:
output}, "failures": {step_key: failure}, "resumes": {resume_id: payload}, "woken":
{resume_id: {"via", "at", "payload", "event_id"?}}, "waits": {resume_id: {"wake_at"}},
"prefill": {resume_id or pause name: payload}, "prefill_only": bool}`` (every key
optional). ``resumes`` holds the answers to ``input`` waits; ``woken`` the ``timer`` and
``event`` waits that ended: ``via`` is ``timer`` (a timer fell due), ``timeout`` (an event
wait's timeout passed), ``event`` (an event came: ``payload``, ``event_id``) or ``rpc`` (woken
early by ``play_resume``); ``at`` when. ``waits`` gives each still-open wait its deadline as
first reported, so a re-run reports the same ``wake_at``. A
``failure`` is the ``step_failed`` event's ``error_type``, ``message``, ``args`` (when it has
them) and ``traceback``. The service puts in ``steps`` the last ``step_output`` of each step
key and in ``failures`` the last ``step_failed`` of each key that has no later output; a
play retried with ``reuse_steps`` gets the old play's outputs but not its failures.

The file may also hold ``recorded`` (what the play's earlier runs did, for strict replay,
below) and ``reuse`` (for a fork, below).

``step_key = sha1(version_sid|parent_path|flow_name|canonical_json(kwargs)|ordinal)`` in hex,
where ``kwargs`` are the call's arguments by parameter name (a method's ``self``/``cls``
left out, extra positionals under ``"*args"``), ``canonical_json`` is ``json.dumps`` with
sorted keys, ``(",", ":")`` separators and ``ensure_ascii=False``, ``parent_path`` is ``""``
for the outermost call and the enclosing call's own ``step_key`` otherwise (inside an
in-process ``flow.invoke``: the invocation's key, ``@``, and the version that ran), and
``ordinal`` counts earlier calls with the same name and arguments under the same parent (0
first). A call in a thread with no open span counts as under the play's root call. A step
found in ``steps`` does not run: its span is sent ``replayed`` and its cached output
returned. A step found in ``failures`` does not run either: its span is sent ``replayed``
and the call raises the recorded exception again — an instance of the recorded class when
that class is found (in a loaded module, else by importing the longest importable prefix of
``error_type``) and ``cls(*args)`` (``cls(message)`` without ``args``) gives exactly that
class with exactly ``message`` as its ``str``; otherwise ``flow.StepFailed(error_type,
message)``. The first run raises the same: the step's own exception when a replay would
rebuild its class, else that StepFailed, chained to it (``raise ... from``). The entry flow's
own exception always reaches the boot stub as it is. ``flow.step`` / ``flow.span`` blocks and ``instrument`` spans are not memoized and
do not change the parent path. ``flow.invoke(name, ...)`` is memoized as a step named
``invoke:<name>`` whose arguments are ``{"inputs": ..., "spawn": ..., "version_sid": ...}``.

``resume_id = sha1(version_sid|parent_path|pause:name|ordinal)``, the ordinal counting
earlier pauses of that name under the same parent. A pause returns ``resumes[resume_id]``
when present, else ``prefill[resume_id]``, else ``prefill[name]`` (a prefill is first sent
to ``check_answer`` when the pause has a schema, and a refused one fails the flow); else, when
``prefill_only`` is true, it fails the flow naming the pause; else it sends ``pause`` and
the process exits with status 75. A pause answered from the file gets a zero-length span
``pause:<name>`` (kind ``other``, tag ``resume_id``): status ``replayed`` for a resume,
``ok`` with tag ``prefilled: true`` for a prefill.

Strict replay
======

``recorded`` is ``{"calls": [[parent, id, name, kind, input], ...], "parallel": [parent,
...]}``: every ``@flow`` call and pause of the play's earlier runs, in the order they first
reported them (a call by its ``span_start``, a pause by its ``pause`` event or its answered
span), where ``parent`` is the step key of the call it was made in (the nearest span at or
above it that has a ``step_key``; ``""`` for the entry flow), ``id`` its step key or resume
id, ``name`` its flow or pause name, ``kind`` one of ``called`` (did not finish),
``finished`` (has a ``step_output`` or ``step_failed``, or was replayed), ``asked`` (not
answered, or prefilled), ``answered``, and ``input`` its ``input`` as JSON text cut to 120
characters. ``parallel`` lists the parents some of whose calls were marked ``parallel``.
Only calls whose ``span_start`` has ``input``, and pauses with a ``shape_key``, are entries
(those the SDK gives positions); the service sends ``recorded`` once there is one.

Each call and pause takes the next *position* under its parent (counting both, in the order
they start). Unless the entry flow is ``@flow(strict_replay=False)``, a run fails as
``nondeterministic`` (its root span ends ``failed`` with an error starting
``"nondeterministic: "``, which becomes the play's, and the process exits 1):

- at a call or pause, before it runs, when its parent is in no ``parallel`` list (the
  record's or this run's) and the record has another ``id`` at that position under that
  parent; every later call of the run then fails the same way;
- when the entry flow returns, raises or pauses without having reached a ``finished`` or
  ``answered`` entry of the record, unless one of that entry's ancestors was replayed from
  the caches (its body, and so the entry, did not run).

The error names the recorded call (name, arguments, span id = ``id[:20]``), its position
(``call n inside 'parent name'``) and what this run did instead. The entry flow of an
in-process ``flow.invoke`` does not change the play's choice; a child play
(``spawn=True``) is held to its own record.

Forks
=====

``shape_key = blake2s(parent_shape|flow_name|canonical_json(kwargs)|ordinal)`` (BLAKE2s
with a 16-byte digest, in hex: 32 digits), with ``parent_shape`` the enclosing call's shape
key and ``ordinal`` that of the step key; the entry flow's is ``blake2s(|flow_name||ordinal)``
(its arguments left out), and an in-process invocation's children take the invocation's
shape key (no version). A pause's is ``blake2s(parent_shape|pause:name|ordinal)``. No version sid goes in, so a call keeps its shape
key on every version of the flow and with other inputs to the play.

``reuse`` is ``{"play_sid": ..., "steps": {shape_key: output}, "failures": {shape_key:
failure}, "resumes": {shape_key: payload}}``: what the play this one was forked from
finished, and was answered, before the step it was forked at. A call found in neither
``steps`` nor ``failures`` by its step key is looked up here by its shape key: it is
replayed as from its own record, tagged ``reused_from``, and recorded again as this play's
own (``step_output`` / ``step_failed`` under its step key). A pause not found in
``resumes`` by its resume id returns ``reuse.resumes[shape_key]`` when present (its span
``replayed``, tagged ``reused_from``).
=======
Durable waits
=============

``flow.sleep`` / ``flow.sleep_until`` / ``flow.wait_event`` / ``flow.wait_any`` are memoized
steps named ``sleep``, ``wait_event`` and ``wait_any`` whose arguments are ``{"seconds": s}`` or
``{"until_ms": ms}``, ``{"key": k, "timeout": s or null}`` and ``{"branches": {name: {"event":
key} or {"answer": name}}, "timeout": s or null}``. Inside one, each thing waited for has the
resume id ``wait_id(step_key, name) = sha1(step_key|wait:name)``, ``name`` being ``timer``,
``event``, ``branch:<branch name>`` or ``timeout``. The step returns at once when its wait is in
``woken`` (or, for an answer branch, ``resumes`` / ``prefill``); a ``wait_event`` woken
``via: timeout`` raises ``flow.WaitTimeout``. Otherwise the step reports its waits as
``pause`` events (``wake_at`` from ``waits`` when present, else now + the duration) and the
process exits 75 — except a sleep whose remaining time is at most ``HERO_FLOW_SLEEP_EXIT_MS``,
which sleeps in the process and ends the step ``ok``. A finished wait's step output is
``{"woke_at", "via"}`` (sleep), the event's payload (wait_event) or ``[branch, value]``
(wait_any), replayed like any step's. A wait longer than ``HERO_FLOW_MAX_WAIT_MS`` is a
``ValueError`` in the flow.

Step policies
=============

A ``@flow(retries=..., timeout=...)`` call runs as attempts, each a span named ``attempt N``
(kind ``step``, tag ``attempt: N``) under the step's span, keyed
``attempt_key(step_key, N) = sha1(step_key|attempt:N)`` (the attempt's inner steps key under
it). A failed attempt sends ``step_failed`` under its attempt key; a later run finds it in
``failures`` and sends nothing for it (its span keeps its status). Between attempts the step
waits in a durable wait step ``retry_delay`` with arguments ``{"after_attempt": N}`` (a
``timer`` wait named ``retry_delay``). The step's own ``step_output`` / ``step_failed`` is
the last attempt's. An attempt of a step with a ``timeout`` carries ``deadline_ms`` on its
``span_start``; if it is still open then, the service stops the process, records for it a
``step_failed`` with ``error_type`` ``hero_tracing._spans.StepTimeout`` (``args``: its message)
and a ``span_end`` with status ``timed_out``, ends the run's other open spans ``pending`` and
runs the play again at once.

Environment
===========

``HERO_FLOW_SPAN_SOCK`` (unset: pass-through mode), ``HERO_FLOW_PLAY_SID``,
``HERO_FLOW_VERSION_SID``, ``HERO_FLOW_PARENT_SPAN``, ``HERO_FLOW_SOURCE_FILE``,
``HERO_FLOW_INPUT_FILE`` (a JSON object of inputs), ``HERO_FLOW_ENTRY`` (the entry flow's
name; otherwise the only ``@flow`` in the file, else the one named ``main``, else the last),
``HERO_FLOW_REPLAY_FILE``, ``HERO_FLOW_PACKAGES`` (the version's environment, a site
directory the boot stub adds to ``sys.path``), ``HERO_FLOW_SERVICES`` (a JSON object: declared
service socket name → path, for ``flow.service_socket``), ``HERO_FLOW_NETWORK`` (``on`` |
``off``: off installs a guard that fails the first lookup or internet socket naming
``@flow(network=True)``). In a play the boot stub also turns ``print``, ``sys.stderr`` writes
and ``logging`` output into ``span_log`` events of the current span (bounded; see
``_output``). ``HERO_FLOW_SLEEP_EXIT_MS`` (a sleep this short, in ms, stays in the
process; default 2000), ``HERO_FLOW_MAX_WAIT_MS`` (the longest wait a flow may ask for).
Exit statuses: 0 success, 75 awaiting resume, 2 no ``@flow``
entry, 1 failed (the reason on stderr).
"""

from __future__ import annotations

from ._flow import flow as flow
from ._instrument import instrument as instrument
from ._pause import ask_user as ask_user

__all__ = ["ask_user", "flow", "instrument"]

__version__ = "0.1.0"
