"""``hostaway-pipeline accounts ...`` end to end: real processes, real Postgres, real Dagster instance."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from hostaway_pipeline_tests.cli_runner import isolated_environment, run_cli

SECRET = "s3cr3t-Plain-Text-Secret-9f8e7d"


def all_text_in_database(url: str) -> str:
    """Every row of every table in every schema of the database, as text."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    chunks: list[str] = []
    with engine.connect() as connection:
        relations = connection.execute(sa.text(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        )).all()
        for schema, name in relations:
            rows = connection.execute(sa.text(f'SELECT t::text FROM "{schema}"."{name}" t')).scalars().all()
            chunks.extend(rows)
    engine.dispose()
    return "\n".join(chunks)


@pytest.fixture
def cli_env(tmp_path, make_database, secret_key):
    url = make_database("hostaway_cli")
    return isolated_environment(tmp_path, url, secret_key), url


def test_add_then_list_shows_the_account_and_registers_its_partition(cli_env):
    environment, url = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    added = run_cli("accounts", "add", "12345", "--name", "Beach Houses", environment=environment)
    assert added.returncode == 0, added.stderr
    assert "added account 12345" in added.stdout

    listed = run_cli("accounts", "list", environment=environment)
    assert listed.returncode == 0, listed.stderr
    assert "12345" in listed.stdout and "Beach Houses" in listed.stdout and "yes" in listed.stdout

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        partitions = connection.execute(sa.text(
            "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'hostaway_accounts'"
        )).scalars().all()
    engine.dispose()
    assert partitions == ["12345"]


def test_the_secret_is_never_stored_printed_or_passed_in_argv(cli_env, tmp_path):
    environment, url = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    added = run_cli("accounts", "add", "777", environment=environment)
    listed = run_cli("accounts", "list", environment=environment)
    assert added.returncode == 0 and listed.returncode == 0
    for output in (added.stdout, added.stderr, listed.stdout, listed.stderr):
        assert SECRET not in output
    assert SECRET not in " ".join(added.args)
    assert SECRET not in all_text_in_database(url)
    for directory, _, files in os.walk(tmp_path):
        for name in files:
            with open(os.path.join(directory, name), "rb") as handle:
                assert SECRET.encode() not in handle.read(), name


def test_the_secret_can_be_typed_at_a_no_echo_prompt(cli_env):
    import pty
    import subprocess
    import sys

    environment, _ = cli_env
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "hostaway_pipeline.cli", "accounts", "add", "31337"],
                               stdin=follower, stdout=follower, stderr=follower, env=environment)
    os.close(follower)
    seen = b""
    while b"secret" not in seen:
        seen += os.read(leader, 1024)
    os.write(leader, (SECRET + "\n").encode())
    assert process.wait(timeout=120) == 0
    output = seen
    try:
        while chunk := os.read(leader, 1024):
            output += chunk
    except OSError:
        pass
    os.close(leader)
    assert SECRET.encode() not in output  # not echoed
    assert b"added account 31337" in output


@pytest.mark.parametrize(
    ("arguments", "secret", "message"),
    [
        (("accounts", "add", "abc"), SECRET, "account id must be a positive integer"),
        (("accounts", "add", "-5"), SECRET, "account id must be a positive integer"),
        (("accounts", "add", "0"), SECRET, "account id must be a positive integer"),
        (("accounts", "add", "²"), SECRET, "account id must be a positive integer"),  # isdigit() but not int()
        (("accounts", "add", "١٢"), SECRET, "account id must be a positive integer"),  # non-ASCII digits
        (("accounts", "add", "99999999999999999999"), SECRET, "account id must be a positive integer"),
        (("accounts", "add", str(2**63)), SECRET, "account id must be a positive integer"),  # bigint + 1
        (("accounts", "disable", "²"), SECRET, "account id must be a positive integer"),
        (("accounts", "add", "55"), "   ", "client secret is empty"),
        (("accounts", "disable", "999"), SECRET, "account 999 is not registered"),
        (("accounts", "enable", "999"), SECRET, "account 999 is not registered"),
        (("accounts", "remove", "999"), SECRET, "account 999 is not registered"),
    ],
)
def test_bad_input_is_a_one_line_error_with_non_zero_exit_and_changes_nothing(cli_env, arguments, secret, message):
    environment, url = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = secret
    result = run_cli(*arguments, environment=environment)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    listed = run_cli("accounts", "list", environment=environment)
    assert "no accounts registered" in listed.stdout


