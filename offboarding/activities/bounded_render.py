"""A playbook's template, rendered in a child process with bounds on its time and memory.

Jinja's sandbox keeps a template from reaching what it must not, but not from costing
what it likes: ``{% for i in range(100000) %}{% for j in range(100000) %}`` behind a
condition the load check's sample never meets, or ``"x".ljust(10**10)``, ran inside the
email activity on the worker's event loop and stalled every offboarding on that worker,
then the next worker the retry reached. Playbook templates are written by ops, not by
developers, and no input may stop a worker: so each is rendered in a child Python with a
CPU and memory limit and a deadline, which a runaway template exhausts alone. Packaged
templates are ours and render in the worker as before.

The child is this module (``python -m``), started once and kept: each request (a template
and its contexts, pickled: from us) on its stdin, each answer in JSON on its stdout (what a
template printed is never unpickled). A child that ran past its bounds is killed and the
next render starts another."""

from __future__ import annotations

import json
import os
import pickle
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any, Literal, TypeVar

import jinja2
import jinja2.sandbox
from jinja2.exceptions import SecurityError

CPU_SECONDS = 5
MEMORY_BYTES = 1 << 30
WALL_SECONDS = 20
"""Above the CPU limit: a child that sleeps or waits is stopped too."""
MAX_TEXT = 1_000_000
"""Characters a message's text may render to."""
TEXT_OPTIONS: dict[str, Any] = {"undefined": jinja2.StrictUndefined, "trim_blocks": True,
                                "lstrip_blocks": True}
"""How a message's text template is read, packaged or a playbook's own: a misspelt variable
fails the message instead of printing nothing."""
E = TypeVar("E", bound=jinja2.Environment)


def filters(env: E) -> E:
    env.filters["money"] = lambda v, cur="": f"{cur} {Decimal(str(v)):,.2f}".strip()
    # Totals are printed with the sign they carry into the balance, so they add up.
    env.filters["minus"] = lambda v: -Decimal(str(v)) or Decimal("0.00")
    return env


def override_environment() -> jinja2.sandbox.SandboxedEnvironment:
    """Where a playbook's own templates are compiled, here and when the playbook is checked
    (``playbooks``): sandboxed, since ops write them and not developers, with the packaged
    text templates' options and filters. Never autoescaped: they are plain text, as a
    ``.txt`` is to ``select_autoescape`` (a string template would be escaped by default)."""
    return filters(jinja2.sandbox.SandboxedEnvironment(autoescape=False, **TEXT_OPTIONS))


class TooCostly(Exception):
    """The template ran past its bounds; the text says which."""


@dataclass(frozen=True)
class Rendered:
    """One context's outcome: its text, or the error the template raised with it."""

    text: str | None = None
    error: str | None = None
    """``TypeName: message``."""
    kind: Literal["syntax", "undefined", "security", "other"] | None = None
    line: int | None = None
    message: str | None = None


class Renderer:
    """One child process, reused for every render (a start costs a Python and jinja2's
    import; a render, a round trip through a pipe), replaced when a template ran it past
    its bounds. Renders are taken one at a time."""

    def __init__(self, cpu_seconds: int = CPU_SECONDS, memory_bytes: int = MEMORY_BYTES,
                 wall_seconds: float = WALL_SECONDS) -> None:
        self.cpu_seconds, self.memory_bytes = cpu_seconds, memory_bytes
        self.wall_seconds = wall_seconds
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def render_all(self, text: str, contexts: list[dict[str, Any]]) -> list[Rendered]:
        """``text`` rendered with each context; TooCostly if it ran past its bounds."""
        request = pickle.dumps((text, contexts, self.cpu_seconds, self.memory_bytes))
        with self._lock:
            child = self._child = self._child or _start()
            assert child.stdin is not None and child.stdout is not None
            try:
                child.stdin.write(len(request).to_bytes(8, "big") + request)
                child.stdin.flush()
                deadline = time.monotonic() + self.wall_seconds
                answer = _read(child.stdout, 8, deadline)
                body = _read(child.stdout, int.from_bytes(answer, "big"), deadline)
            except (OSError, TooCostly) as err:
                child.kill()
                child.wait()
                self._child = None
                if isinstance(err, TooCostly):
                    raise
                raise TooCostly(f"it used more than {self.cpu_seconds} s of CPU or "
                                f"{self.memory_bytes >> 20} MiB of memory (the renderer "
                                f"exited with {child.returncode})") from None
        return [Rendered(**r) for r in json.loads(body)]


