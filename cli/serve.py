"""``antispoof serve``."""

from __future__ import annotations

import os
from pathlib import Path

import click


class PairedModels(click.Command):
    """Pairs each ``--model``/``--weights`` with the ``--scorer`` before it on the command line, which click's
    per-option lists forget: ``--scorer aasist --scorer lfcc-gmm --model m.npz`` gives lfcc-gmm ``m.npz``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        pairs: dict[str, str] = {}
        scorer: str | None = None
        tokens = iter(args)
        for token in tokens:
            name, sep, inline = token.partition("=")
            if name not in ("--scorer", "--model", "--weights"):
                continue
            value = inline if sep else next(tokens, "")
            if name == "--scorer":
                scorer = value
            elif scorer is None:
                raise click.UsageError(f"{name} {value}: give it after the --scorer it belongs to", ctx)
            elif scorer in pairs:
                raise click.UsageError(f"two model files for --scorer {scorer}", ctx)
            else:
                pairs[scorer] = value
        ctx.meta["scorer_models"] = pairs
        return super().parse_args(ctx, args)


@click.command(cls=PairedModels)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; put a reverse proxy in front, README).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free).")
@click.option("--scorer", "scorer_names", multiple=True, default=("aasist",), show_default=True,
              help="A scorer to serve (repeat for several; the first is the default of requests).")
@click.option("--model", "--weights", "models", multiple=True,
              help="Model file or bundled weights name of the --scorer just before it (default: the scorer's own, "
                   "e.g. AASIST's bundled weights).")
@click.option("--max-upload-mb", default=50.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Largest request body; larger ones get 413 while they stream in.")
@click.option("--max-duration-s", default=600.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Longest recording scored (uploaded or streamed); longer ones get 413.")
@click.option("--max-concurrency", type=click.IntRange(min=1),
              help="Inference slots (default: the number of CPU cores).")
@click.option("--queue", default=64, show_default=True, type=click.IntRange(min=0),
              help="Requests that may wait for a slot; one more gets 503 with Retry-After.")
@click.option("--api-key-env", metavar="VAR",
              help="Require 'Authorization: Bearer <key>' on /v1/*, the key read from this environment variable.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Processes sharing the port, each with its own scorers, slots and metrics.")
@click.option("--tmp-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where uploads over 1 MiB are spooled while scored; smaller ones stay in memory (default: the "
                   "system's temporary folder).")
@click.option("--shutdown-timeout-s", default=30.0, show_default=True, type=click.FloatRange(min=0),
              help="On SIGTERM, how long in-flight requests may take to finish.")
def serve(host, port, scorer_names, models, max_upload_mb, max_duration_s, max_concurrency, queue, api_key_env,
          workers, tmp_dir, shutdown_timeout_s) -> None:
    """Serve scores over HTTP: an API, a web page, and live streaming.

    \b
    Routes:
      GET  /                    the page: pick or drop a file, or record
      POST /v1/score?scorer=S   multipart field 'file' or the raw audio body
                                -> the JSON of `antispoof score --format json`
      GET  /v1/scorers          served scorers and thresholds
      WS   /v1/stream?scorer=S  16 kHz mono PCM in, segment results out
      GET  /healthz /readyz /metrics /openapi.json

    \b
    Examples:
      antispoof serve --scorer aasist
      antispoof serve --scorer aasist --scorer lfcc-gmm --model model.npz
      curl -F file=@clip.wav 'http://127.0.0.1:8000/v1/score?scorer=aasist'
    """
    try:
        from antispoof_service.server import serve as run_service
        from antispoof_service.settings import ScorerSpec, ServiceSettings
    except ImportError as exc:
        raise click.ClickException(f"the service needs its extra: pip install 'antispoof[serve]' ({exc})") from exc
    by_name = click.get_current_context().meta["scorer_models"]
    if tmp_dir is not None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
    try:
        settings = ServiceSettings(
            scorers=tuple(ScorerSpec(name, by_name.get(name)) for name in scorer_names),
            max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_duration_s=max_duration_s,
            max_concurrency=max_concurrency or os.cpu_count() or 1, queue=queue, api_key_env=api_key_env,
            tmp_dir=None if tmp_dir is None else str(tmp_dir), shutdown_timeout_s=shutdown_timeout_s)
        settings.api_key()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    run_service(settings, host, port, workers)
