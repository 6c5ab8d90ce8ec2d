"""Turning a suite of cases and a harness factory into a test class pytest collects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from integrations.base import Capability, Connector

from .harness import HarnessFactory


def lacks_capability(cls: type[Connector], capability: Capability) -> str | None:
    """The skip reason when ``cls`` does not declare ``capability``; None when it does."""
    if capability in cls.capabilities:
        return None
    return (
        f"{cls.__name__} does not declare Capability.{capability.name} "
        f"({capability.label}): the case does not apply"
    )


def _skipped(name: str, reason: str) -> Any:
    def case(self: object) -> None:
        raise AssertionError("a skipped case ran")  # pragma: no cover

    case.__name__ = case.__qualname__ = name
    return pytest.mark.skip(reason=reason)(case)


def suite(
    cases: type,
    factory: HarnessFactory[Any],
    *,
    skip: Mapping[str, str | None] | None = None,
    leave_out: Iterable[str] = (),
    name: str | None = None,
) -> type:
    """A subclass of ``cases`` driving ``factory``'s harness: each case in ``skip`` whose
    reason is not None is skipped with it; those in ``leave_out`` are not generated (an
    alternative case stands in for them)."""
    namespace: dict[str, Any] = {"factory": factory, "__module__": cases.__module__}
    for case, reason in (skip or {}).items():
        assert callable(getattr(cases, case, None)), f"{cases.__name__} has no case {case}"
        if reason is not None:
            namespace[case] = _skipped(case, reason)
    for case in leave_out:
        assert callable(getattr(cases, case, None)), f"{cases.__name__} has no case {case}"
        namespace[case] = None  # pytest collects nothing under this name
    title = name or f"{factory.name}{cases.__name__}"
    made = type(title, (cases,), namespace)
    made.__qualname__ = title
    return made