def _start() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=_child_env())


def _read(stream: IO[bytes], size: int, deadline: float) -> bytes:
    """Exactly ``size`` bytes, or TooCostly at the deadline, or OSError at the end."""
    fd, data = stream.fileno(), b""
    while len(data) < size:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            raise TooCostly("it rendered past its deadline")
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise OSError("the renderer exited")
        data += chunk
    return data


RENDERER = Renderer()


def render_all(text: str, contexts: list[dict[str, Any]]) -> list[Rendered]:
    """``text`` rendered with each context, in the shared bounded child."""
    return RENDERER.render_all(text, contexts)


def _child_env() -> dict[str, str]:
    """Only what the child needs to find our code: none of the worker's settings (its
    SMTP password, its keys) reach a process that runs ops' text."""
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(sys.path),
            "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"}


def _render(compiled: dict[str, jinja2.Template], env: jinja2.Environment, source: str,
            context: dict[str, Any]) -> Rendered:
    try:
        if source not in compiled:
            if len(compiled) >= 64:
                compiled.clear()
            compiled[source] = env.from_string(source)
        text = compiled[source].render(**context)
    except jinja2.TemplateSyntaxError as err:
        return Rendered(error=f"TemplateSyntaxError: {err}", kind="syntax", line=err.lineno,
                        message=err.message)
    except jinja2.TemplateError as err:
        kind: Literal["undefined", "security", "other"] = (
            "undefined" if isinstance(err, jinja2.UndefinedError) else
            "security" if isinstance(err, SecurityError) else "other")
        return Rendered(error=f"{type(err).__name__}: {err}", kind=kind,
                        line=getattr(err, "lineno", None) or _line(err), message=err.message)
    except Exception as err:  # the template's own fault: a division by zero, a bad index
        return Rendered(error=f"{type(err).__name__}: {err}", kind="other", line=_line(err),
                        message=str(err))
    if len(text) > MAX_TEXT:
        return Rendered(error=f"it renders to more than {MAX_TEXT:,} characters",
                        kind="other", message=f"more than {MAX_TEXT:,} characters")
    return Rendered(text=text)


def _line(err: BaseException) -> int | None:
    """The template's line an error was raised on (jinja2 rewrites its traceback so the
    template's frames carry the template's own line numbers)."""
    tb, line = err.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _main() -> None:
    """Answer requests until the worker closes the pipe: each may use the request's seconds
    of CPU beyond what the child has used so far (the limit counts a process's whole
    life), and its bytes of memory."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    _, hard_memory = resource.getrlimit(resource.RLIMIT_AS)
    env = override_environment()
    compiled: dict[str, jinja2.Template] = {}
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while header := stdin.read(8):
        text, contexts, cpu, memory = pickle.loads(stdin.read(int.from_bytes(header, "big")))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        resource.setrlimit(resource.RLIMIT_CPU, (int(usage.ru_utime + usage.ru_stime) + cpu,
                                                 hard))
        if hard_memory != resource.RLIM_INFINITY:
            memory = min(memory, hard_memory)
        resource.setrlimit(resource.RLIMIT_AS, (memory, hard_memory))
        results = [_render(compiled, env, text, context) for context in contexts]
        answer = json.dumps([r.__dict__ for r in results]).encode()
        stdout.write(len(answer).to_bytes(8, "big") + answer)
        stdout.flush()


if __name__ == "__main__":
    _main()
