"""The policy: every tunable of the library, validated, with the defaults of the design.

Invariants:
- every field has a default, so ``PolicyConfig()`` is the complete default policy;
- unknown keys are rejected (a typo never silently falls back to a default);
- probabilities are finite and in [0, 1]; the degraded threshold is >= the normal one and
  <= its cap; windows are > 0 s; counts are >= 1;
- every number has an upper bound (``MAX_SECONDS``, ``MAX_COUNT``) that the clock, DuckDB and
  the log can carry, so a policy that validates always runs and is always recorded;
- per-workflow overrides are merged over the global sections and validated as a whole at load
  time, so ``for_workflow`` never fails;
- ``load(dump(p)) == p`` and ``version`` is a hash of the canonical dump.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from ..base._errors import PolicyError
from ..base._fs import read_regular_file, write_atomic
from ._calibration import CalibrationPolicy
from ._fleet import FleetPolicy, redact_url
from ._retention import RetentionPolicy
from ._sections import (
    AuditPolicy,
    BreakerPolicy,
    ConfidencePolicy,
    DegradedPolicy,
    GlobalBreakerPolicy,
    HotReloadPolicy,
    QuarantinePolicy,
    RollbackPolicy,
    RunningPolicy,
    StepBreakerPolicy,
    VersioningPolicy,
    WatchdogPolicy,
    WorkflowBreakerPolicy,
    WorkflowPolicy,
    _FieldError,
    _Section,
)
from ._shadow import ShadowPolicy, inline_shadow, load_shadow

__all__ = [
    "AuditPolicy",
    "BreakerPolicy",
    "ConfidencePolicy",
    "DegradedPolicy",
    "GlobalBreakerPolicy",
    "HotReloadPolicy",
    "PolicyConfig",
    "QuarantinePolicy",
    "RollbackPolicy",
    "RunningPolicy",
    "ShadowPolicy",
    "StepBreakerPolicy",
    "VersioningPolicy",
    "WatchdogPolicy",
    "WorkflowBreakerPolicy",
    "WorkflowPolicy",
]

POLICY_SCHEMA_VERSION: Literal[1] = 1

_OVERRIDABLE = {
    "confidence": "confidence",
    "running": "running",
    "degraded": "degraded",
    "quarantine": "quarantine",
    "watchdog": "watchdog",
}
_OVERRIDABLE_BREAKERS = {"step": "step_breaker", "workflow": "workflow_breaker"}


class PolicyConfig(_Section):
    """The whole auto-heal policy (see ``config/auto_heal_policy.json``).

    Build it in code (every field has the design's default), or load it from JSON with
    :meth:`load`; either way invalid values raise :class:`PolicyError` naming the field.
    ``workflows`` maps a workflow id to partial sections (``confidence``, ``breakers.step``,
    ``breakers.workflow``, ``running``, ``degraded``, ``quarantine``, ``watchdog``) merged over
    the global ones.
    """

    schema_ref: str | None = Field(None, alias="$schema", description="For editors; ignored.")
    schema_version: Literal[1] = POLICY_SCHEMA_VERSION
    confidence: ConfidencePolicy = ConfidencePolicy()
    breakers: BreakerPolicy = BreakerPolicy()
    running: RunningPolicy = RunningPolicy()
    degraded: DegradedPolicy = DegradedPolicy()
    quarantine: QuarantinePolicy = QuarantinePolicy()
    watchdog: WatchdogPolicy = WatchdogPolicy()
    rollback: RollbackPolicy = RollbackPolicy()
    versioning: VersioningPolicy = VersioningPolicy()
    audit: AuditPolicy = AuditPolicy()
    hot_reload: HotReloadPolicy = HotReloadPolicy()
    calibration: CalibrationPolicy = CalibrationPolicy()
    fleet: FleetPolicy = FleetPolicy()
    retention: RetentionPolicy = RetentionPolicy()
    workflows: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-workflow overrides, merged over the global policy."
    )
    shadow: ShadowPolicy | None = Field(
        None,
        description="A shadow policy decided on the live inputs in a process of its own;"
        " no gate obeys it (absent: none).",
    )

    _resolved: dict[str, WorkflowPolicy] = PrivateAttr(default_factory=dict)
    _base: WorkflowPolicy | None = PrivateAttr(default=None)
    _version: str = PrivateAttr(default="")
    _shadow: PolicyConfig | None = PrivateAttr(default=None)

    def __init__(self, /, **data: Any) -> None:
        # PolicyError is not a ValueError, so pydantic lets it through unwrapped.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _translate(exc) from exc

    @model_validator(mode="after")
    def _resolve_overrides(self) -> PolicyConfig:
        base = WorkflowPolicy(
            confidence=self.confidence,
            step_breaker=self.breakers.step,
            workflow_breaker=self.breakers.workflow,
            running=self.running,
            degraded=self.degraded,
            quarantine=self.quarantine,
            watchdog=self.watchdog,
        )
        self._base = base
        self._resolved = {wid: _merge_override(base, wid, ov) for wid, ov in self.workflows.items()}
        if self.shadow is not None:
            try:
                self._shadow = inline_shadow(self.shadow, PolicyConfig)
            except _FieldError as exc:
                raise _FieldError(f"shadow.{exc.field}", exc.value, _rule_of(exc)) from exc
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        self._version = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        return self

    # -- reading -------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """Return a short hash of the canonical policy: equal policies, equal versions."""
        return self._version

    @property
    def shadow_policy(self) -> PolicyConfig | None:
        """Return the shadow policy ``shadow`` names, once read (None: none, or a file not
        read yet: see :meth:`resolve_shadow`)."""
        return self._shadow

    def resolve_shadow(self, folder: str | os.PathLike[str]) -> None:
        """Read the shadow policy file ``shadow.policy`` names, relative to ``folder`` (the
        policy file's; :meth:`load` does it). Nothing when no file is named.

        Raises:
            PolicyError: the shadow policy cannot be read or is invalid (``shadow.policy``).
        """
        if self.shadow is not None and self._shadow is None:
            self._shadow = load_shadow(self.shadow, Path(folder), PolicyConfig.from_json)

    def for_workflow(self, workflow_id: str) -> WorkflowPolicy:
        """Return the effective sections for one workflow (overrides merged in)."""
        resolved = self._resolved.get(workflow_id)
        if resolved is not None:
            return resolved
        assert self._base is not None  # set by the validator
        return self._base

    # -- (de)serialization ---------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PolicyConfig:
        """Read and validate a policy file.

        Raises:
            PolicyError: the file is missing, not JSON (or nested too deeply to read), or a
                field is invalid; ``field`` is the dotted path of the first bad field and the
                message names the value. Nothing else: any policy that cannot be read is a
                ``PolicyError`` naming the file.
        """
        source = Path(path)
        try:
            text = read_regular_file(source)
        except OSError as exc:
            raise PolicyError(
                f"cannot read policy: {exc.strerror}", field="", source=str(source)
            ) from exc
        config = cls.from_json(text, source=str(source))
        try:
            config.resolve_shadow(source.parent)
        except PolicyError as exc:
            exc.source = str(source)
            raise
        return config

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "policy") -> PolicyConfig:
        """Parse and validate policy JSON (see :meth:`load`)."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PolicyError(f"not valid JSON: {exc}", field="", source=source) from exc
        except RecursionError as exc:  # a policy is never that deep: refuse, never raise past
            raise PolicyError(
                "not a usable policy: JSON nested too deeply", field="", source=source
            ) from exc
        if not isinstance(data, dict):
            raise PolicyError(
                f"the policy must be a JSON object, but was {type(data).__name__}",
                field="",
                value=data,
                source=source,
            )
        try:
            return cls(**data)
        except PolicyError as exc:
            exc.source = source
            raise
        except RecursionError as exc:  # deep per-workflow overrides: refused like bad JSON
            raise PolicyError(
                "not a usable policy: a value is nested too deeply", field="", source=source
            ) from exc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyConfig:
        """Validate a policy given as a mapping (see :meth:`load`)."""
        return cls.from_json(json.dumps(dict(data)))

    def to_dict(self) -> dict[str, Any]:
        """Return the complete policy as JSON-ready data (aliases as in the file)."""
        # No shadow, no section: a policy without one keeps the version it always had.
        leave_out = {"schema_ref"} if self.shadow is not None else {"schema_ref", "shadow"}
        return self.model_dump(mode="json", by_alias=True, exclude=leave_out)

    def to_record(self) -> dict[str, Any]:
        """Return :meth:`to_dict` with secrets redacted: what the audit log records.

        The fleet URL's password (and user name) become ``***``; the password's own
        ``password_env`` / ``password_file`` name where it lives, never what it is.
        """
        data = self.to_dict()
        data["fleet"]["url"] = redact_url(data["fleet"]["url"])
        return data

    def dump_json(self) -> str:
        """Return the complete policy as indented JSON."""
        data = self.to_dict()
        if self.schema_ref is not None:
            data = {"$schema": self.schema_ref, **data}
        return json.dumps(data, indent=2) + "\n"

    def dump(self, path: str | os.PathLike[str]) -> None:
        """Write the policy to ``path`` atomically (a reader never sees half a file)."""
        write_atomic(Path(path), self.dump_json())

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """Return the JSON Schema of the policy file, for editors and validators."""
        schema = cls.model_json_schema(by_alias=True, mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = "autoheal-otel policy"
        return schema


def _merge_override(
    base: WorkflowPolicy, workflow_id: str, override: Mapping[str, Any]
) -> WorkflowPolicy:
    """Merge one workflow's partial sections over ``base`` and validate the result."""
    prefix = f"workflows.{workflow_id}"
    merged: dict[str, Any] = {}
    for key, value in override.items():
        if key in _OVERRIDABLE:
            target = _OVERRIDABLE[key]
            merged[target] = _merge_section(getattr(base, target), value, f"{prefix}.{key}")
        elif key == "breakers":
            if not isinstance(value, Mapping):
                raise _FieldError(f"{prefix}.breakers", value, "must be an object")
            for scope, section in value.items():
                if scope not in _OVERRIDABLE_BREAKERS:
                    raise _FieldError(
                        f"{prefix}.breakers.{scope}",
                        section,
                        "is not overridable per workflow (allowed: step, workflow)",
                    )
                target = _OVERRIDABLE_BREAKERS[scope]
                merged[target] = _merge_section(
                    getattr(base, target), section, f"{prefix}.breakers.{scope}"
                )
        else:
            allowed = ", ".join([*_OVERRIDABLE, "breakers"])
            raise _FieldError(f"{prefix}.{key}", value, f"is not overridable (allowed: {allowed})")
    return base.model_copy(update=merged)


def _merge_section(current: BaseModel, override: Any, path: str) -> BaseModel:
    if not isinstance(override, Mapping):
        raise _FieldError(path, override, "must be an object")
    data = current.model_dump(mode="json", by_alias=True)
    data.update(override)
    try:
        return type(current).model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        ctx_error = err.get("ctx", {}).get("error")
        sub = ".".join(str(p) for p in err["loc"])
        if isinstance(ctx_error, _FieldError):
            sub = ".".join(p for p in (sub, ctx_error.field) if p)
            raise _FieldError(f"{path}.{sub}", ctx_error.value, _rule_of(ctx_error)) from exc
        raise _FieldError(f"{path}.{sub}", err.get("input"), _lower(err["msg"])) from exc


def _rule_of(error: _FieldError) -> str:
    text = str(error)
    return text[len(error.field) + 1 : text.rfind(", but was")]


def _lower(msg: str) -> str:
    msg = msg.removeprefix("Value error, ").removeprefix("Input ")
    return msg[:1].lower() + msg[1:]


def _translate(exc: ValidationError) -> PolicyError:
    """Turn pydantic's error list into one PolicyError that names the first bad field."""
    errors = exc.errors()
    err = errors[0]
    loc = ".".join(str(p) for p in err["loc"])
    ctx_error = err.get("ctx", {}).get("error")
    if isinstance(ctx_error, _FieldError):
        # ``loc`` is the section; the consistency check names the field inside it (or, for
        # overrides, the whole path).
        field = (
            ctx_error.field
            if ctx_error.field.startswith("workflows.")
            else ".".join(p for p in (loc, ctx_error.field) if p)
        )
        value = ctx_error.value
        rule = _rule_of(ctx_error)
    else:
        field, value = loc, err.get("input")
        rule = "is not a known setting" if err["type"] == "extra_forbidden" else _lower(err["msg"])
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    if isinstance(value, dict | list) and len(repr(value)) > 80:
        shown = f"{type(value).__name__} of {len(value)} items"
        message = f"{field} {rule}, but was a {shown}{more}"
    else:
        message = f"{field} {rule}, but was {value!r}{more}"
    return PolicyError(message, field=field, value=value)
