"""D11-D14: a user's template that loops, grows, recurses or breaks fails only the message it
was writing, naming its file and line; checking a folder never runs away or says
"unexpected"; and the worker that runs them holds no secret.

The payloads are those of the bad-input review (category 3). The budgets are set small
so each test ends soon; what is asserted is which message failed and why, never how long.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from plugin.compose.render import check_overrides, render_reminder, render_sms
from plugin.compose.sandbox import UserTemplates, user_templates
from plugin.config.settings import Settings, TemplateBudget
from plugin.errors import ConfigError, TemplateProblem
from tests.conftest import DEMO_NOW
from tests.test_render import reminder_for

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the memory budget is enforced on Linux"
)

#: Room enough to compile the templates on a busy machine, and small enough to end soon.
QUICK = TemplateBudget(time_limit=3.0, output_limit=20_000, memory_limit=64)


def with_template(
    settings: Settings, folder: Path, name: str, source: str | bytes, budget: TemplateBudget = QUICK
) -> tuple[Settings, Path]:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, bytes):
        path.write_bytes(source)
    else:
        path.write_text(source, encoding="utf-8")
    return replace(settings, templates=folder, template_budget=budget), path


@pytest.mark.parametrize(
    ("source", "why"),
    [
        # D11: a hundred thousand times a hundred thousand; lorem ipsum by the million.
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            r"took longer than 3 s \(\[templates\] time_limit\)",
        ),
        ("{{ lipsum(1000000) }}", r"took longer than 3 s|writes more than 20,000 characters"),
        # D11, D12: allocations of gigabytes, also those Jinja2 would fold while compiling.
        ("{{ (invoices * 100000000)|length }}", r"needs more than 64 MB of memory"),
        ("{{ '{:>2000000000}'.format(1) }}", r"needs more than 64 MB of memory"),
        ("{{ 'x' * 1000000000 }}", r"needs more than 64 MB of memory"),
        ("{{ (9 ** 1000000)|string|length }}", r"ValueError: Exceeds the limit"),
        # D14: recursion, by a macro and by including itself.
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", r"calls itself without end"),
        ("{% include 'email/body.txt.j2' %}", r"calls itself without end"),
        # Output: a modest loop that writes too much.
        ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", r"writes more than 20,000"),
        # D14: the sandbox's refusals, named instead of "unexpected".
        (
            "{{ ''.__class__.__mro__ }}",
            r"access to attribute '__class__' of 'str' object is unsafe",
        ),
        ("{{ customer.no_such_field }}", r"'.*Customer object' has no attribute 'no_such_field'"),
        ("{{ 1 / 0 }}", r"ZeroDivisionError"),
        ("{% include '/etc/passwd' %}", r"includes or imports '/etc/passwd', which is no template"),
    ],
)
def test_a_template_over_its_budget_fails_that_message_naming_file_and_line(
    demo_settings: Settings, tmp_path: Path, source: str, why: str
) -> None:
    body = "Dear client,\n\n" + source + "\n"
    settings, path = with_template(demo_settings, tmp_path / "mine", "email/body.txt.j2", body)
    with pytest.raises(TemplateProblem) as caught:
        render_reminder(reminder_for("en", 1), settings)
    assert re.search(why, str(caught.value)), str(caught.value)
    if "took longer" not in str(caught.value) or "line" in str(caught.value):
        assert str(caught.value).startswith(f"{path}, line 3: "), str(caught.value)
    # The next message is written: a fresh worker where the budget ended the last one.
    (tmp_path / "mine" / "email" / "body.txt.j2").write_text("Hello {{ greeting_name }}\n")
    good = replace(settings, templates=tmp_path / "mine")
    user_templates(tmp_path / "mine", QUICK).close()  # the edited file is compiled afresh
    assert render_reminder(reminder_for("en", 1), good).text.startswith("Hello Ada")


def test_a_worker_that_stops_answering_is_ended_by_the_parent(
    demo_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the template be stuck where the worker's own timer cannot reach it (one long
    step in C), the parent ends the worker after the time limit and a grace; a worker
    stopped with SIGSTOP is such a worker."""
    import signal

    import plugin.compose.sandbox as sandbox

    monkeypatch.setattr(sandbox, "GRACE", 0.5)
    budget = replace(QUICK, time_limit=2.0)
    settings, _ = with_template(
        demo_settings, tmp_path / "mine", "sms/message.txt.j2", "{{ t.sms() }}", budget
    )
    templates = user_templates(tmp_path / "mine", budget)
    templates.check()
    assert templates._worker is not None
    stuck = templates._worker
    os.kill(stuck.pid, signal.SIGSTOP)
    with pytest.raises(
        TemplateProblem, match=r"sms/message\.txt\.j2: took longer than 2 s .*stopped"
    ):
        render_sms(reminder_for("en", 1), settings)
    assert stuck.returncode == -signal.SIGKILL
    assert "NS-2026-10001" in render_sms(reminder_for("en", 1), settings).text


@pytest.mark.parametrize(
    ("name", "source", "why"),
    [
        # D13: errors found by compiling, not by parsing.
        (
            "email/subject.txt.j2",
            "{{ customer|no_such_filter }}\n",
            r", line 1: No filter named 'no_such_filter'",
        ),
        ("email/subject.txt.j2", b"caf\xe9 {{ count }}\n", r", line 1: is not UTF-8 text"),
        ("email/subject.txt.j2", "{% if %}\n", r", line 1: Expected an expression"),
        (
            "email/subject.txt.j2",
            "\n\n{{ settings.smtp }}\n",
            r", line 3: unknown variable 'settings'",
        ),
    ],
)
def test_a_broken_override_is_named_with_file_and_line_at_load(
    demo_settings: Settings, tmp_path: Path, name: str, source: str | bytes, why: str
) -> None:
    settings, path = with_template(demo_settings, tmp_path / "mine", name, source)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + why):
        check_overrides(settings)


