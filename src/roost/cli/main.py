"""The ``roost`` command: ``serve`` runs a node; the others are the SDK on a terminal."""

from __future__ import annotations

import click

import roost
from roost.cli import cluster, devices, messages, serve, streams, tokens


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(roost.__version__, prog_name="roost")
def cli() -> None:
    """Roost: a messaging gateway for connected devices.

    Client commands reach a node at --url (ROOST_URL, default http://127.0.0.1:8080)
    with --token (ROOST_TOKEN, default: ./roost-data/admin.token).
    """


cli.add_command(serve.serve)
cli.add_command(devices.device)
cli.add_command(messages.command)
cli.add_command(messages.notify)
cli.add_command(messages.mailbox)
cli.add_command(streams.telemetry)
cli.add_command(streams.feedback)
cli.add_command(tokens.token)
cli.add_command(cluster.cluster)


def main() -> None:
    cli()
