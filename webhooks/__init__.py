"""Signed webhooks from a durable outbox (issue 15): admins register endpoints; events are written
as delivery rows in the transaction that caused them; a worker sends them, signed, with retries."""
