"""Who owns the transition: the care manager who works it (the worklist's "my patients").
A supervisor assigns it to anyone; a care manager claims it for themselves, unless someone
else owns it already. Giving it to its owner again changes nothing (a retried claim)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.transition import AssignRequest, Ownership, TransitionStatus

from workflows.transition_steps import TransitionSteps


class TransitionOwnership(TransitionSteps):
    """The assign_transition Update and its validator."""

    def _ownership(self, changed: bool) -> Ownership:
        return Ownership(owner=self._owner, since=self._owner_since, changed=changed)

    def _assignable(self, request: AssignRequest) -> None:
        if self._status != TransitionStatus.ACTIVE:
            raise ValueError(
                f"the transition is {self._status.value}: only an active transition can be assigned"
            )
        if request.to == self._owner:
            return  # a retry, or a claim of one's own transition: nothing to change
        if not request.supervisor and request.to != request.by:
            raise ValueError(
                "a care manager can claim a transition only for themselves; a supervisor "
                "assigns it to someone else"
            )
        if not request.supervisor and self._owner is not None:
            raise ValueError(
                f"the transition belongs to {self._owner}; a supervisor can reassign it"
            )

    @workflow.update
    async def assign_transition(self, request: AssignRequest) -> Ownership:
        await workflow.wait_condition(lambda: self._plan is not None)
        try:
            self._assignable(request)  # again: another claim may have won meanwhile
        except ValueError as exc:
            raise ApplicationError(str(exc), type="NotAssignable") from None
        if request.to == self._owner:
            return self._ownership(changed=False)
        previous = self._owner
        self._owner = request.to
        self._owner_since = workflow.now()
        claimed = request.to == request.by
        self._event(
            "claimed" if claimed else "assigned",
            actor=request.by,
            detail=f"to {request.to}" + (f" (was {previous})" if previous else ""),
        )
        await self._publish()
        return self._ownership(changed=True)

    @assign_transition.validator
    def validate_assign_transition(self, request: AssignRequest) -> None:
        self._assignable(request)
