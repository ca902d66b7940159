"""The admission core: Meetings against agency quotas and the pool ceiling (pure).

Rooms: ``types`` (what it is told and what it answers), ``checks`` (what can never be
admitted), ``plan`` (the pass), ``tree`` (its interval trees), ``agency`` (which quota a
namespace belongs to), ``validation`` (the webhook's checks), ``rooms`` (which Jitsi room a
Meeting books and which bookings clash).

`decide_admission(meetings, quotas, pool, now)` takes plain frozen dataclasses (the
shell converts the CRDs) and returns an `AdmissionPlan`: a `Decision` for every
Pending or Queued meeting and the `AgencyUsage` of every agency that has a quota or a
reservation. Nothing here reads a clock: `now` is a parameter, and every time must
carry a time zone. The result does not depend on the order of the inputs.

Semantics
---------
Reservations. A meeting that holds a reservation (phase Admitted or Running, or
admitted earlier in the same pass) holds `participants` of its agency's quota, one of
its agency's concurrent meetings, and `pool units` of the pool ceiling during
`[start - pre_join_margin, end)`. Time before `now` is ignored (windows are clipped
to `[now, ...)`), so a meeting whose end has passed holds nothing. Pending, Queued,
Finished, Cancelled and Rejected meetings hold nothing. Admitted and Running meetings
are never re-decided, never evicted, and get no `Decision` (the plan only lists
Pending and Queued meetings); they are counted in `usage`, even when they exceed a
limit that was lowered after they were admitted. A quota holds across every pool: a
reservation held in another pool (`elsewhere`) counts against its agency's quota and
not against this pool's ceiling.

Limits are checked as the peak, over the candidate's window, of the concurrent sum of
overlapping reservations (participants, meetings, pool units), i.e. a sweep over the
interval endpoints; meetings whose windows do not overlap never compete.

Pool units. A shared meeting takes `participants` units of the pool ceiling
`max_bridges * participants_per_bridge`; a confidential one takes whole bridges of its
own: `ceil(participants / participants_per_bridge) * participants_per_bridge` units.
Agency quotas always count declared participants.

Rejected at once (terminal, whatever else is booked): `NoQuota` (no AgencyQuota for
the agency), `StartInPast` (its end has passed and it was never admitted),
`PriorityNotAllowed` (priority above the quota's `max_priority`), `MeetingTooLarge`
(above `max_meeting_participants`, or more pool units than the whole ceiling),
`MeetingTooLong`, `TooFarAhead` (a Pending meeting whose `start - max(now, created_at)`
exceeds `max_book_ahead`; a Queued one was within it when decided, and a clock that goes
back does not reject it), and `QuotaExceeded`
when the meeting could not fit even with nothing else booked (participants above the
nominal quota plus everything it could ever borrow, or `max_concurrent_meetings` 0).

Blocked by other reservations (`QuotaExceeded`, `PoolFull`): `Queued` while
`now < start` (a booking may still be cancelled), otherwise `Rejected`. A meeting that
started but has not ended and fits is admitted (ad-hoc meetings).

Order. Candidates are taken by priority tier: meeting `priority` (higher first), then
the agency's priority, `AgencyQuotaView.priority` (higher first; this is the single
source of truth for it, `MeetingRequest.agency_priority` is informational and not
used). Within a tier the agencies take turns by weighted fair share, as Kueue's fair
sharing: the next meeting comes from the agency whose share is lowest, where an
agency's share for its next meeting is the peak of the pool units it already holds
in that meeting's window divided by its `weight`; ties go to the earlier `created_at`,
then to the smaller key. Inside one agency meetings go first-come first-served by
(`created_at`, key); a blocked meeting does not block the ones behind it. Each tier
runs twice: first only meetings that fit their agency's own nominal quota are decided
(those that would need to borrow wait), then the ones that need to borrow, so in a
tier owners use their own quota before borrowers take it. A meeting is checked
against everything admitted before it, so within a pass admission is greedy and
monotone: a meeting that is blocked could not be added to the final plan either.

Cohorts (borrowing and reclaim). Each agency in a cohort splits its nominal
`max_concurrent_participants` N into a lendable part L = min(lending_limit, N) (all
of N when unset) and a guaranteed part G = N - L. The cohort's shared capacity is
the sum of L over its members; at each instant a member uses max(0, U - G) of it,
where U is its own booked participants. An agency may book beyond N (borrow) when,
at every instant of the window where it would be above N: its borrowing U - N stays
within `borrowing_limit` (unlimited when unset) and the cohort's use of the shared
capacity stays within the total; idle quota that the owner's own reservations need
is therefore never lent. Reclaim: a booking that stays within the agency's own N is
checked against the agency's own reservations only, never against what others
borrowed, so an owner always gets its nominal quota back for new meetings; nothing is
evicted, so the cohort may be over-committed for a while, and the pool ceiling stays
the hard stop. The meeting count limit cannot be borrowed.

Queue position. `queue_position` of a Queued meeting is its 1-based rank among all
meetings of the pool queued in this pass, in the order the pass considered them
(priority tier, fair share, created_at, key); roughly the order in which they get in
when capacity frees up (fair shares may reorder agencies by then).

Usage. `participants_in_use`, `meetings_in_use` and `borrowed_participants` are at
`now` (reservations whose window contains `now`); `borrowed_participants` is
max(0, U - N) for cohort members and 0 otherwise. `peak_booked_participants` is the
peak of booked participants over `[now, inf)`. `admitted_meetings` counts the
reservations still held (Admitted/Running ones whose end is after `now`, plus the
ones admitted by this plan) and `pending_meetings` the meetings this plan queues.
Both include this plan's decisions.

Cost. Building is O(n log n). Per meeting, with A(m) the slots (distinct endpoints)
of its agency inside its window: the agency checks and booking use a plain list (max
of a slice, in C) for agencies with up to 256 slots and a range-add/range-max segment
tree, O(log n), beyond; the pool is a segment tree, O(log n); the fair-share heap is
O(log #agencies). A cohort check is O(log n) unless the cohort is nearly full, then
O(A(m) log n); booking in a cohort is O(log n) for members without a lending limit
and O(A(m) log n) with one. See benchmarks/bench_admission.py.
"""

from meetscale.decide.admit.plan import decide_admission
from meetscale.decide.admit.types import (
    AdmissionPlan,
    AgencyQuotaView,
    AgencyUsage,
    Decision,
    DecisionPhase,
    MeetingRequest,
    PoolCeiling,
    Reason,
)

__all__ = [
    "AdmissionPlan",
    "AgencyQuotaView",
    "AgencyUsage",
    "Decision",
    "DecisionPhase",
    "MeetingRequest",
    "PoolCeiling",
    "Reason",
    "decide_admission",
]