def test_duplicate_add_is_refused_and_keeps_the_first_registration(cli_env):
    environment, _ = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    assert run_cli("accounts", "add", "42", "--name", "first", environment=environment).returncode == 0
    again = run_cli("accounts", "add", "42", "--name", "second", environment=environment)
    assert again.returncode != 0 and "already registered" in again.stderr
    assert "first" in run_cli("accounts", "list", environment=environment).stdout


def test_accounts_are_added_to_an_egress_pool_listed_with_it_and_moved(cli_env):
    environment, url = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    assert run_cli("accounts", "add", "11", environment=environment).returncode == 0
    added = run_cli("accounts", "add", "12", "--egress", "eu-west-1/203.0.113.7", environment=environment)
    assert added.returncode == 0, added.stderr
    assert "in egress pool eu-west-1/203.0.113.7" in added.stdout

    listed = run_cli("accounts", "list", environment=environment).stdout.splitlines()
    assert "egress" in listed[0]
    rows = {line.split()[0]: line.split() for line in listed[1:]}
    assert rows["11"][2] == "default" and rows["12"][2] == "eu-west-1/203.0.113.7"

    moved = run_cli("accounts", "set-egress", "11", "us-east-1", environment=environment)
    assert moved.returncode == 0, moved.stderr
    assert "moved from egress pool default to us-east-1" in moved.stdout
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        pools = dict(connection.execute(sa.text("SELECT account_id, egress_pool FROM hostaway.accounts")).all())
    engine.dispose()
    assert pools == {11: "us-east-1", 12: "eu-west-1/203.0.113.7"}


@pytest.mark.parametrize(("arguments", "message"), [
    (("accounts", "add", "13", "--egress", "office ip"), "egress pool must be 1 to 100 printable ASCII"),
    (("accounts", "add", "13", "--egress", "x" * 101), "egress pool must be 1 to 100 printable ASCII"),
    (("accounts", "set-egress", "999", "eu-1"), "account 999 is not registered"),
    (("accounts", "set-egress", "999", "é"), "egress pool must be 1 to 100 printable ASCII"),
])
def test_a_bad_egress_pool_or_account_is_one_line_and_changes_nothing(cli_env, arguments, message):
    environment, _ = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    _one_line_failure(run_cli(*arguments, environment=environment), message, SECRET)
    assert "no accounts registered" in run_cli("accounts", "list", environment=environment).stdout


def test_disable_enable_and_remove_never_delete_a_partition(cli_env):
    """A deleted partition fails every backfill that targets it: disabled and removed accounts keep theirs."""
    environment, url = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    for account in ("1", "2"):
        assert run_cli("accounts", "add", account, environment=environment).returncode == 0
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def partitions() -> set[str]:
        with engine.connect() as connection:
            return set(connection.execute(sa.text(
                "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'hostaway_accounts'"
            )).scalars())

    disabled = run_cli("accounts", "disable", "1", environment=environment)
    assert disabled.returncode == 0 and "hostaway-pipeline accounts enable 1" in disabled.stdout
    assert partitions() == {"1", "2"}
    assert "no" in run_cli("accounts", "list", environment=environment).stdout
    assert run_cli("accounts", "enable", "1", environment=environment).returncode == 0
    assert partitions() == {"1", "2"}
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO hostaway.listings (account_id, id, raw) VALUES (2, 10, '{}'::jsonb)"
        ))
    assert run_cli("accounts", "remove", "2", environment=environment).returncode == 0
    assert partitions() == {"1", "2"}
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM hostaway.listings")).scalar() == 1
    assert run_cli("accounts", "add", "2", environment=environment).returncode == 0
    assert run_cli("accounts", "remove", "2", "--purge", environment=environment).returncode == 0
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM hostaway.listings")).scalar() == 0
    assert partitions() == {"1", "2"}
    engine.dispose()


