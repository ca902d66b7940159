"""Kopf registration of the validating webhook; imported only when it is enabled
(MEETSCALE_WEBHOOK_ENABLED), since Kopf refuses admission handlers without a server.

The handlers are coroutines on purpose: they read the Kopf indexes, which the event
loop updates, so they must run on the loop and not in Kopf's worker threads. Kopf serves
webhooks as soon as it has discovered the resources, before the indexes are filled, so the
Meeting handler first waits for them (Runtime.indexed): an empty index would refuse a valid
Meeting ("namespace belongs to no agency").
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

INDEX_WAIT_SECONDS = 10.0


@kopf.on.validate(
    GROUP, VERSION, "meetings", id=MEETING_HOOK, operations=["CREATE", "UPDATE"],
    ignore_failures=True,
)  # fmt: skip
async def validate_meeting(*, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    runtime: Runtime = memo["runtime"]
    if not await runtime.wait_indexed(INDEX_WAIT_SECONDS):
        raise kopf.AdmissionError(
            f"meetscale is starting: its indexes are not loaded after {INDEX_WAIT_SECONDS:g} s; "
            "try again shortly",
            code=503,
        )
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
    GROUP, VERSION, "agencyquotas", id=QUOTA_HOOK, operations=["CREATE", "UPDATE"],
    ignore_failures=True,
)  # fmt: skip
async def validate_quota(spec: kopf.Spec, **_: Any) -> None:
    check_quota(spec)


@kopf.on.validate(
    GROUP, VERSION, "bridgepools", id=POOL_HOOK, operations=["CREATE", "UPDATE"],
    ignore_failures=True,
)  # fmt: skip
async def validate_pool(spec: kopf.Spec, **_: Any) -> None:
    check_pool(spec)
