"""The command line: ``python -m ingestion <command>``, a few lines over library functions.

Every setting of ``ingestion.settings`` has a flag named after its variable
(``--lake-uri`` for ``LAKE_URI``); a flag beats the environment.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from ingestion.lake import LakeError
from ingestion.settings import ENV_VARS, Settings, SettingsError, load_settings

log = logging.getLogger("ingestion")

# Subcommands register here: name -> (help, add_arguments, run(settings, args) -> exit code)
Command = tuple[
    str, Callable[[argparse.ArgumentParser], None], Callable[[Settings, argparse.Namespace], int]
]
COMMANDS: dict[str, Command] = {}


def command(
    name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
):  # noqa: A002
    def register(run: Callable[[Settings, argparse.Namespace], int]):
        COMMANDS[name] = (help, add_arguments or (lambda _p: None), run)
        return run

    return register


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (each overrides its environment variable)")
    for var, name in ENV_VARS.items():
        flag = "--" + var.lower().replace("_", "-")
        group.add_argument(flag, dest=f"setting_{name}", metavar=var, default=None)


def build_parser() -> argparse.ArgumentParser:
    _load_commands()
    parser = argparse.ArgumentParser(prog="python -m ingestion", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, _run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        _add_setting_flags(p)
    return parser


def _load_commands() -> None:
    """Import the modules whose commands register themselves (kept lazy: fast --help)."""
    import ingestion.csv_landing  # noqa: F401

    try:
        import ingestion.tmdb_landing  # noqa: F401
    except ModuleNotFoundError as exc:  # pragma: no cover - while the TMDB stage is absent
        if exc.name != "ingestion.tmdb_landing":
            raise


def _settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--require-tmdb-key",
        action="store_true",
        help="exit non-zero with instructions when no TMDB API key is configured",
    )


MISSING_KEY = (
    "no TMDB API key is configured: set TMDB_API_KEY, or TMDB_API_KEY_FILE to a file holding "
    "the key (get one at https://www.themoviedb.org/settings/api). "
    "To try the pipeline without a key, run make demo (it uses a local fake TMDB server)."
)


@command(
    "settings", "print the effective settings (the API key only as <set>)", _settings_arguments
)
def _show_settings(settings: Settings, args: argparse.Namespace) -> int:
    if args.require_tmdb_key and settings.tmdb_api_key is None:
        log.error("%s", MISSING_KEY)
        return 2
    print(json.dumps(settings.dump(), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    overrides = {
        key.removeprefix("setting_"): value
        for key, value in vars(args).items()
        if key.startswith("setting_")
    }
    try:
        settings = load_settings(**overrides)
        return COMMANDS[args.command][2](settings, args)
    except (SettingsError, LakeError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
