"""``python -m fake_tmdb``: run the fake TMDB API on 127.0.0.1 until interrupted.

Prints its base URL (for ``TMDB_BASE_URL``) on the first line of standard output.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from fake_tmdb.catalogue import build_catalogue
from fake_tmdb.server import FakeTMDb

log = logging.getLogger("fake_tmdb")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fake_tmdb", description=__doc__)
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--imdb-ids-from",
        metavar="CSV",
        default=None,
        help="an IMDb movies CSV (|-separated) whose Horror titles get TMDB movies",
    )
    parser.add_argument("--movies", type=int, default=400, help="horror movies in all")
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument(
        "--day",
        type=int,
        default=1,
        help="the day of the catalogue to serve (from 2 on: other popularity and votes)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=None, help="requests/s, then 429")
    parser.add_argument("--retry-after", default=None, help="Retry-After header on a 429")
    parser.add_argument(
        "--api-key",
        default=None,
        help="the key to accept (default: $FAKE_TMDB_API_KEY, else 'demo-key')",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    started = time.monotonic()
    if args.day < 1:
        parser.error(f"--day must be 1 or more, got {args.day}")
    catalogue = build_catalogue(
        movies=args.movies, seed=args.seed, imdb_csv=args.imdb_ids_from, day=args.day
    )
    api_key = args.api_key or os.environ.get("FAKE_TMDB_API_KEY") or "demo-key"
    server = FakeTMDb(
        catalogue,
        api_key=api_key,
        latency_ms=args.latency_ms,
        rate_limit=args.rate_limit,
        retry_after=args.retry_after,
        port=args.port,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with server:
        print(server.base_url, flush=True)
        log.info(
            "fake TMDB with %d movies (%d horror), day %d, built in %.2fs, serving %s",
            len(catalogue.movies),
            len(catalogue.ids_with_genre()),
            args.day,
            time.monotonic() - started,
            server.base_url,
        )
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
