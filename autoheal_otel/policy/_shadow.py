"""The ``shadow`` section of the policy: another policy decided on the live inputs, obeyed by none.

A policy may name a shadow policy: ``{"shadow": {"policy": "candidate.json"}}`` (a policy
file, relative to this policy file's folder) or ``{"shadow": {"policy": {...}}}`` (the policy
itself, inline). A manager on a writable data directory then runs it in a process of its own
(:mod:`autoheal_otel.runtime.shadow`); no gate obeys it. Adding, removing or changing the section
is an ordinary policy edit: the hot reload puts it in force and records it with the policy.

Invariants: the section is absent from the policy's dump when no shadow is named (so a
policy without one keeps the version it always had); a shadow policy never names a shadow of
its own; a shadow policy that cannot be read or is invalid is a :class:`PolicyError` naming
``shadow.policy`` (and the field inside it) and the value, when the policy file is loaded or
reloaded (a bad reload keeps the last good policy, shadow included).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, field_validator

from ..base._errors import PolicyError
from ..base._fs import read_regular_file
from ._sections import _FieldError, _Section

__all__ = ["ShadowPolicy", "inline_shadow", "load_shadow"]

#: The policy type (the policy module passes its own: this module never imports it back).
P = TypeVar("P")

#: The longest shadow policy path accepted.
MAX_PATH = 4096


class ShadowPolicy(_Section):
    """A shadow policy, decided on the live inputs in a process of its own; no gate obeys it."""

    policy: str | dict[str, Any] = Field(
        description="The shadow policy: a policy file (a path relative to this policy file's"
        " folder) or the policy itself (an object, like this file)."
    )
    name: str = Field(
        "shadow",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Names the shadow log: <data_dir>/shadow/<name>-<writer>.jsonl.",
    )

    @field_validator("policy", mode="before")
    @classmethod
    def _check_policy(cls, value: Any) -> Any:
        if not isinstance(value, str | dict):
            raise _FieldError("", value, "must be a policy file path or a policy object")
        if isinstance(value, str):
            if not value.strip() or "\x00" in value or len(value) > MAX_PATH:
                raise _FieldError("", value, f"must be a policy file path (1-{MAX_PATH} chars)")
        elif "shadow" in value:
            raise _FieldError("shadow", value["shadow"], "is not allowed in a shadow policy")
        return value


def inline_shadow(section: ShadowPolicy, build: Callable[..., P]) -> P | None:
    """Return the inline shadow policy of ``section`` validated by ``build`` (the policy
    class), or None when it names a file.

    Raises:
        _FieldError: a field of the inline policy is invalid (``policy.<field>``).
    """
    if isinstance(section.policy, str):
        return None
    try:
        return build(**section.policy)
    except PolicyError as exc:
        field = ".".join(p for p in ("policy", exc.field) if p)
        raise _FieldError(field, exc.value, _rule(exc)) from exc


def load_shadow(section: ShadowPolicy, folder: Path, parse: Callable[..., P]) -> P:
    """Return the shadow policy ``section`` names: inline (validated), or a file read
    relative to ``folder`` and parsed by ``parse`` (the policy class's ``from_json``).

    Raises:
        PolicyError: the file cannot be read, is invalid, or names a shadow of its own
            (``field`` is ``shadow.policy`` or the field inside it).
    """
    if not isinstance(section.policy, str):
        return parse(json.dumps(section.policy))
    path = folder / section.policy
    try:
        try:
            text = read_regular_file(path)
        except OSError as exc:
            raise PolicyError(f"cannot read policy: {exc.strerror}", source=str(path)) from exc
        # Read as it is: a shadow's own shadow is refused below, never followed.
        shadow = parse(text, source=str(path))
    except PolicyError as exc:
        field = ".".join(p for p in ("shadow.policy", exc.field) if p)
        message = f"shadow.policy names {section.policy!r}, which is not usable: {exc}"
        raise PolicyError(message, field=field, value=section.policy) from exc
    if getattr(shadow, "shadow", None) is not None:
        raise PolicyError(
            f"shadow.policy names {section.policy!r}, which names a shadow of its own;"
            " a shadow policy cannot have one",
            field="shadow.policy",
            value=section.policy,
        )
    return shadow


def _rule(error: PolicyError) -> str:
    """Return the rule of a policy error's message ("<field> <rule>, but was <value>")."""
    text = error.message
    if error.field and text.startswith(error.field + " "):
        text = text[len(error.field) + 1 :]
    cut = text.rfind(", but was")
    return text[:cut] if cut >= 0 else text
