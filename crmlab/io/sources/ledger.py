"""The exclusions ledger of an adapter run: every input row is mapped or counted with a reason.

Reasons are snake_case codes (``cancelled_order``, ``duplicate_purchase_event`` ...); the
human-readable phrase sits beside each code in :data:`PHRASES`. ``notes`` count rows that were
kept but changed (``partial_refund``: revenue net of the refund), so they are visible too.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

PHRASES = {
    "cancelled_order": "cancelled orders (every line-item row of the order)",
    "refunded_order": "fully refunded orders",
    "voided_order": "voided orders (payment never captured)",
    "unpaid_order": "orders not paid yet (pending, authorized, 입금전)",
    "returned_order": "returned orders (반품, 환불)",
    "guest_order": "guest orders without a member id (set user_id: phone to keep them)",
    "duplicate_purchase_event": "repeated purchase events of a transaction already counted",
    "purchase_without_transaction_id": "purchase events without ecommerce.transaction_id",
    "engagement_without_send": "opens, clicks or deliveries of a message whose send is not in the export",
    "duplicate_send": "repeated send events of one message",
    "unmapped_event_type": "message event types crmlab does not read (e.g. uninstall)",
    "missing_recipient": "receipts without a recipient phone number",
    "missing_user": "rows without a user id",
    "line_item_row": "further line-item rows of an order (folded into its first row)",
    "engagement_event": "engagement events folded into their send's row",
    "partial_refund": "orders kept with revenue net of a partial refund",
    "missing_ga_session_id": "events without ga_session_id (joined to the adjacent session within 30 minutes, else one of their own)",
    "additional_items": "items after the first of GA4 events with several (the event row carries the first; a purchase's all go into its order)",
    "events_with_several_items": "GA4 events listing more than one item",
    "revenue_from_items": "GA4 orders without purchase_revenue or value, revenue summed from their items",
    "delivery_inferred_from_engagement": "messages opened or clicked without a delivery event (delivered when sent)",
    "bounced": "messages kept as sent but not delivered (bounce or failed receipt)",
}


@dataclass
class Ledger:
    """Counts of one adapter run: input rows, rows mapped, rows folded, exclusions and notes."""
    source: str
    table: str
    rows_in: int = 0
    excluded: Counter = field(default_factory=Counter)
    folded: Counter = field(default_factory=Counter)  # input rows merged into another output row
    notes: Counter = field(default_factory=Counter)   # rows kept but changed

    def exclude(self, reason: str, n: int) -> None:
        if n:
            self.excluded[reason] += int(n)

    def fold(self, reason: str, n: int) -> None:
        if n:
            self.folded[reason] += int(n)

    def note(self, reason: str, n: int) -> None:
        if n:
            self.notes[reason] += int(n)

    @property
    def accounted(self) -> int:
        """Input rows that are excluded or folded (the rest each became one output row)."""
        return sum(self.excluded.values()) + sum(self.folded.values())

    def frame(self) -> pd.DataFrame:
        rows = [(self.source, self.table, kind, reason, n, PHRASES.get(reason, reason))
                for kind, counter in (("excluded", self.excluded), ("folded", self.folded), ("note", self.notes))
                for reason, n in sorted(counter.items())]
        return pd.DataFrame(rows, columns=["source", "table", "kind", "reason", "rows", "phrase"])