def test_accounts_add_creates_the_partition_only_after_the_account_row_commits(cli_env):
    """A partition visible before its row commits is what let the old sensor delete it again."""
    environment, url = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    assert run_cli("accounts", "add", "1", environment=environment).returncode == 0  # creates Dagster's tables
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:  # from Dagster's own transaction: is the account committed yet?
        connection.execute(sa.text("""
            CREATE FUNCTION public.partition_after_account() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.partitions_def_name = 'hostaway_accounts' AND NOT EXISTS (
                    SELECT 1 FROM hostaway.accounts WHERE account_id = NEW.partition::bigint) THEN
                    RAISE EXCEPTION 'partition % added before its account row committed', NEW.partition;
                END IF;
                RETURN NEW;
            END $$"""))
        connection.execute(sa.text("CREATE TRIGGER partition_after_account BEFORE INSERT ON dynamic_partitions "
                                   "FOR EACH ROW EXECUTE FUNCTION public.partition_after_account()"))
    added = run_cli("accounts", "add", "2", environment=environment)
    assert added.returncode == 0, added.stderr
    with engine.connect() as connection:
        assert set(connection.execute(sa.text(
            "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'hostaway_accounts'"
        )).scalars()) == {"1", "2"}
    engine.dispose()


def test_enabling_an_account_added_disabled_in_sql_gives_it_a_partition(cli_env):
    environment, url = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    assert run_cli("accounts", "add", "5", environment=environment).returncode == 0
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:  # as if the account had been added disabled, straight in SQL
        connection.execute(sa.text("UPDATE hostaway.accounts SET enabled = false"))
        connection.execute(sa.text("DELETE FROM dynamic_partitions WHERE partitions_def_name = 'hostaway_accounts'"))
    assert run_cli("accounts", "enable", "5", environment=environment).returncode == 0
    with engine.connect() as connection:
        assert connection.execute(sa.text(
            "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'hostaway_accounts'"
        )).scalars().all() == ["5"]
    engine.dispose()