def test_a_folder_in_place_of_a_template_is_named(demo_settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "mine" / "sms" / "message.txt.j2").mkdir(parents=True)
    settings = replace(demo_settings, templates=tmp_path / "mine", template_budget=QUICK)
    with pytest.raises(ConfigError, match=r"message\.txt\.j2: is not a file"):
        check_overrides(settings)


def test_checking_a_folder_folds_no_bomb(demo_settings: Settings, tmp_path: Path) -> None:
    """D12: Jinja2 folds constants while it compiles; in the worker that stays in budget."""
    source = "{{ 'x' * 1000000000 }}{{ (9 ** 1000000)|string|length }}\n"
    settings, path = with_template(demo_settings, tmp_path / "mine", "email/subject.txt.j2", source)
    assert check_overrides(settings) == ["email/subject.txt.j2"]
    with pytest.raises(TemplateProblem, match=re.escape(f"{path}, line 1: needs more than 64 MB")):
        render_reminder(reminder_for("en", 1), settings)


def test_the_worker_holds_no_secret(
    demo_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template cannot read the environment; should one ever find a way, nothing is there."""
    monkeypatch.setenv("KINDLY_SMTP_PASSWORD", "CANARY-SMTP")
    monkeypatch.setenv("KINDLY_SECRET_KEY", "CANARY-KEY")
    folder = tmp_path / "mine"
    with_template(demo_settings, folder, "email/subject.txt.j2", "{{ count }}\n")
    worker = UserTemplates(folder, QUICK)
    try:
        worker.check()
        assert worker._worker is not None
        environ = Path(f"/proc/{worker._worker.pid}/environ").read_bytes().split(b"\0")
    finally:
        worker.close()
    assert not [item for item in environ if b"CANARY" in item]
    assert not [item for item in environ if item.startswith(b"KINDLY_")]


def test_a_run_with_one_clients_template_failing_sends_the_others(
    demo_workspace: Path, tmp_path: Path
) -> None:
    """Done when: the others go out, the failure names the template and line, exit 3."""
    folder = demo_workspace / "mine"
    (folder / "email").mkdir(parents=True)
    (folder / "email" / "subject.txt.j2").write_text(
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}\n"
        "{% if customer.id == 'C01' %}{{ f(1) }}{% endif %}{{ t.subject() }}\n",
        encoding="utf-8",
    )
    config = demo_workspace / "kindly.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + '\n[templates]\nfolder = "mine"\ntime_limit = 2\n',
        encoding="utf-8",
    )
    kindly = [sys.executable, "-m", "plugin.app.cli", "--config", str(config)]
    wide = {**os.environ, "COLUMNS": "400"}
    done = subprocess.run(
        [*kindly, "run", "--at", DEMO_NOW.isoformat()],
        capture_output=True, text=True, cwd=demo_workspace, env=wide, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"{folder / 'email' / 'subject.txt.j2'}, line 1: calls itself without end" in done.stdout
    assert "unexpected" not in done.stdout + done.stderr
    history = subprocess.run(
        [*kindly, "history", "--json"],
        capture_output=True, text=True, cwd=demo_workspace, check=True,
    )  # fmt: skip
    sent = {
        row["customer_id"]
        for row in json.loads(history.stdout)
        if row["status"] == "sent" and row["stage"] != "appointment"
    }
    assert "C01" not in sent
    assert len(sent) == 10


def test_a_stage_no_wording_has_words_for_is_not_sent_empty(
    demo_settings: Settings, tmp_path: Path
) -> None:
    """D20: with a folder of one's own, a policy may name a stage Kindly has no words for;
    unless that folder gives it words, its message fails instead of going out empty."""
    settings, _ = with_template(
        demo_settings, tmp_path / "mine", "sms/message.txt.j2", "{{ t.sms() }}"
    )
    zeta = replace(reminder_for("en", 1), template="zeta")
    with pytest.raises(
        TemplateProblem, match=r"email/subject\.txt\.j2 writes nothing for the stage 'zeta' in 'en'"
    ):
        render_reminder(zeta, settings)
    words, _ = with_template(
        demo_settings,
        tmp_path / "mine",
        "email/subject.txt.j2",
        "{% if stage == 'zeta' %}Zeta{% else %}{{ t.subject() }}{% endif %}",
    )
    user_templates(tmp_path / "mine", QUICK).close()  # templates are read once per worker
    assert render_reminder(zeta, words).subject == "Zeta"


def test_kindlys_templates_never_load_what_the_sandbox_compiled(
    demo_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox compiles Kindly's own templates too (those a user did not override),
    into code that calls the sandbox's checks. Kept in the same bytecode cache, under the
    same name and source, the unsandboxed environment loaded it and every reminder failed
    with "'BundledEnvironment' object has no attribute 'call'"."""
    from plugin.compose.templates import bundled_environment

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    settings, _ = with_template(
        demo_settings, tmp_path / "mine", "sms/message.txt.j2", "{{ t.sms() }}"
    )
    render_reminder(reminder_for("en", 1), settings)  # the worker compiles email/*, lang/en
    user_templates(tmp_path / "mine", QUICK).close()
    bundled_environment.cache_clear()
    try:
        assert "NS-2026-10001" in render_reminder(reminder_for("en", 1), demo_settings).text
    finally:
        bundled_environment.cache_clear()
