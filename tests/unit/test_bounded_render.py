"""A playbook's template that costs without bound: refused when the playbook is checked,
unbuildable when it is sent (a problem for ops), and never a stalled worker. Rendered in
the bounded child (``activities/bounded_render.py``), here with one second of CPU."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError

from offboarding.activities import bounded_render
from offboarding.activities.bounded_render import Renderer
from offboarding.activities.email import Mailer
from offboarding.config import Settings
from offboarding.models.records import EmailRequest
from offboarding.playbooks.templates import template_problems

CONTEXT = {"client_name": "Acme Analytics Ltd"}
FINE = "Subject: Hello {{ client_name }}\nBody.\n"


@pytest.fixture(autouse=True)
def one_second() -> Iterator[Renderer]:
    renderer = Renderer(cpu_seconds=1, wall_seconds=10)
    saved, bounded_render.RENDERER = bounded_render.RENDERER, renderer
    yield renderer
    bounded_render.RENDERER = saved


def _costly(depth: int, size: int) -> str:
    """Nested loops whose iterations multiply past anything a message needs, behind the
    condition a load check's sample may never meet."""
    opens = "".join(f"{{% for i{n} in range({size}) %}}" for n in range(depth))
    closes = "{% endfor %}" * depth
    return ("Subject: Hello\n{% if client_name == 'Acme Analytics Ltd' %}"
            f"{opens}.{closes}{{% endif %}}\n")


@settings(max_examples=4, deadline=None)
@given(st.integers(2, 3).flatmap(lambda d: st.tuples(
    st.just(d), st.integers(int(3e9 ** (1 / d)), 100_000))))
def test_any_runaway_loop_is_stopped_and_the_next_render_goes_on(shape: tuple[int, int]
                                                                  ) -> None:
    started = time.monotonic()
    with pytest.raises(bounded_render.TooCostly, match="more than 1 s of CPU"):
        bounded_render.render_all(_costly(*shape), [CONTEXT])
    assert time.monotonic() - started < 10
    [fine] = bounded_render.render_all(FINE, [CONTEXT])
    assert fine.text == "Subject: Hello Acme Analytics Ltd\nBody."


@pytest.mark.parametrize(("text", "why"), [
    ('Subject: x\n{{ "x".ljust(10 ** 10) }}', "MemoryError"),
    ('Subject: x\n{{ "x" * 2000000 }}', "more than 1,000,000 characters"),
])
def test_a_template_that_would_fill_memory_fails_alone(text: str, why: str) -> None:
    [result] = bounded_render.render_all(text, [CONTEXT])
    assert result.text is None and why in str(result.error)


def test_the_load_check_refuses_a_costly_template_in_words() -> None:
    problems = template_problems("notice", _costly(2, 100_000).replace(
        "client_name == 'Acme Analytics Ltd'", "true").encode(), "mail/notice.txt")
    assert problems == ["mail.templates: mail/notice.txt is too costly to render: it used "
                        "more than 1 s of CPU or 1024 MiB of memory (the renderer exited "
                        "with -24); expected a message's text"]


def test_a_costly_message_is_unbuildable_for_ops_and_the_next_one_is_sent(
        tmp_path: Path) -> None:
    mailer = Mailer(Settings(_env_file=None, state_dir=tmp_path))

    def request(text: str) -> EmailRequest:
        return EmailRequest(workflow_id="offboarding-acme", key="notice", template="notice",
                            to=["priya@client.example"], context=CONTEXT, template_text=text)

    with pytest.raises(ApplicationError, match="too costly") as refused:
        mailer.render(request(_costly(2, 100_000)))
    assert refused.value.type == "MessageUnbuildable" and refused.value.non_retryable
    assert mailer.render(request(FINE))["Subject"] == "Hello Acme Analytics Ltd"
