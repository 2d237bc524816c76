"""Custom search attributes. Values are opaque (status words, step ids, instants): no PHI."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

STATUS = SearchAttributeKey.for_keyword("CbStatus")
PROTOCOL = SearchAttributeKey.for_keyword("CbProtocol")
FACILITY = SearchAttributeKey.for_keyword("CbFacility")
NEXT_DUE_AT = SearchAttributeKey.for_datetime("CbNextDueAt")
OVERDUE_STEPS = SearchAttributeKey.for_keyword_list("CbOverdueSteps")

ALL = (STATUS, PROTOCOL, FACILITY, NEXT_DUE_AT, OVERDUE_STEPS)
