"""The Jinja2 environments that hold Kindly's templates and a user's own, and rendering
with them.

Kindly's own templates, part of its code, run in this process without the sandbox, which
would otherwise check every attribute they read (a third of the time spent in them). A
user's templates are code Kindly did not write: they run in Jinja2's sandbox, and only in
a separate process that holds no secrets and has a time, memory and output budget
(:mod:`plugin.compose.sandbox`), so a template that loops, grows or recurses without end
fails the one message it was writing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from plugin.errors import ConfigError

__all__ = [
    "CONTEXT_VARIABLES",
    "FIX_TEMPLATE",
    "OutputTooLong",
    "bundled_environment",
    "check_folder",
    "render_with",
    "templates_dir",
    "user_environment",
]

#: Everything a template may use. An override that names anything else is refused.
CONTEXT_VARIABLES = frozenset(
    {
        "language", "stage", "tone", "greeting_name", "customer", "company", "bank",
        "invoices", "count", "total_due", "payment_reference", "next_step_date",
        "attachments", "qr_cid", "sender", "sms_due_date", "sms_pay_by", "sms_link",
        "channel", "recipient", "sent_at", "numbers", "amount", "formal",
        "letter_date", "letter_place", "qr_data_uri", "appointment", "charges",
        "reason", "fallback", "t", "unconfirmed", "amount_to_pay", "charged", "sms_brief",
        "destination_country", "company_address", "signature", "lead_invoices",
        "lead_count", "lead_total", "lead_numbers", "also_due", "also_count", "last_reminded",
        "reminders_before", "also_reminded", "charged_with", "sms_compact",
        "contact",
    }
)  # fmt: skip


FIX_TEMPLATE = "Fix that template in your [templates] folder, or remove it to use Kindly's own."


class OutputTooLong(BaseException):
    """A template wrote more than its output budget. A BaseException, so that no
    ``except Exception`` inside Jinja2 takes it for an error it may recover from."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"writes more than {limit:,} characters ([templates] output_limit)")


@cache
def templates_dir() -> Path:
    """Where the bundled templates are."""
    package = Path(__file__).resolve().parent.parent
    # A wheel carries them inside the package; an editable install runs from the source
    # tree, where they sit at the top of the repository (design card D7).
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("Kindly's templates are missing from this installation")


@cache
def bundled_environment() -> Any:
    """Kindly's own templates, unsandboxed."""
    import jinja2

    class BundledEnvironment(jinja2.Environment):
        def getattr(self, obj: Any, attribute: str) -> Any:
            # Kindly's templates read dicts (invoice rows, labels, charges) with a dot, which
            # Jinja2 tries as an attribute first: an AttributeError raised and caught on
            # each of a hundred reads per e-mail. Ours name no key that is a dict method.
            if type(obj) is dict and attribute in obj:
                return obj[attribute]
            return super().getattr(obj, attribute)

    return _configured(BundledEnvironment, jinja2.FileSystemLoader(str(templates_dir())))


def user_environment(folder: Path) -> Any:
    """The user's templates in ``folder``, Kindly's for the rest, all sandboxed."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    class UserEnvironment(SandboxedEnvironment):
        # Not worked out while compiling (Jinja2 folds constants): '9 ** 1000000' or
        # "'x' * 10 ** 9" run when the template does, where its budget and line are known.
        intercepted_binops = frozenset({"*", "**"})

    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(str(folder)), jinja2.FileSystemLoader(str(templates_dir()))]
    )
    return _configured(UserEnvironment, loader)


def _configured(kind: type[Any], loader: Any) -> Any:
    import jinja2

    environment = kind(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        bytecode_cache=_bytecode_cache(kind.__name__),
    )
    # A macro imported into an HTML template returns its text marked safe, though the
    # wording files are plain text holding client data; "|text" unmarks it, so the HTML
    # template escapes it like any other value.
    environment.filters["text"] = _as_plain_text
    return environment


def _as_plain_text(value: object) -> str:
    return str.__str__(str(value))


def _bytecode_cache(kind: str) -> Any:
    """Compiled templates kept in the user's cache folder between runs, one folder per
    kind of environment.

    Compiling the six languages' wording costs about 0.4 s in every process that renders;
    Jinja2 checks each cached entry against its template's source, so an edited template
    (the user's own included) is compiled afresh. But it keys an entry by the template's
    name and file alone: the sandbox's code for one of Kindly's templates (which calls the
    sandbox's checks) and the plain environment's code for the same file must not meet in
    one folder, or either loads the other's. Without a writable cache folder, none.
    """
    import jinja2
    from platformdirs import user_cache_path

    folder = user_cache_path("kindly", appauthor=False) / "templates" / kind
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


def render_with(
    env: Any, context: dict[str, Any], names: Sequence[str], output_limit: int | None = None
) -> list[str]:
    """Render templates that share one context, with ``t``: the wording of its language.

    ``t`` is ``lang/<language>.j2`` bound to the context, built once for all of them:
    building it (some thirty macros) costs more than rendering a template that uses it.
    With ``output_limit``, a template that writes more characters raises OutputTooLong at
    the line that went over.
    """
    module = env.get_template(f"lang/{context['language']}.j2").make_module(context)
    shared = {**context, "t": module}
    if output_limit is None:
        return [env.get_template(name).render(shared) for name in names]
    return [_bounded(env.get_template(name), shared, output_limit) for name in names]


def _bounded(template: Any, context: dict[str, Any], limit: int) -> str:
    parts = []
    size = 0
    stream = template.generate(context)
    for part in stream:
        size += len(part)
        if size > limit:
            # Thrown into the template, so that its traceback shows the line writing.
            stream.throw(OutputTooLong(limit))
        parts.append(part)
    return "".join(parts)


def check_folder(env: Any, folder: Path) -> list[str]:
    """Check a folder of the user's own templates; return the templates it overrides.

    Raises:
        ConfigError: a file is no template of Kindly's, cannot be read as UTF-8 text, does
            not compile, or uses a variable Kindly does not provide; names file and line.
    """
    import jinja2
    from jinja2 import meta, nodes

    bundled = {p.relative_to(templates_dir()).as_posix() for p in templates_dir().rglob("*.j2")}
    overridden = []
    for path in sorted(folder.rglob("*.j2")):
        name = path.relative_to(folder).as_posix()
        if name not in bundled:
            raise ConfigError(
                f"{path}: Kindly has no template {name!r} to override",
                hint="Copy the file you want to change from Kindly's templates folder.",
            )
        if not path.is_file():
            raise ConfigError(
                f"{path}: is not a file; Kindly expects its template {name!r}", hint=FIX_TEMPLATE
            )
        try:
            source = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            line = path.read_bytes()[: exc.start].count(b"\n") + 1
            raise ConfigError(
                f"{path}, line {line}: is not UTF-8 text", hint="Save the template as UTF-8."
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"{path}: cannot be read ({exc.strerror})", hint=FIX_TEMPLATE
            ) from None
        try:
            tree = env.parse(source, name=name, filename=str(path))
            # Compiling finds what parsing does not: an unknown filter or test.
            unknown = meta.find_undeclared_variables(tree) - CONTEXT_VARIABLES
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"{path}, line {exc.lineno}: {exc.message}", hint=FIX_TEMPLATE
            ) from None
        if unknown:
            first = sorted(unknown)[0]
            line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == first), 1)
            known = ", ".join(sorted(CONTEXT_VARIABLES))
            raise ConfigError(
                f"{path}, line {line}: unknown variable {first!r}",
                hint=f"Templates can use: {known}.",
            )
        overridden.append(name)
    return overridden