def _one_line_failure(result, message: str, *never_shown: str) -> None:
    """A failure as the CLI must report it: non-zero exit, one line naming the cause, nothing secret."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr, result.stderr
    for value in never_shown:
        assert value not in result.stdout + result.stderr


def _account_ids(url: str) -> list[int]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        ids = list(connection.execute(sa.text("SELECT account_id FROM hostaway.accounts ORDER BY 1")).scalars())
    engine.dispose()
    return ids


def test_accounts_add_refuses_a_key_that_cannot_decrypt_what_is_stored(cli_env):
    environment, url = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    assert run_cli("accounts", "add", "1", environment=environment).returncode == 0
    other_key = Fernet.generate_key().decode()

    refused = run_cli("accounts", "add", "2", environment={**environment, "HOSTAWAY_SECRET_KEY": other_key})
    _one_line_failure(refused, "cannot decrypt the client secrets already stored for accounts 1", other_key, SECRET)
    assert _account_ids(url) == [1]


def test_rotate_key_moves_every_secret_to_the_new_key(cli_env):
    environment, url = cli_env
    old_key, new_key = environment["HOSTAWAY_SECRET_KEY"], Fernet.generate_key().decode()
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    for account in ("1", "2"):
        assert run_cli("accounts", "add", account, environment=environment).returncode == 0

    rotated = run_cli("secrets", "rotate-key", environment={**environment, "HOSTAWAY_NEW_SECRET_KEY": new_key})
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 2 client secrets" in rotated.stdout
    for value in (old_key, new_key, SECRET):
        assert value not in rotated.stdout + rotated.stderr
    assert SECRET not in all_text_in_database(url)

    # The old key no longer reads what is stored, so `accounts add` refuses it; the new key does.
    _one_line_failure(run_cli("accounts", "add", "3", environment=environment), "cannot decrypt")
    added = run_cli("accounts", "add", "3", environment={**environment, "HOSTAWAY_SECRET_KEY": new_key})
    assert added.returncode == 0, added.stderr


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no new key and no terminal", "set HOSTAWAY_NEW_SECRET_KEY or run in a terminal"),
        ("a malformed new key", "HOSTAWAY_NEW_SECRET_KEY is not a valid Fernet key"),
        ("the current key is wrong", "client secrets of accounts 1 decrypt with neither"),
        ("the database is unreachable", "database error, the rotation did not finish"),
    ],
)
def test_rotate_key_failures_are_one_line_and_change_nothing(cli_env, tmp_path, case, message):
    environment, url = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    assert run_cli("accounts", "add", "1", environment=environment).returncode == 0
    before = all_text_in_database(url)
    new_key, wrong_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    attempt = {**environment, "HOSTAWAY_NEW_SECRET_KEY": new_key}
    if case == "no new key and no terminal":
        del attempt["HOSTAWAY_NEW_SECRET_KEY"]
    elif case == "a malformed new key":
        attempt["HOSTAWAY_NEW_SECRET_KEY"] = "not-a-key"
    elif case == "the current key is wrong":
        attempt["HOSTAWAY_SECRET_KEY"] = wrong_key
    else:
        attempt["HOSTAWAY_DATABASE_URL"] = f"postgresql+psycopg2://postgres@/hostaway?host={tmp_path}/nowhere"

    _one_line_failure(run_cli("secrets", "rotate-key", environment=attempt, stdin=""), message,
                      new_key, wrong_key, environment["HOSTAWAY_SECRET_KEY"], "not-a-key", SECRET)
    assert all_text_in_database(url) == before


def test_the_new_key_can_be_typed_twice_at_a_no_echo_prompt(cli_env):
    import pty
    import subprocess
    import sys

    environment, _ = cli_env
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    assert run_cli("accounts", "add", "5", environment=environment).returncode == 0
    new_key = Fernet.generate_key().decode()
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "hostaway_pipeline.cli", "secrets", "rotate-key"],
                               stdin=follower, stdout=follower, stderr=follower, env=environment)
    os.close(follower)
    output = b""
    for prompt in (b"New secret key", b"same key again"):
        while prompt not in output:
            output += os.read(leader, 1024)
        os.write(leader, (new_key + "\n").encode())
    assert process.wait(timeout=120) == 0
    try:
        while chunk := os.read(leader, 1024):
            output += chunk
    except OSError:
        pass
    os.close(leader)
    assert new_key.encode() not in output  # not echoed
    assert b"re-encrypted 1 client secrets" in output
    environment["HOSTAWAY_SECRET_KEY"] = new_key
    assert run_cli("accounts", "add", "6", environment=environment).returncode == 0


@pytest.mark.embedded_only
@pytest.mark.skipif(bool(os.environ.get("HOSTAWAY_TEST_DATABASE_URL")), reason="exercises the embedded default")
def test_accounts_work_end_to_end_on_the_embedded_postgres_with_no_configuration(tmp_path, secret_key):
    environment = isolated_environment(tmp_path, None, secret_key)
    del environment["HOSTAWAY_SECRET_KEY"]  # the embedded default generates its own key
    environment["HOSTAWAY_CLIENT_SECRET"] = SECRET
    try:
        added = run_cli("accounts", "add", "9001", "--name", "Zoë's Lofts", environment=environment, timeout=240)
        assert added.returncode == 0, added.stderr
        listed = run_cli("accounts", "list", environment=environment)
        assert "9001" in listed.stdout and "Zoë's Lofts" in listed.stdout
        url = run_cli("db", "url", environment=environment).stdout.strip()
        assert url.startswith("postgresql+psycopg2://")
        key_file = tmp_path / "home" / "secret.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert SECRET not in all_text_in_database(url)

        old_key = key_file.read_bytes()
        rotated = run_cli("secrets", "rotate-key", environment=environment)  # a new key generated into the home
        assert rotated.returncode == 0, rotated.stderr
        assert "re-encrypted 1 client secrets" in rotated.stdout and str(key_file) in rotated.stdout
        new_key = key_file.read_bytes()
        assert new_key != old_key and len(new_key.split()) == 1 and key_file.stat().st_mode & 0o777 == 0o600
        for key in (old_key, new_key):
            assert key.decode().strip() not in rotated.stdout + rotated.stderr
        # What is stored reads with the new key: adding checks every stored secret decrypts.
        assert run_cli("accounts", "add", "9002", environment=environment).returncode == 0
    finally:
        stopped = run_cli("db", "stop", environment=environment)
    assert "stopped" in stopped.stdout
