"""Configuration from CAREBRIDGE_* environment variables (pydantic-settings)."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # the delivery code (httpx, temporalio) is not needed to read settings
    from activities.channels import ChannelSettings

DEV_KEY_SECRET = "carebridge-dev-only-secret"
MIN_KEY_SECRET_LENGTH = 32  # the HMAC keys MRNs and visit numbers: small spaces to brute-force
PLACEHOLDER_WORDS = ("replace-me", "change-me")  # the deploy examples' values


class Settings(BaseSettings):
    """Every setting; the README's configuration table lists them."""

    model_config = SettingsConfigDict(env_prefix="CAREBRIDGE_", extra="ignore")

    state_dir: Path = Field(Path(".carebridge"), description="Embedded servers' data")
    temporal_address: str | None = Field(
        None, description="host:port of a Temporal frontend; unset = start the embedded dev server"
    )
    temporal_namespace: str = "default"
    temporal_tls_cert: Path | None = Field(
        None, description="PEM client certificate for mTLS to Temporal (e.g. Temporal Cloud)"
    )
    temporal_tls_key: Path | None = Field(None, description="PEM private key of that certificate")
    temporal_tls_ca: Path | None = Field(
        None, description="PEM CA bundle for a self-hosted server's certificate"
    )
    temporal_api_key: SecretStr | None = Field(
        None, description="Temporal Cloud API key (TLS on, sent as a bearer token)"
    )
    temporal_port: int = Field(7233, description="Embedded dev server frontend port")
    temporal_ui_port: int = Field(8233, description="Embedded dev server Web UI port")
    task_queue: str = "carebridge-transitions"
    worker_metrics_port: int | None = Field(
        None, description="`carebridge worker` serves Temporal SDK metrics on this port"
    )
    worker_metrics_host: str = Field(
        "127.0.0.1", description="Interface for the worker's metrics (0.0.0.0 in a container)"
    )
    worker_health_port: int | None = Field(
        None,
        description="`carebridge worker` serves /healthz (its event loop keeps time) and "
        "/readyz (its pollers are on the task queue) here, on CAREBRIDGE_WORKER_METRICS_HOST",
    )
    worker_stall_seconds: float = Field(
        30.0, gt=0, description="/healthz of a worker answers 503 once its event loop is this late"
    )
    worker_processes: int = Field(
        1, ge=0, le=16, description="Workers `carebridge up` starts as processes; 0 = in-process"
    )
    worker_shutdown_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM a worker finishes running activities for this long"
    )
    worker_deployment_name: str = Field(
        "carebridge",
        min_length=1,
        max_length=255,
        pattern=r"^[^.\s]+$",
        description="Temporal Worker Deployment the worker's build belongs to (no dot)",
    )
    worker_build_id: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        pattern=r"^\S+$",
        description="This build's id (the image tag): a versioned worker that runs only once "
        "its build is made current (`carebridge deployment promote`); unset or empty = an "
        "unversioned worker (local stack, tests)",
    )
    listener_health_port: int | None = Field(
        8081, description="`carebridge listener` serves /healthz, /readyz and /metrics here"
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces endpoint (e.g. http://otel-collector:4318/v1/traces); "
        "unset = no tracing",
    )
    worker_cached_workflows: int = Field(
        1400,
        ge=0,
        description="Workflows a worker keeps in memory between tasks (its RSS bound; 1,400 "
        "fit a 1 GiB worker: README, Performance); an evicted one is rebuilt by replay",
    )
    worker_workflow_task_slots: int = Field(
        16,
        ge=2,
        description="Workflow tasks a worker runs at once; more wait at the server, where "
        "they cannot time out half-done (a deadline storm)",
    )
    worker_sticky_timeout_seconds: float = Field(
        300.0,
        gt=0,
        description="How long a cached workflow's task waits for this worker before any "
        "worker takes it and replays the workflow from its history",
    )
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL DSN; unset = start the embedded PostgreSQL (a secret: it holds "
        "the password, so it is never printed)",
    )
    database_pool_size: int = Field(
        10,
        ge=2,
        le=200,
        description="connections per process; a worker runs as many activities and local "
        "activities at once, so none queues for a connection past its timeout",
    )
    database_acquire_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description="longest wait for a free pool connection before the caller fails (and "
        "its bounded retry takes over) instead of queueing past its own timeout",
    )
    database_statement_cache_size: int = Field(
        100,
        ge=0,
        description="prepared statements asyncpg keeps per connection; 0 behind PgBouncer in "
        "transaction pooling (a statement prepared on one server connection does not exist on "
        "the next)",
    )
    startup_wait_seconds: float = Field(
        300.0,
        ge=0,
        description="at start, how long a process retries PostgreSQL and Temporal (backoff "
        "0.5 s doubling to 15 s, each wait logged) before it gives up; 0 = one try",
    )
    accept_newer_schema: bool = Field(
        False,
        description="start on a database migrated past this release (a rollback over "
        "expand-only migrations); otherwise such a schema is refused",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    mllp_host: str = "127.0.0.1"
    mllp_port: int = 2575
    max_message_bytes: int = Field(1_048_576, description="Largest ADT message accepted")
    mllp_idle_timeout_seconds: float = Field(
        300.0, description="An MLLP connection silent this long is closed"
    )
    mllp_max_connections: int = Field(
        200, ge=1, description="open MLLP connections at most; more are closed at once"
    )
    mllp_max_connections_per_source: int = Field(
        20, ge=1, description="open MLLP connections from one source address at most"
    )
    mllp_frame_deadline_seconds: float = Field(
        60.0,
        gt=0,
        description="a frame once started must end within this (a byte now and then does "
        "not hold the connection: the idle timeout only runs between frames)",
    )
    mllp_close_grace_seconds: float = Field(
        10.0,
        gt=0,
        description="on stop, how long frames in flight may still be answered before the "
        "connections are cut (keep the pod's preStop + this under its termination grace)",
    )
    mllp_keepalive_seconds: int = Field(
        60, ge=1, description="TCP keepalive idle time on MLLP connections (dead peers found)"
    )
    mllp_tls_client_ca: Path | None = Field(
        None,
        description="PEM CA bundle that signs the senders' client certificates: when set, "
        "every MLLP connection must present one (mutual TLS)",
    )
    mllp_tls_senders: str = Field(
        "",
        description="client certificate subject CN -> the MSH-4 facilities it may send for: "
        "'engine.hospital.org=GENHOSP|NORTH,lab.example.org=LAB'; empty = any facility",
    )
    trusted_proxies: str = Field(
        "",
        description="comma-separated networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "names the client in the audit log; empty = the peer address",
    )
    mllp_allowed_sources: str = Field(
        "", description="comma-separated IP networks (CIDR) that may connect; empty = any"
    )
    mllp_tls_cert: Path | None = Field(None, description="PEM certificate: MLLP over TLS")
    mllp_tls_key: Path | None = Field(None, description="PEM private key for the certificate")
    allowed_facilities: str = Field(
        "", description="Comma-separated MSH-4 values accepted; empty accepts every facility"
    )
    protocols_dir: Path = Field(
        default_factory=lambda: _default_protocols_dir(),
        description="Protocol files and the site table (protocols/site.yaml)",
    )
    key_secret: SecretStr = Field(
        SecretStr(DEV_KEY_SECRET),
        description="HMAC secret for encounter keys; set a real one outside development",
    )
    audit_key: SecretStr | None = Field(
        None,
        description="HMAC key of the audit log's hash chain, held outside the database; "
        "unset = derived from CAREBRIDGE_KEY_SECRET",
    )
    audit_anchor_minutes: float = Field(
        60.0, gt=0, description="how often the API logs the audit chain's anchor (id:hash)"
    )
    ack_timeout_seconds: float = Field(
        10.0, description="Longest wait for inbox + Temporal before answering AE"
    )
    inbox_retention_days: int = Field(
        90,
        ge=1,
        description="an inbox message's raw bytes are removed this many days after its "
        "transition closed (after it was received when it has none); the row stays",
    )
    smtp_host: str | None = Field(None, description="SMTP server for the email channel")
    smtp_port: int = 25
    smtp_sender: str = "carebridge@localhost"
    webhook_url: str | None = Field(None, description="Endpoint for the webhook channel")
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key signing webhook bodies (X-Carebridge-Signature)"
    )
    fhir_sources: SecretStr | None = Field(
        None,
        description="FHIR servers whose Subscriptions notify POST /fhir/subscriptions/{name}, as "
        'JSON {"name": {"base_url": "https://ehr/fhir", "authorization": "Bearer ..."}}: where '
        "id-only notifications are fetched from and gaps caught up with $events",
    )
    cors_origins: str = Field(
        "", description="Extra comma-separated origins allowed to call /codec (a Temporal UI)"
    )
    public_url: str = Field(
        "http://127.0.0.1:8080", description="Base URL put in notification links"
    )
    environment: Literal["development", "production"] = Field(
        "development",
        description="production refuses to start without a configured payload key",
    )
    codec_keys: SecretStr | None = Field(
        None, description="Payload keys 'id:base64(32 bytes),...'; the last is current"
    )
    codec_current_key: str | None = Field(None, description="Key id to encrypt with")
    codec_key_file: Path | None = Field(
        None,
        description="JSON keyring file {current, keys}; default in development: "
        "<state dir>/codec-keys.json, generated with 0600 permissions",
    )
    session_idle_minutes: float = Field(
        30.0, gt=0, description="a web session unused this long ends (log in again)"
    )
    session_hours: float = Field(12.0, gt=0, description="a web session ends this long after login")
    oidc_issuer: str | None = Field(None, description="OIDC issuer accepted for JWTs")
    oidc_audience: str | None = Field(None, description="Expected JWT audience")
    oidc_jwks_url: str | None = Field(None, description="The issuer's JWKS URL")
    oidc_role_claim: str = Field("roles", description="JWT claim listing carebridge roles")
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @model_validator(mode="after")
    def _oidc_is_complete(self) -> Settings:
        """An issuer needs an audience (else any token it mints for another app is ours) and
        a JWKS URL over https (plain http only to this host, in development)."""
        if not self.oidc_issuer:
            return self
        if not self.oidc_audience:
            raise ValueError("CAREBRIDGE_OIDC_ISSUER needs CAREBRIDGE_OIDC_AUDIENCE")
        url = urlsplit(self.oidc_jwks_url or "")
        loopback = url.hostname in ("127.0.0.1", "localhost", "::1")
        if url.scheme != "https" and not (
            url.scheme == "http" and loopback and self.environment == "development"
        ):
            raise ValueError("CAREBRIDGE_OIDC_JWKS_URL must be an https URL")
        return self

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, value: str) -> str:
        """`*` with credentials would let any page decrypt payloads through a logged-in UI."""
        if any(origin.strip() == "*" for origin in value.split(",")):
            raise ValueError("CAREBRIDGE_CORS_ORIGINS: name the Temporal UI's origin, not *")
        return value

    @field_validator("worker_build_id", mode="before")
    @classmethod
    def _empty_build_id_is_unset(cls, value: object) -> object:
        """CAREBRIDGE_WORKER_BUILD_ID= (an empty value, e.g. from a template) means unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def channel_settings(self) -> ChannelSettings:
        from activities.channels import ChannelSettings

        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else None
        return ChannelSettings(
            smtp_host=self.smtp_host,
            smtp_port=self.smtp_port,
            smtp_sender=self.smtp_sender,
            webhook_url=self.webhook_url,
            webhook_secret=secret,
        )

    def production_problem(self) -> str | None:
        """Why this configuration must not run in production, or None. A public or short
        key secret makes every encounter key, transition id and audit patient key computable."""
        if self.environment != "production":
            return None
        secret = self.key_secret.get_secret_value()
        placeholder = any(word in secret.lower() for word in PLACEHOLDER_WORDS)
        if secret == DEV_KEY_SECRET or placeholder or len(secret) < MIN_KEY_SECRET_LENGTH:
            return (
                "CAREBRIDGE_KEY_SECRET must be set in production to a secret of at least "
                f"{MIN_KEY_SECRET_LENGTH} characters of your own (not the development default "
                "or an example's placeholder)"
            )
        return None

    @property
    def audit_chain_key(self) -> bytes:
        if self.audit_key is not None:
            return self.audit_key.get_secret_value().encode()
        secret = self.key_secret.get_secret_value().encode()
        return hmac.new(secret, b"carebridge audit chain", hashlib.sha256).digest()

    @property
    def cors_origins_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def mllp_sender_facilities(self) -> dict[str, frozenset[str]]:
        """CAREBRIDGE_MLLP_TLS_SENDERS as {certificate CN: facilities}."""
        senders: dict[str, frozenset[str]] = {}
        for entry in filter(None, (e.strip() for e in self.mllp_tls_senders.split(","))):
            name, _, facilities = entry.partition("=")
            senders[name.strip()] = frozenset(f.strip() for f in facilities.split("|") if f.strip())
        return senders

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return _networks(self.trusted_proxies)

    @property
    def mllp_source_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return _networks(self.mllp_allowed_sources)

    @field_validator("mllp_allowed_sources", "trusted_proxies")
    @classmethod
    def _are_networks(cls, value: str) -> str:
        for network in filter(None, (n.strip() for n in value.split(","))):
            try:
                ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network (CIDR)") from None
        return value

    @model_validator(mode="after")
    def _senders_need_client_certificates(self) -> Settings:
        if self.mllp_tls_senders.strip() and not self.mllp_tls_client_ca:
            raise ValueError("CAREBRIDGE_MLLP_TLS_SENDERS needs CAREBRIDGE_MLLP_TLS_CLIENT_CA")
        if self.mllp_tls_client_ca and not self.mllp_tls_cert:
            raise ValueError("CAREBRIDGE_MLLP_TLS_CLIENT_CA needs CAREBRIDGE_MLLP_TLS_CERT/_KEY")
        return self

    @property
    def allowed_facility_set(self) -> frozenset[str]:
        return frozenset(f.strip() for f in self.allowed_facilities.split(",") if f.strip())

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"


def _default_protocols_dir() -> Path:
    """The repository's protocols/ (editable install), else ./protocols."""
    beside = Path(__file__).resolve().parents[2] / "protocols"
    return beside if beside.is_dir() else Path("protocols")


def _networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ip_network(n.strip(), strict=False) for n in text.split(",") if n.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
