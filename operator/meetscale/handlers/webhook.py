"""Kopf registration of the validating webhook; imported only when it is enabled
(MEETSCALE_WEBHOOK_ENABLED), since Kopf refuses admission handlers without a server.

The handlers are coroutines on purpose: they read the Kopf indexes, which the event
loop updates, so they must run on the loop and not in Kopf's worker threads. Kopf serves
admission requests before its indexes are filled; until then (AdmissionState.indexed,
set by the first resource handler) Meetings are accepted unchecked, as with the webhook
down, and the admission pass decides them: empty indexes would refuse every Meeting.
"""

from __future__ import annotations

from typing import Any

import kopf

from meetscale import GROUP, VERSION
from meetscale.admission.webhook import check_meeting, check_pool, check_quota
from meetscale.handlers.admission import state_of
from meetscale.runtime import Runtime, pool_key_of


@kopf.on.validate(GROUP, VERSION, "meetings", operations=["CREATE", "UPDATE"], ignore_failures=True)
async def validate_meeting(*, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    state = state_of(memo)
    if state is None or not state.indexed:
        return
    runtime: Runtime = memo["runtime"]
    key = pool_key_of(body.get("spec"), runtime.settings)
    check_meeting(
        body=body,
        old=kwargs.get("old"),
        pool_key=key,
        meetings=kwargs["meetings_by_pool"].get(key, []),
        elsewhere=[
            rec for k, store in kwargs["meetings_by_pool"].items() if k != key for rec in store
        ],
        quotas=[q for store in kwargs["quotas_by_name"].values() for q in store],
        namespace_labels={ns: next(iter(s)) for ns, s in kwargs["namespace_labels"].items()},
        pools={k: next(iter(s), None) for k, s in kwargs["pools_by_key"].items()},
        settings=runtime.settings,
    )


def _old_spec(kwargs: dict[str, Any]) -> Any:
    old = kwargs.get("old")
    return old.get("spec") if old else None


@kopf.on.validate(
    GROUP, VERSION, "agencyquotas", operations=["CREATE", "UPDATE"], ignore_failures=True
)
async def validate_quota(spec: kopf.Spec, **kwargs: Any) -> None:
    check_quota(spec, _old_spec(kwargs))


@kopf.on.validate(
    GROUP, VERSION, "bridgepools", operations=["CREATE", "UPDATE"], ignore_failures=True
)
async def validate_pool(
    spec: kopf.Spec, name: str | None, namespace: str | None, memo: kopf.Memo, **kwargs: Any
) -> None:
    await check_pool(
        spec,
        old_spec=_old_spec(kwargs),
        name=name or "pool",
        namespace=namespace or "",
        api=memo["runtime"].api,
        pools={k: next(iter(s), None) for k, s in kwargs["pools_by_key"].items()},
    )
