"""One place that builds Temporal clients: address, namespace, pydantic data converter."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from workers.embedded import StackError
from workers.settings import Settings
from workflows import search_attributes

DATA_CONVERTER: DataConverter = pydantic_data_converter

_INDEXED_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    SearchAttributeIndexedValueType.KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


async def connect(settings: Settings) -> Client:
    try:
        return await Client.connect(
            settings.temporal_target,
            namespace=settings.temporal_namespace,
            data_converter=DATA_CONVERTER,
        )
    except RuntimeError as exc:
        hint = "is `carebridge up` running?" if not settings.temporal_address else str(exc)
        raise StackError(f"cannot reach Temporal at {settings.temporal_target}: {hint}") from exc


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register carebridge's custom search attributes that the namespace lacks (idempotent)."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        existing = set(listed.custom_attributes)
    except RPCError as exc:  # the time-skipping test server can add but not list
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    missing = {
        key.name: _INDEXED_TYPES[key.indexed_value_type]
        for key in search_attributes.ALL
        if key.name not in existing
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)
