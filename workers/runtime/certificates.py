"""When the certificates a process presents expire, as a gauge (alert
CarebridgeCertificateExpiresSoon): the Temporal client certificate (mTLS to Temporal Cloud)
and the MLLP server certificate, read from their files at each scrape, so a renewed file
shows at once (a process reads its Temporal certificate at start: roll it after renewal)."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from prometheus_client import Gauge

from workers.runtime.settings import Settings

CERTIFICATE_EXPIRY = Gauge(
    "carebridge_certificate_expiry_timestamp_seconds",
    "When the certificate in this file stops being valid (Unix time), by its role",
    ["certificate"],
)


def not_valid_after(path: Path) -> float:
    """The expiry of the first certificate in a PEM file (the leaf)."""
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    return certificate.not_valid_after_utc.timestamp()


def configured(settings: Settings) -> dict[str, Path]:
    files = {"temporal_client": settings.temporal_tls_cert, "mllp_server": settings.mllp_tls_cert}
    return {role: path for role, path in files.items() if path is not None}


def refresh_certificate_gauges(settings: Settings) -> None:
    """A file that cannot be read leaves its series out (the gauge is not a health check)."""
    CERTIFICATE_EXPIRY.clear()
    for role, path in configured(settings).items():
        try:
            CERTIFICATE_EXPIRY.labels(certificate=role).set(not_valid_after(path))
        except (OSError, ValueError):
            continue
