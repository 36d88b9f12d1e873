"""What a running service is configured with; plain data, so that worker processes can receive it as JSON."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

#: Environment variable through which ``--workers N`` hands the settings to each worker process.
SETTINGS_ENV = "ANTISPOOF_SERVICE_SETTINGS"


@dataclass(frozen=True)
class ScorerSpec:
    """One scorer to load at start: its registered name, its model file or bundled weights name (None: the
    scorer's default), and runtime options for :func:`lfcc_gmm.scorers.load_scorer`."""

    name: str
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceSettings:
    """Everything ``antispoof serve`` configures (defaults as in its ``--help``).

    Attributes
    ----------
    scorers : the scorers to load, the first being the default of requests that name none.
    max_upload_bytes : largest request body; larger ones get 413 while they stream in.
    max_duration_s : longest recording (uploaded or streamed) scored.
    max_concurrency : inference slots; requests beyond them wait in the queue.
    queue : requests allowed to wait for a slot; one more gets 503 with ``Retry-After``.
    api_key_env : name of the environment variable holding the key; None serves without one.
    tmp_dir : where uploads are spooled (the system's temporary folder when None).
    shutdown_timeout_s : how long SIGTERM waits for in-flight requests.
    """

    scorers: tuple[ScorerSpec, ...]
    max_upload_bytes: int = 50 * 1024 * 1024
    max_duration_s: float = 600.0
    max_concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    queue: int = 64
    api_key_env: str | None = None
    tmp_dir: str | None = None
    shutdown_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.scorers:
            raise ValueError("the service needs at least one scorer")
        names = [spec.name for spec in self.scorers]
        if len(set(names)) != len(names):
            raise ValueError(f"a scorer is named twice: {', '.join(names)}")
        for label, value in (("max_upload_bytes", self.max_upload_bytes), ("max_duration_s", self.max_duration_s),
                             ("max_concurrency", self.max_concurrency)):
            if not value > 0:
                raise ValueError(f"{label} must be positive, got {value}")
        if self.queue < 0:
            raise ValueError(f"queue must be 0 or more, got {self.queue}")

    @property
    def upload_dir(self) -> str:
        return self.tmp_dir or tempfile.gettempdir()

    def api_key(self) -> str | None:
        """The key from :attr:`api_key_env`; raises ``ValueError`` when the variable is unset or empty (a service
        told to require a key must not start open)."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise ValueError(f"--api-key-env {self.api_key_env}: the environment variable is unset or empty")
        return key

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServiceSettings:
        data = json.loads(text)
        data["scorers"] = tuple(ScorerSpec(**spec) for spec in data["scorers"])
        return cls(**data)
