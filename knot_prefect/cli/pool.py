"""``knot pool``: base job templates for work pools that accept knot compute profiles."""

from __future__ import annotations

import typer

from knot_prefect.cli._output import fail

app = typer.Typer(help="Base job templates for work pools.", no_args_is_help=True)


@app.command("template")
def template(
    pool_type: str = typer.Option(
        "process",
        "--type",
        help="Work pool type: process, docker, kubernetes, ecs, cloud-run-v2 or vertex-ai.",
    ),
    gpu: bool = typer.Option(
        False, "--gpu", help="Add knot's GPU, node selector and toleration variables."
    ),
) -> None:
    """Print a base job template as JSON, ready for ``prefect work-pool create``.

    Example: knot pool template --type kubernetes --gpu > template.json &&
    prefect work-pool create gpu-pool --type kubernetes --base-job-template template.json
    """
    import json

    from knot_prefect.deploy.templates import base_job_template
    from knot_prefect.errors import ConfigurationError

    try:
        rendered = base_job_template(pool_type, gpu=gpu)
    except ConfigurationError as exc:
        fail(str(exc))
    typer.echo(json.dumps(rendered, indent=2, sort_keys=False))
