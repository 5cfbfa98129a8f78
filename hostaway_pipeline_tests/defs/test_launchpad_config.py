"""Every run-config field of every job in the Definitions explains itself in the launchpad."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
from dagster._config import ConfigType, ConfigTypeKind

from hostaway_pipeline.definitions import defs


def config_fields(config_type: ConfigType, path: str) -> Iterator[tuple[str, dg.Field]]:
    """(dotted path, field) for every field of a config type, nested shapes and lists included."""
    if config_type.kind in (ConfigTypeKind.STRICT_SHAPE, ConfigTypeKind.PERMISSIVE_SHAPE, ConfigTypeKind.SELECTOR):
        for name, field in config_type.fields.items():  # type: ignore[attr-defined]
            yield f"{path}.{name}", field
            yield from config_fields(field.config_type, f"{path}.{name}")
    elif config_type.kind in (ConfigTypeKind.ARRAY, ConfigTypeKind.NONEABLE):
        yield from config_fields(config_type.inner_type, path)  # type: ignore[attr-defined]


def op_config_fields() -> dict[str, dg.Field]:
    found: dict[str, dg.Field] = {}
    for job in defs.resolve_all_job_defs():
        for op_def in job.graph.iterate_op_defs():
            if op_def.config_field is not None:
                found.update(config_fields(op_def.config_field.config_type, f"{job.name}:{op_def.name}"))
    return found


def test_every_run_config_field_has_a_description():
    fields = op_config_fields()
    # The walk reaches the configs it must: the reconciliation's assets and the webhook apply job.
    assert "reconcile_hostaway_account:hostaway__reservations.full_listing" in fields
    assert "reconcile_hostaway_account:hostaway__messages.max_failed_conversations" in fields
    assert "apply_hostaway_webhook_events:apply_webhook_events.first_event_id" in fields
    undescribed = sorted(path for path, field in fields.items() if len((field.description or "").split()) < 5)
    assert undescribed == [], f"config fields without a description for the launchpad: {undescribed}"


def shown(default: object) -> str:
    return str(default).lower() if isinstance(default, bool) else f"{default:g}"


def test_the_descriptions_of_our_reconciliation_fields_state_their_default():
    fields = op_config_fields()
    prefix = "reconcile_hostaway_account:hostaway__"
    for path in ("listings.allow_mass_delete", "reservations.full_listing", "reservations.full_listing_every_days",
                 "reservations.overlap_minutes", "messages.full_refresh", "messages.max_failed_conversations"):
        field = fields[prefix + path]
        assert f"Default: {shown(field.default_value)}." in field.description, path
