"""Kopf registration of the validating webhook; imported only when it is enabled
(MEETSCALE_WEBHOOK_ENABLED), since Kopf refuses admission handlers without a server.

The handlers are coroutines on purpose: they read the Kopf indexes, which the event
loop updates, so they must run on the loop and not in Kopf's worker threads.
"""

from __future__ import annotations

from typing import Any

import kopf

from meetscale import GROUP, VERSION
from meetscale.admission.webhook import check_meeting, check_pool, check_quota
from meetscale.runtime import Runtime, pool_key_of


@kopf.on.validate(GROUP, VERSION, "meetings", operations=["CREATE", "UPDATE"], ignore_failures=True)
async def validate_meeting(*, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    runtime: Runtime = memo["runtime"]
    key = pool_key_of(body.get("spec", {}).get("pool"), runtime.settings)
    check_meeting(
        body=body,
        old=kwargs.get("old"),
        pool_key=key,
        meetings=kwargs["meetings_by_pool"].get(key, []),
        quotas=[q for store in kwargs["quotas_by_name"].values() for q in store],
        namespace_labels={ns: next(iter(s)) for ns, s in kwargs["namespace_labels"].items()},
        pools={k: next(iter(s)) for k, s in kwargs["pools_by_key"].items() if next(iter(s))},
        settings=runtime.settings,
    )


@kopf.on.validate(
    GROUP, VERSION, "agencyquotas", operations=["CREATE", "UPDATE"], ignore_failures=True
)
async def validate_quota(spec: kopf.Spec, **_: Any) -> None:
    check_quota(spec)


@kopf.on.validate(
    GROUP, VERSION, "bridgepools", operations=["CREATE", "UPDATE"], ignore_failures=True
)
async def validate_pool(spec: kopf.Spec, **_: Any) -> None:
    check_pool(spec)
