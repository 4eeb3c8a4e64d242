"""How often a step that failed is tried again within its run.

Only steps that can run twice with the same result carry a retry policy: the scan and the
decisions (reads and pure computation), the reports (written over at the same location), the
report retention (removing what is already gone is a no-op) and the deletion batches (the
cascade re-reads each user and every write is conditional, so a replayed batch only finishes
what the failed attempt left). The warning step has none: each user's send is already retried by
the AWS client and a failure is recorded per user for the next run; after a failure of the step
itself, whether an email went out is unknown, and only the claim lease stands between a replay
and a second email. Its replay is an operator's re-execution, never automatic.
"""

import dagster as dg

# AWS clients already retry each request (up to 8 attempts); this covers what outlasts them
# (an endpoint or the network down for a while) or happens outside them (a worker restarted).
IDEMPOTENT_STEP_RETRY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
