"""Run config (the launchpad) can never choose where client secrets and rows go.

The API base URL and the database URL come from the deployment's environment only: a run config naming
them fails validation, so no run sends a client secret to another host or touches another database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from hostaway_pipeline.definitions import defs
from hostaway_pipeline.defs.jobs import reconcile_account_job
from hostaway_pipeline.defs.partitions import ACCOUNT_PARTITIONS_NAME, partition_key
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline.storage.account_registry import AccountRegistry
from hostaway_pipeline.storage.engine import get_engine
from hostaway_pipeline.storage.secret_box import SecretBox

ACCOUNT = 4242
TIME_SCALE = 50.0
LISTINGS = dg.AssetKey(["hostaway", "listings"])
OVERRIDES = [("hostaway_api", "base_url"), ("warehouse", "database_url")]
# Run config a job cannot run without (so validation gets as far as the resources).
REQUIRED_RUN_CONFIG: dict[str, dict] = {
    "apply_hostaway_webhook_events": {"ops": {"apply_webhook_events": {"config": {"first_event_id": 0,
                                                                                  "last_event_id": 0}}}},
}


def _jobs() -> list[dg.JobDefinition]:
    return list(defs.get_repository_def().get_all_jobs())


def _field_names(config_type: Any, seen: set[int] | None = None) -> set[str]:
    """Every field name anywhere in a config type (the launchpad's whole form)."""
    seen = set() if seen is None else seen
    if id(config_type) in seen:
        return set()
    seen.add(id(config_type))
    names: set[str] = set()
    for name, field in (getattr(config_type, "fields", None) or {}).items():
        names.add(name)
        names |= _field_names(field.config_type, seen)
    for inner in ("inner_type", "scalar_type", "non_scalar_type"):
        if getattr(config_type, inner, None) is not None:
            names |= _field_names(getattr(config_type, inner), seen)
    return names


@pytest.mark.parametrize(("resource", "field"), OVERRIDES)
def test_no_job_accepts_a_run_config_naming_the_api_or_the_database(resource, field):
    for job in _jobs():
        assert field not in _field_names(job.run_config_schema.config_type), job.name
        required = REQUIRED_RUN_CONFIG.get(job.name, {})
        with pytest.raises(dg.DagsterInvalidConfigError, match=f'unexpected config entry "{field}"'):
            dg.validate_run_config(job, {**required, "resources": {
                resource: {"config": {field: "http://attacker.invalid/v1"}}}})
        # The same path takes what is configurable: the refusal is about the field, not a wrong path.
        dg.validate_run_config(job, {**required, "resources": {"hostaway_api": {"config": {"message_workers": 2}}}})


@pytest.fixture
def stand_ins(monkeypatch, engine, pipeline_settings_env, secret_key) -> Iterator[tuple[SimulatorServer, ...]]:
    """The deployment's Hostaway (in the environment) and a host a run config would like to send secrets to."""
    with (SimulatorServer(accounts={ACCOUNT: 5}, seed=11, time_scale=TIME_SCALE) as real,
          SimulatorServer(accounts={ACCOUNT: 5}, seed=11, time_scale=TIME_SCALE) as attacker):
        window = 10.0 / TIME_SCALE
        monkeypatch.setenv("HOSTAWAY_API_BASE_URL", real.base_url)
        monkeypatch.setenv("HOSTAWAY_RATE_LIMIT_PER_IP", f"15/{window:g}s")
        monkeypatch.setenv("HOSTAWAY_RATE_LIMIT_PER_ACCOUNT", f"20/{window:g}s")
        monkeypatch.setenv("HOSTAWAY_EGRESS_ID", f"fixed-destinations-{real.port}")
        AccountRegistry(engine, SecretBox(secret_key)).add(ACCOUNT, real.client_secret(ACCOUNT),
                                                           egress_pool=f"fixed-destinations-{real.port}")
        yield real, attacker


def _launch(run_config: dict) -> dg.ExecuteInProcessResult | None:
    """Launch the production job as the launchpad would; None when the run config is refused."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, [partition_key(ACCOUNT)])
    try:
        return defs.resolve_job_def(reconcile_account_job.name).execute_in_process(
            instance=instance, partition_key=partition_key(ACCOUNT), asset_selection=[LISTINGS],
            run_config=run_config, raise_on_error=False,
        )
    except dg.DagsterInvalidConfigError:
        return None


def test_a_run_config_naming_another_api_host_never_sends_it_anything(stand_ins):
    real, attacker = stand_ins
    _launch({"resources": {"hostaway_api": {"config": {"base_url": attacker.base_url}}}})
    assert attacker.stats()["total_calls"] == 0  # above all, never POST /accessTokens with the client secret

    result = _launch({})  # the control: the same launch without the override does reach the deployment's API
    assert result is not None and result.success
    assert real.stats()["total_calls"] > 0 and attacker.stats()["total_calls"] == 0


def test_a_run_config_naming_another_database_never_touches_it(stand_ins, make_database, database_url):
    other_url = make_database("hostaway_other")
    _launch({"resources": {"warehouse": {"config": {"database_url": other_url}}}})
    other = sa.create_engine(other_url, poolclass=sa.pool.NullPool)
    with other.connect() as connection:
        schemas = set(connection.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars())
    other.dispose()
    assert "hostaway" not in schemas  # never migrated, never written

    result = _launch({})  # the control: without the override the run writes to the deployment's database
    assert result is not None and result.success
    with get_engine(database_url).connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM hostaway.listings")).scalar() > 0
