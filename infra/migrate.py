"""Bring the database schema up to date, then make sure the zone lookup is
filled. Run once before the API and the worker start:

    python -m infra.migrate

Several copies may run at once (compose restarts, parallel CI jobs): a
session-level advisory lock lets one migrate while the others wait.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from infra.db import get_engine
from infra.settings import SettingsError, get_settings
from infra.zones import ensure_zones

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to differ from the zone loader's lock.
_MIGRATION_LOCK = 0x7A78_0001


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    config = alembic_config()
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        try:
            connection.commit()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"),
                               {"k": _MIGRATION_LOCK})
            connection.commit()


def main() -> int:
    from infra.logs import configure_logging

    configure_logging("migrate")
    try:
        engine = get_engine(get_settings())
    except SettingsError as exc:
        logger.error("%s", exc)
        return 2
    upgrade(engine)
    inserted = ensure_zones(engine)
    logger.info("schema is up to date; %d zone rows inserted", inserted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
