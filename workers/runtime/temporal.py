"""One place that builds Temporal clients: address, namespace, and the data converter
(pydantic models, payloads encrypted by the keyring's codec, failure messages encoded)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from workers.runtime.bound_converter import BoundDataConverter
from workers.runtime.codec import EncryptionCodec, Keyring, KeyringError
from workers.runtime.embedded import StackError
from workers.runtime.settings import Settings
from workers.runtime.startup import TemporalUnreachable
from workers.runtime.tracing import tracing_interceptors
from workflows import search_attributes

# Plain converter: replaying committed histories and time-skipping workflow tests. Everything
# that talks to a real server goes through `connect`, which encrypts.
DATA_CONVERTER: DataConverter = pydantic_data_converter
KEY_FILE = "codec-keys.json"


def data_converter(keyring: Keyring, *, accept_plaintext: bool = True) -> DataConverter:
    """Encrypting converter; `accept_plaintext=False` (production) refuses an unencrypted
    payload instead of reading it as is."""
    return BoundDataConverter(
        payload_converter_class=PydanticPayloadConverter,
        payload_codec=EncryptionCodec(keyring, accept_plaintext=accept_plaintext),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


# carebridge's own histograms through the SDK's meter record seconds; the SDK's default
# buckets are for milliseconds (every lag would land in le=50 and p99 would read ~49.5 s).
SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
HISTOGRAM_BUCKETS = {"carebridge_projection_lag": SECONDS_BUCKETS}


def metrics_runtime(port: int, host: str = "127.0.0.1") -> Runtime:
    """A Temporal runtime that serves the SDK's metrics (workflow and activity task slots,
    poll success, latencies) and carebridge's worker metrics on <host>:<port>/metrics."""
    prometheus = PrometheusConfig(
        bind_address=f"{host}:{port}", histogram_bucket_overrides=HISTOGRAM_BUCKETS
    )
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


def keyring_for(settings: Settings) -> Keyring:
    """The configured keys; in development, a key generated once under the state directory."""
    try:
        if settings.codec_keys:
            return Keyring.parse(settings.codec_keys.get_secret_value(), settings.codec_current_key)
        if settings.codec_key_file:
            return Keyring.load(settings.codec_key_file)
    except (KeyringError, OSError, ValueError, KeyError) as exc:
        raise StackError(f"payload keys: {exc}") from exc
    if settings.environment == "production":
        raise StackError(
            "no payload encryption key is configured: set CAREBRIDGE_CODEC_KEYS "
            "('id:base64-of-32-bytes,...') or CAREBRIDGE_CODEC_KEY_FILE"
        )
    path = settings.state_dir / KEY_FILE
    if not path.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        Keyring.generate().save(path)
    return Keyring.load(path)


_INDEXED_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    SearchAttributeIndexedValueType.KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


def tls_config(settings: Settings) -> TLSConfig | bool:
    """mTLS when a client certificate is configured, plain TLS for an API key, else none."""
    if settings.temporal_tls_cert or settings.temporal_tls_ca:
        if bool(settings.temporal_tls_cert) != bool(settings.temporal_tls_key):
            raise StackError(
                "set both CAREBRIDGE_TEMPORAL_TLS_CERT and CAREBRIDGE_TEMPORAL_TLS_KEY (mTLS)"
            )
        return TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes()
            if settings.temporal_tls_cert
            else None,
            client_private_key=settings.temporal_tls_key.read_bytes()
            if settings.temporal_tls_key
            else None,
            server_root_ca_cert=settings.temporal_tls_ca.read_bytes()
            if settings.temporal_tls_ca
            else None,
        )
    return settings.temporal_api_key is not None


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    api_key = settings.temporal_api_key
    try:
        return await Client.connect(
            settings.temporal_target,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(
                keyring_for(settings), accept_plaintext=settings.environment != "production"
            ),
            runtime=runtime,
            tls=tls_config(settings),
            api_key=api_key.get_secret_value() if api_key else None,
            interceptors=tracing_interceptors(settings),
        )
    except RuntimeError as exc:
        hint = "is `carebridge up` running?" if not settings.temporal_address else str(exc)
        raise TemporalUnreachable(
            f"cannot reach Temporal at {settings.temporal_target}: {hint}"
        ) from exc


async def missing_search_attributes(client: Client, namespace: str) -> list[str] | None:
    """carebridge's custom search attributes the namespace lacks; None when the server
    cannot list them (the time-skipping test server can add but not list)."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        return None
    existing = set(listed.custom_attributes)
    return sorted(key.name for key in search_attributes.ALL if key.name not in existing)


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register carebridge's custom search attributes that the namespace lacks (idempotent);
    needs operator rights on the namespace (`carebridge temporal setup`)."""
    missing = await missing_search_attributes(client, namespace)
    wanted = set(missing) if missing is not None else {key.name for key in search_attributes.ALL}
    to_add = {
        key.name: _INDEXED_TYPES[key.indexed_value_type]
        for key in search_attributes.ALL
        if key.name in wanted
    }
    if to_add:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=to_add)
        )
    return sorted(to_add)


# An operator's idempotency key (HTTP `Idempotency-Key`, CLI `--idempotency-key`): letters,
# digits and . _ : - only, so that it can be part of a Temporal Update id.
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


def update_id(update: str, idempotency_key: str | None) -> str | None:
    """The Update id for an operator action: the same key makes the same Update, which
    Temporal runs once per workflow run and answers again with its first result (a client
    that retries after a timeout records one attempt, not two). No key: a fresh id."""
    return f"{update}:{idempotency_key}" if idempotency_key else None
