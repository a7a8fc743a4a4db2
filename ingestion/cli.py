"""The command line: ``movie-lake <command>`` (or ``python -m ingestion <command>``), a few
lines over library functions.

Every setting of ``ingestion.settings`` but the TMDB API key has a flag named after its
variable (``--lake-uri`` for ``LAKE_URI``); a flag beats the environment. The key itself is
never a flag (a command line shows in every process listing): ``TMDB_API_KEY``,
``TMDB_API_KEY_FILE`` (or ``--tmdb-api-key-file``), or Secrets Manager in the Lambda; the old
``--tmdb-api-key`` flag is refused with those instructions. Each stage gives its command
as ``HELP``, ``add_arguments(parser)`` and ``run(settings, args) -> exit code``; this module
imports the stages (only the one it runs), never the other way round. Exit codes:
``ingestion.exit_codes``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence

from ingestion.exit_codes import ExitCode
from ingestion.lake import LakeBusyError, LakeError
from ingestion.log_format import configure_logging
from ingestion.settings import ENV_VARS, Settings, SettingsError, load_settings

log = logging.getLogger("ingestion")

PROG = "movie-lake"
DESCRIPTION = (
    "Land the movie lake's sources in raw. Every setting has a flag named after its "
    "environment variable (--lake-uri for LAKE_URI); a flag beats the environment. The TMDB "
    "API key is the exception: TMDB_API_KEY or TMDB_API_KEY_FILE only, never on the command "
    "line. Exit codes: 0 ok, 1 a stage failed, 2 usage error, 3 a setting is invalid or "
    "missing, 4 another run holds the day (nothing written)."
)

REMOVED_FLAG = "--tmdb-api-key"
REMOVED_FLAG_MESSAGE = (
    "--tmdb-api-key is not accepted: a key on the command line shows in every process "
    "listing and shell history. Set TMDB_API_KEY in the environment, or TMDB_API_KEY_FILE "
    "(--tmdb-api-key-file) to a file holding only the key; the Lambda reads it from Secrets "
    "Manager (TMDB_API_KEY_SECRET)."
)


class _RefuseKeyFlag(argparse.Action):
    """The removed key flag: an error that says how to pass the key instead (never echoing
    the value given)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        parser.error(REMOVED_FLAG_MESSAGE)


# name -> (help, add_arguments, run(settings, args) -> exit code)
Command = tuple[
    str, Callable[[argparse.ArgumentParser], None], Callable[[Settings, argparse.Namespace], int]
]


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (each overrides its environment variable)")
    for var, name in ENV_VARS.items():
        flag = "--" + var.lower().replace("_", "-")
        if flag == REMOVED_FLAG:
            group.add_argument(flag, action=_RefuseKeyFlag, nargs="?", help=argparse.SUPPRESS)
            continue
        group.add_argument(flag, dest=f"setting_{name}", metavar=var, default=None)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, the other commands are listed without their arguments (and
    their modules not imported: a run imports only the stage it runs)."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, allow_abbrev=False)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name, allow_abbrev=False)
            continue
        help_text, add_arguments, _run = command(name)
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        add_arguments(p)
        _add_setting_flags(p)
    return parser


COMMANDS = ("csv", "tmdb", "settings")  # in the order --help lists them
_STAGES = {"csv": "ingestion.csv_landing", "tmdb": "ingestion.tmdb_landing"}


def command(name: str) -> Command:
    """A command's help, arguments and run function (a stage's module is imported here)."""
    if name == "settings":
        return SETTINGS_HELP, _settings_arguments, _show_settings
    stage = importlib.import_module(_STAGES[name])
    return stage.HELP, stage.add_arguments, stage.run


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


SETTINGS_HELP = "print the effective settings (the API key only as <set>)"


def _show_settings(settings: Settings, args: argparse.Namespace) -> int:
    if args.require_tmdb_key and settings.tmdb_api_key is None:
        log.error("%s", MISSING_KEY)
        return ExitCode.SETTINGS
    print(json.dumps(settings.dump(), indent=2))
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((arg for arg in argv if arg in COMMANDS), None)  # before it: only -v
    args = build_parser(chosen).parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    overrides = {
        key.removeprefix("setting_"): value
        for key, value in vars(args).items()
        if key.startswith("setting_")
    }
    try:
        settings = load_settings(**overrides)
        return int(command(args.command)[2](settings, args))
    except SettingsError as exc:
        log.error("%s", exc)
        return ExitCode.SETTINGS
    except LakeBusyError as exc:
        log.error("%s", exc)
        return ExitCode.LOCKED
    except LakeError as exc:
        log.error("%s", exc)
        return ExitCode.STAGE_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
