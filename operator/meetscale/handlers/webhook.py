"""Kopf registration of the validating webhook; imported only when it is enabled
(MEETSCALE_WEBHOOK_ENABLED), since Kopf refuses admission handlers without a server.

The handlers are coroutines on purpose: they read the Kopf indexes, which the event
loop updates, so they must run on the loop and not in Kopf's worker threads. Kopf serves
webhooks as soon as it has discovered the resources, before the indexes are filled: the
Meeting handler first waits a little for them (Runtime.indexed); if they are still not filled,
the Meeting is accepted unchecked, as with the webhook down, and the admission pass decides
it: empty indexes would refuse every Meeting ("namespace belongs to no agency").
"""

from __future__ import annotations

from typing import Any

import kopf

from meetscale import GROUP, VERSION
from meetscale.admission.webhook import (
    MEETING_HOOK,
    POOL_HOOK,
    QUOTA_HOOK,
    check_meeting,
    check_pool,
    check_quota,
)
from meetscale.runtime import Runtime, pool_key_of

# Shorter than the webhook's timeoutSeconds (the chart's default 10), so the answer is ours.
INDEX_WAIT_SECONDS = 5.0


@kopf.on.validate(
    GROUP, VERSION, "meetings", id=MEETING_HOOK, operations=["CREATE", "UPDATE"],
    ignore_failures=True,
)  # fmt: skip
async def validate_meeting(*, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    runtime: Runtime = memo["runtime"]
    if not await runtime.wait_indexed(INDEX_WAIT_SECONDS):
        return  # unchecked, as with the webhook down: the admission pass decides it
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
    GROUP, VERSION, "agencyquotas", id=QUOTA_HOOK, operations=["CREATE", "UPDATE"],
    ignore_failures=True,
)  # fmt: skip
async def validate_quota(spec: kopf.Spec, **kwargs: Any) -> None:
    check_quota(spec, _old_spec(kwargs))


@kopf.on.validate(
    GROUP, VERSION, "bridgepools", id=POOL_HOOK, operations=["CREATE", "UPDATE"],
    ignore_failures=True,
)  # fmt: skip
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
