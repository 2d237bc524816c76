"""Protocol files (`protocols/*.yaml`) and the site table that picks one for a discharge."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.adt import AdtEvent
from schemas.protocol import Protocol
from schemas.site import SelectionRule, SiteConfig
from schemas.social_needs import HrsnDomain, Resource

SITE_FILE = "site.yaml"
RESOURCES_FILE = "resources.yaml"


class ProtocolError(ValueError):
    """A protocol or site file that does not validate; the message names the file."""


@dataclass(frozen=True)
class Selection:
    protocol: Protocol | None
    reason: str


@dataclass(frozen=True)
class ProtocolLibrary:
    site: SiteConfig
    versions: dict[str, dict[int, Protocol]] = field(default_factory=dict)
    resources: tuple[Resource, ...] = ()

    def resource(self, resource_id: str) -> Resource:
        for entry in self.resources:
            if entry.id == resource_id:
                return entry
        raise KeyError(resource_id)

    def resources_for(self, domain: HrsnDomain) -> tuple[Resource, ...]:
        return tuple(entry for entry in self.resources if entry.domain == domain)

    def latest(self, protocol_id: str) -> Protocol:
        versions = self.versions[protocol_id]
        return versions[max(versions)]

    def all_latest(self) -> list[Protocol]:
        return [self.latest(pid) for pid in sorted(self.versions)]

    def select(self, event: AdtEvent) -> Selection:
        """First site rule matching PV1-36 disposition and PV1-2 patient class (or death)."""
        for rule in self.site.selection:
            if rule.matches(
                event.discharge_disposition, event.patient_class, event.death_indicator
            ):
                protocol = self.latest(rule.protocol)
                return Selection(protocol, f"site rule -> {protocol.id} v{protocol.version}")
        return Selection(
            None,
            f"no protocol applies: disposition {event.discharge_disposition or '(none)'}, "
            f"patient class {event.patient_class or '(none)'}",
        )


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{path.name}: not valid YAML: {exc}") from exc


def _explain(path: Path, exc: ValidationError) -> ProtocolError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}" for err in exc.errors()
    )
    return ProtocolError(f"{path.name}: {problems}")


def load_library(folder: Path) -> ProtocolLibrary:
    """Load and validate every protocol and the site table; any error names its file."""
    if not folder.is_dir():
        raise ProtocolError(f"protocol folder {folder} does not exist")
    site_path = folder / SITE_FILE
    try:
        site = SiteConfig.model_validate(_read(site_path) if site_path.exists() else {})
    except ValidationError as exc:
        raise _explain(site_path, exc) from exc
    versions: dict[str, dict[int, Protocol]] = {}
    for path in sorted(folder.glob("*.yaml")):
        if path.name in (SITE_FILE, RESOURCES_FILE):
            continue
        try:
            protocol = Protocol.model_validate(_read(path))
        except ValidationError as exc:
            raise _explain(path, exc) from exc
        if protocol.version in versions.setdefault(protocol.id, {}):
            raise ProtocolError(f"{path.name}: {protocol.id} v{protocol.version} defined twice")
        versions[protocol.id][protocol.version] = protocol
    library = ProtocolLibrary(
        site=site, versions=versions, resources=_load_resources(folder / RESOURCES_FILE)
    )
    for number, rule in enumerate(site.selection, start=1):
        if rule.protocol not in versions:
            raise ProtocolError(f"{SITE_FILE}: selection names unknown protocol {rule.protocol!r}")
        _check_scope(number, rule, library.latest(rule.protocol))
    return library


def _load_resources(path: Path) -> tuple[Resource, ...]:
    """The site's resource directory for social-needs referrals (optional file)."""
    if not path.exists():
        return ()
    try:
        entries = tuple(Resource.model_validate(item) for item in (_read(path) or []))
    except ValidationError as exc:
        raise _explain(path, exc) from exc
    ids = [entry.id for entry in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ProtocolError(f"{path.name}: duplicate resource id(s): {', '.join(duplicates)}")
    return entries


def _check_scope(number: int, rule: SelectionRule, protocol: Protocol) -> None:
    """A site rule may not select a protocol for discharges it was not written for."""
    scope = protocol.applies_to
    where = f"{SITE_FILE}: selection rule {number} ({protocol.id})"
    if rule.deceased and not scope.deceased:
        raise ProtocolError(f"{where}: the protocol does not apply to a patient who died")
    for label, chosen, allowed in (
        ("dispositions", rule.dispositions, scope.dispositions),
        ("patient classes", rule.patient_classes, scope.patient_classes),
    ):
        if not allowed or rule.deceased:
            continue
        outside = sorted(set(chosen) - set(allowed)) if chosen else ["(any)"]
        if outside:
            raise ProtocolError(
                f"{where}: {label} {', '.join(outside)} are outside the protocol's applies_to"
            )
