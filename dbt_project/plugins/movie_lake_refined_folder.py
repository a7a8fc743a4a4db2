"""dbt-duckdb plugin: create the folder of the DuckDB file before dbt opens it.

The local target keeps its DuckDB file in the lake, at `$LAKE_URI/refined/movie_lake.duckdb`.
After the pipeline has written raw/ and trusted/, refined/ does not exist yet, and DuckDB will
not create a missing folder. dbt-duckdb builds its plugins before it opens the database, so
this one creates the folder then, and `dbt run` works on a fresh lake with no setup.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

logger = logging.getLogger(__name__)


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        path = getattr(self.creds, "path", None)
        if not path or path == ":memory:" or "://" in path or path.startswith("md:"):
            return
        folder = Path(path).expanduser().parent
        if not folder.is_dir():
            logger.info("creating %s for the DuckDB file of the refined layer", folder)
            folder.mkdir(parents=True, exist_ok=True)
