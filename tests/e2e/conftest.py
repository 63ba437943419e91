from __future__ import annotations

import pytest

from tests.stack import Stack


@pytest.fixture(scope="session")
def stack(database_url, db_engine, tmp_path_factory):
    """The whole host-mode stack, private to this test session."""
    running = Stack(workdir=tmp_path_factory.mktemp("stack"), database_url=database_url,
                    engine=db_engine)
    try:
        running.start()
    except BaseException:
        print(running.logs())
        running.stop()
        raise
    yield running
    running.stop()
