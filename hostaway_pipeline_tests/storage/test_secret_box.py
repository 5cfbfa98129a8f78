"""The generated key file on a fresh home: processes racing to create it all end up with the same valid key."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from cryptography.fernet import Fernet

from hostaway_pipeline.storage.secret_box import KEY_FILE_NAME, _generated_key

PROCESSES = 6
ROUNDS = 40


def _race(root: str, barrier, results) -> None:
    for round_number in range(ROUNDS):
        barrier.wait()
        try:
            key = _generated_key(Path(root) / f"home{round_number}")
            results.put((round_number, key))
        except BaseException as error:  # reported to the test, never swallowed
            results.put((round_number, repr(error).encode()))


def test_processes_creating_the_key_file_at_once_all_get_the_same_valid_key(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [context.Process(target=_race, args=(str(tmp_path), barrier, results)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    keys: dict[int, list[bytes]] = {}
    for _ in range(PROCESSES * ROUNDS):
        round_number, key = results.get(timeout=120)
        keys.setdefault(round_number, []).append(key)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    for round_number, seen in sorted(keys.items()):
        home = tmp_path / f"home{round_number}"
        on_disk = (home / KEY_FILE_NAME).read_bytes()
        assert set(seen) == {on_disk}, f"round {round_number}: processes disagree or read a partial key"
        Fernet(on_disk)  # a valid key, not an empty or half-written file
        assert (home / KEY_FILE_NAME).stat().st_mode & 0o777 == 0o600
        assert os.listdir(home) == [KEY_FILE_NAME]  # no temporary files left behind
