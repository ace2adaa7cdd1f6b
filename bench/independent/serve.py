"""`python -m bench.independent.serve --port N [--http httptools|edge]`: what `tenantry serve`
does (logging, start-up, uvicorn with the edge's options), with `bench.independent.layers`'
app, so that a variant differs from the shipped server by one layer only. `--http httptools`
serves through uvicorn's own HttpToolsProtocol instead of tenancy/edge.py's EdgeProtocol."""

import argparse

import uvicorn

from service.cli.common import begin_work
from tenancy.edge import uvicorn_options
from tenancy.embedded import exit_normally_on_sigterm
from tenancy.observability.log_format import configure_logging
from tenancy.settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--http", choices=("edge", "httptools"), default="edge")
    arguments = parser.parse_args()
    begin_work()
    settings = get_settings()
    configure_logging(settings)
    exit_normally_on_sigterm()
    options = uvicorn_options(settings)
    if arguments.http == "httptools":
        options["http"] = "httptools"
    uvicorn.run(
        "bench.independent.layers:create_app",
        factory=True,
        host="127.0.0.1",
        port=arguments.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        **options,
    )


if __name__ == "__main__":
    main()
