"""`cleanup-pipeline`: run the job, restore a deleted user, read the deletion ledger, seed demo
data, or start the whole thing locally."""

import argparse
import json
import os
import sys

from cleanup_pipeline.cli import recovery
from cleanup_pipeline.cli.extras import (
    LOCAL_EXTRA_INSTALL,
    MissingExtraError,
    dg_command,
    missing_emulator,
    require_emulator,
)
from cleanup_pipeline.cli.holds import add_hold_parser
from cleanup_pipeline.cli.requests import add_request_parser
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.guards import ApprovalError, approval_run_id
from cleanup_pipeline.core.settings import MissingConfigurationError, load_settings
from cleanup_pipeline.orchestration.jobs import run_job


def _run(args: argparse.Namespace) -> int:
    try:
        # Imported here: `--help` and the other commands do not load the definitions.
        from cleanup_pipeline.definitions import cleanup_job

        summary = run_job(
            args.as_of,
            args.dry_run,
            args.allow_mass_action,
            args.multiprocess,
            max_concurrent=args.max_concurrent,
            deletion_batch_size=args.deletion_batch_size,
            approved_run_id=args.approve,
            job=cleanup_job,
        )
    except (MissingConfigurationError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        summary = {"run_id": None, "status": "failure", "error": str(error)}
    if summary.get("report"):
        print(f"report: {summary['report']}")
    print(json.dumps(summary))
    return 0 if summary["status"] == "success" else 1


def _seed(args: argparse.Namespace) -> int:
    from cleanup_pipeline.aws.clients import make_clients
    from cleanup_pipeline.core.data_map import load_data_map
    from cleanup_pipeline.local.demo_data import seed_demo, sessions_store
    from cleanup_pipeline.local.emulator import refuse_off_this_machine
    from cleanup_pipeline.local.provision import provision

    refusal = "seed-demo writes only to a local emulator"
    # Seeding talks to the emulator over HTTP and needs no moto here; running one does.
    extra = f"; to run one here: {LOCAL_EXTRA_INSTALL}" if missing_emulator() else ""
    if not os.environ.get("AWS_ENDPOINT_URL", "").strip():
        print(
            f"error: {refusal}: set AWS_ENDPOINT_URL to http://127.0.0.1:<port>{extra}",
            file=sys.stderr,
        )
        return 2
    try:
        settings = load_settings()
        sessions = sessions_store(load_data_map(settings))  # seeded when the map declares them
    except (MissingConfigurationError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    clients = make_clients(settings)  # no connection yet: the endpoints are checked first
    refused = refuse_off_this_machine(clients, os.environ, refusal)
    if refused:
        print(refused + extra, file=sys.stderr)
        return 2
    provision(clients, settings)
    summary = seed_demo(
        clients, settings, args.users, now_ms(), sessions=sessions, erase_requests=True
    )
    print(json.dumps(summary.__dict__))
    return 0


def _local(args: argparse.Namespace) -> int:
    try:
        # Checked before anything starts: a production install has neither (see extras.py).
        require_emulator("local")
        if not args.no_ui:
            dg_command("local")
    except MissingExtraError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from cleanup_pipeline.core.data_map import load_data_map
    from cleanup_pipeline.local.demo_data import with_demo_map
    from cleanup_pipeline.local.emulator import local_environment

    try:  # the settings and map the stack will run with, checked before anything is started
        env = with_demo_map({**os.environ, **local_environment("http://127.0.0.1")})
        load_data_map(load_settings(env), env)
    except (MissingConfigurationError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from cleanup_pipeline.cli.local_stack import run_local

    return run_local(users=args.users, ui=not args.no_ui, ui_port=args.port)


def _whole_number(text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"should be at least {low}, not {value}")
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"should be at most {high:,}, not {value}")
    return value


def _run_id(text: str) -> str:
    """argparse type: the id of a run to approve, not blank."""
    try:
        return approval_run_id(text)
    except ApprovalError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _at_least_one(text: str) -> int:
    """argparse type: a whole number >= 1 (0 used to be ignored and -5 failed deep in a run)."""
    return _whole_number(text, 1)


# Demo users seeded into the emulator: it keeps them all in memory.
MAX_DEMO_USERS = 1_000_000


def _demo_users(text: str) -> int:
    return _whole_number(text, 1, MAX_DEMO_USERS)


def _port(text: str) -> int:
    return _whole_number(text, 1, 65_535)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cleanup-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the cleanup job once in the DAGSTER_HOME instance")
    run.add_argument("--as-of", help="reference time, ISO 8601 or epoch ms (default: now)")
    run.add_argument("--dry-run", action="store_true", help="decide and report, write nothing")
    run.add_argument(
        "--allow-mass-action", action="store_true", help="lift size/history guards for this run"
    )
    run.add_argument(
        "--approve",
        metavar="RUN_ID",
        type=_run_id,
        help="act only on the candidates of this reviewed earlier run who still are candidates",
    )
    run.add_argument(
        "--multiprocess", action="store_true", help="one process per step (default: in-process)"
    )
    run.add_argument(
        "--max-concurrent",
        type=_at_least_one,
        help="with --multiprocess: steps at once (default: cores)",
    )
    run.add_argument(
        "--deletion-batch-size",
        type=_at_least_one,
        help="delete candidates per batch (default: 500)",
    )
    run.set_defaults(handler=_run)

    seed = commands.add_parser("seed-demo", help="create tables and demo data in a local emulator")
    seed.add_argument("--users", type=_demo_users, default=3000, help="1 to 1,000,000")
    seed.set_defaults(handler=_seed)

    add_hold_parser(commands)
    add_request_parser(commands)

    local = commands.add_parser(
        "local", help="emulate AWS on 127.0.0.1, seed demo data, run the job, serve the UI"
    )
    local.add_argument("--users", type=_demo_users, default=3000, help="1 to 1,000,000")
    local.add_argument(
        "--port", type=_port, default=3000, help="Dagster UI port on 127.0.0.1 (1-65535)"
    )
    local.add_argument("--no-ui", action="store_true", help="stop after the run")
    local.set_defaults(handler=_local)
    recovery.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
