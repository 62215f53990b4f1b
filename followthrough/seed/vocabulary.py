"""The words seeded records are made of (followthrough/seed/): failure scenarios with their
titles, summaries, contributing factors, detection gaps, recovery steps and action items, and the
things people write while reviewing and following up.

Texts may name {service}, {dependency}, {percent}, {minutes} and (generic items) {scenario}. Every
acceptance criterion names a number or an observable fact, as the draft rules (draft.vagueness)
and reviewers ask.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    """One way things break, with the words people use for it.

    Texts may name {service}, {dependency}, {percent} and {minutes}. An item is (title,
    acceptance criterion): the criterion names a number or an observable fact, as reviewers ask.
    """

    name: str  # a few words, used in generic item titles
    weight: int  # how common it is
    titles: tuple[str, ...]
    summary: str
    factors: tuple[tuple[str, tuple[str, ...]], ...]
    detection_gap: str
    recovery: tuple[str, ...]
    decision: str
    items: tuple[tuple[str, str], ...]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="connection pool",
        weight=9,
        titles=(
            "{service} connection pool exhausted during peak traffic",
            "Database connection pool exhausted on {service}",
        ),
        summary="The {service} database connection pool was exhausted; requests queued until "
        "they hit the 30 second timeout.",
        factors=(
            (
                "Connection pool size was fixed at 20 while traffic tripled since the last "
                "capacity review",
                ("capacity",),
            ),
            ("A slow reporting query held connections for seconds under load", ("dependency",)),
        ),
        detection_gap="No alert on connection pool saturation; the first page was on the "
        "5xx ratio.",
        recovery=(
            "Raised the pool size to 60 and restarted the pods",
            "Killed the long-running report query",
        ),
        decision="Raised the pool size instead of shedding load",
        items=(
            (
                "Alert on connection pool saturation for {service}",
                "A page fires when pool usage stays above 90% for 5 minutes",
            ),
            (
                "Size the {service} connection pool from load tests",
                "The pool size comes from a load test at 2x peak traffic, recorded in the runbook",
            ),
            (
                "Move reporting queries to the read replica",
                "0 reporting queries run against the primary database for 7 days",
            ),
            (
                "Statement timeout for {service} queries",
                "Every query from {service} has a statement timeout of 5 seconds or less",
            ),
        ),
    ),
    Scenario(
        name="certificate expiry",
        weight=4,
        titles=(
            "TLS certificate expired on {service}",
            "Expired certificate broke {service} ingress",
        ),
        summary="The certificate for the {service} ingress expired at midnight UTC; clients "
        "failed the TLS handshake.",
        factors=(
            (
                "Certificate renewal was a manual task on one person's calendar",
                ("human-error-process", "infrastructure"),
            ),
            ("No alert on certificate expiry dates", ("alerting-gap",)),
        ),
        detection_gap="Nothing checked certificate expiry dates; customers reported handshake "
        "errors first.",
        recovery=("Issued a new certificate by hand and reloaded the ingress",),
        decision="Issued a certificate by hand rather than wait for the renewal job fix",
        items=(
            (
                "Automate certificate renewal for {service}",
                "100% of {service} certificates renew automatically 30 days before they expire",
            ),
            (
                "Alert 14 days before any certificate expires",
                "A ticket alert fires for every certificate within 14 days of expiry",
            ),
            (
                "Certificate expiry runbook",
                "The runbook lists the 5 steps to issue and deploy a certificate by hand, "
                "tested in a drill",
            ),
        ),
    ),
    Scenario(
        name="retry storm",
        weight=6,
        titles=(
            "Retry storm from {service} clients overloaded the API gateway",
            "Retry storm after a {dependency} blip took down {service}",
        ),
        summary="A short {dependency} error burst made every {service} client retry at once; "
        "the retry storm kept the gateway saturated after {dependency} recovered.",
        factors=(
            ("Clients retried immediately with no backoff or jitter", ("dependency", "capacity")),
            ("The shared HTTP client has no retry budget", ("testing-gap",)),
        ),
        detection_gap="Gateway saturation alerted only on CPU, 20 minutes after the retries "
        "started.",
        recovery=("Blocked retries at the gateway for 10 minutes", "Scaled the gateway to 3x"),
        decision="Blocked client retries at the gateway instead of scaling further",
        items=(
            (
                "Exponential backoff with jitter in the shared HTTP client",
                "All retries in the shared client use exponential backoff with jitter, "
                "covered by 3 unit tests",
            ),
            (
                "Retry budget of 10% per client",
                "Retries never exceed 10% of requests in the load test",
            ),
            (
                "Load shedding at the gateway above 80% CPU",
                "The gateway answers 429 to 100% of excess requests above 80% CPU in the load test",
            ),
        ),
    ),
    Scenario(
        name="config push",
        weight=10,
        titles=(
            "Config push took {service} offline",
            "Bad config push dropped half the {service} backends",
        ),
        summary="A config push removed half the {service} backends from the load balancer.",
        factors=(
            (
                "Config pushes skip canary for the load balancer",
                ("config-change", "deploy"),
            ),
            ("The config validator does not check backend pool sizes", ("testing-gap",)),
        ),
        detection_gap="No alert on the {service} 5xx ratio; a customer reported it first.",
        recovery=("Reverted the config to the previous revision", "Drained the bad nodes"),
        decision="Rolled back the config instead of scaling out",
        items=(
            (
                "Canary config pushes for {service}",
                "100% of config pushes go through a 10% canary for at least 15 minutes",
            ),
            (
                "Validate backend pool size in the config linter",
                "The linter rejects any config that removes more than 20% of backends",
            ),
            (
                "One-click config rollback",
                "A config rollback completes in under 2 minutes in a drill",
            ),
        ),
    ),
    Scenario(
        name="DNS resolution",
        weight=4,
        titles=(
            "DNS resolution failures for {service}",
            "Internal DNS outage broke service discovery for {service}",
        ),
        summary="Internal DNS answered SERVFAIL for {minutes} minutes; {service} could not "
        "resolve {dependency}.",
        factors=(
            (
                "A DNS cache TTL of 5 seconds multiplied the load on the resolvers",
                ("infrastructure", "capacity"),
            ),
            ("One DNS provider with no fallback resolver", ("dependency",)),
        ),
        detection_gap="DNS errors showed up only as {dependency} timeouts in the logs.",
        recovery=("Pointed the nodes at the secondary resolvers", "Flushed the node caches"),
        decision="Failed over to the secondary resolvers before the cause was known",
        items=(
            (
                "Secondary DNS resolver for {service}",
                "Resolution keeps working with the primary resolver down, shown in a failover test",
            ),
            ("DNS cache TTL of 60 seconds", "The DNS cache TTL is 60 seconds in every cluster"),
            (
                "Alert on the DNS SERVFAIL rate",
                "A page fires when SERVFAIL answers exceed 1% for 5 minutes",
            ),
        ),
    ),
    Scenario(
        name="upstream timeout",
        weight=9,
        titles=(
            "Upstream timeouts from {dependency} slowed {service}",
            "{service} requests timed out waiting on {dependency}",
        ),
        summary="{dependency} slowed down and {service} waited on it with a 60 second timeout; "
        "worker threads ran out and requests failed.",
        factors=(
            (
                "The client timeout of 60 seconds was longer than the caller's 30 second timeout",
                ("dependency",),
            ),
            (
                "No circuit breaker between {service} and {dependency}",
                ("dependency", "testing-gap"),
            ),
        ),
        detection_gap="Latency alerts use the mean, which hid the p99 timeouts for 25 minutes.",
        recovery=("Lowered the {dependency} timeout to 5 seconds by a flag", "Restarted workers"),
        decision="Cut the timeout by a flag rather than wait for {dependency} to recover",
        items=(
            (
                "Client timeout of 2 seconds for {dependency}",
                "The {dependency} client times out after 2 seconds, shown by a fault-injection "
                "test",
            ),
            (
                "Circuit breaker around {dependency} calls",
                "The breaker opens within 10 seconds of 50% errors in a fault-injection test",
            ),
            (
                "Dashboard of {dependency} latency percentiles",
                "The dashboard shows p50, p90 and p99 latency for every {dependency} endpoint",
            ),
        ),
    ),
    Scenario(
        name="memory leak",
        weight=6,
        titles=(
            "Memory leak in a {service} release caused OOM restarts",
            "{service} pods crash looping after deploy",
        ),
        summary="A {service} release leaked memory; pods were OOM killed every 20 minutes and "
        "{percent}% of requests failed during restarts.",
        factors=(
            ("The release was not soaked long enough to show the leak", ("deploy", "testing-gap")),
            ("Rollback needed a manual approval at night", ("human-error-process",)),
        ),
        detection_gap="OOM kills were not alerted on; the 5xx page came 15 minutes later.",
        recovery=("Rolled back to the previous release", "Raised memory limits for one hour"),
        decision="Rolled back instead of hot-fixing the leak",
        items=(
            (
                "Soak test every {service} release for 2 hours",
                "Every release runs a 2 hour soak test with memory growth under 5%",
            ),
            ("Alert on OOM kills", "A page fires on 3 or more OOM kills within 10 minutes"),
            (
                "Automatic rollback on crash loops",
                "A deploy rolls back within 5 minutes when 20% of its pods crash loop",
            ),
        ),
    ),
    Scenario(
        name="schema migration",
        weight=3,
        titles=(
            "Schema migration locked the {service} orders table",
            "Data migration blocked writes on {service}",
        ),
        summary="A schema migration took an exclusive lock on a large {service} table for "
        "{minutes} minutes; writes queued and timed out.",
        factors=(
            (
                "The migration added an index without CONCURRENTLY and held a lock for minutes",
                ("data-migration",),
            ),
            ("Migrations are not reviewed for locking behaviour", ("human-error-process",)),
        ),
        detection_gap="Lock waits are not graphed; the write timeout alert was the first sign.",
        recovery=("Cancelled the migration", "Re-ran it with CREATE INDEX CONCURRENTLY"),
        decision="Cancelled the migration instead of waiting for it to finish",
        items=(
            (
                "Lint migrations for locking DDL",
                "CI fails any migration that takes an ACCESS EXCLUSIVE lock on a table over 1 GB",
            ),
            (
                "Run migrations on a production-size copy first",
                "Every migration runs on a production-size copy before release, with its "
                "timings in the pull request",
            ),
            ("Lock timeout for migrations", "Every migration sets lock_timeout to 5 seconds"),
        ),
    ),
    Scenario(
        name="disk full",
        weight=4,
        titles=("Disk full on the {service} database host", "{service} logging volume filled up"),
        summary="The {service} database host ran out of disk; writes failed until logs were "
        "rotated.",
        factors=(
            (
                "Log retention grew without a cap after a verbosity change",
                ("capacity", "config-change"),
            ),
            ("The disk usage alert at 98% left no time to act", ("alerting-gap",)),
        ),
        detection_gap="The disk alert threshold of 98% fired 3 minutes before the disk was full.",
        recovery=("Deleted rotated logs older than 2 days", "Grew the volume by 200 GB"),
        decision="Deleted old logs before growing the volume",
        items=(
            (
                "Disk usage alert at 80% with a 4 hour forecast",
                "A ticket alert fires at 80% disk usage or when the disk fills within 4 hours",
            ),
            ("Cap log retention at 7 days", "Log retention is 7 days on every {service} host"),
        ),
    ),
    Scenario(
        name="credential rotation",
        weight=3,
        titles=(
            "Credential rotation broke {service} authentication",
            "Expired service token locked {service} out of {dependency}",
        ),
        summary="A rotated secret was not picked up by running {service} pods; calls to "
        "{dependency} failed with 401 for {minutes} minutes.",
        factors=(
            (
                "Running pods do not reload rotated secrets",
                ("security", "config-change"),
            ),
            ("The rotation steps live in one engineer's notes", ("runbook-gap",)),
        ),
        detection_gap="401s from {dependency} were logged but not alerted on.",
        recovery=("Restarted the {service} pods to load the new secret",),
        decision="Restarted the pods rather than roll the secret back",
        items=(
            (
                "Reload secrets without a restart",
                "Pods pick up a rotated secret within 60 seconds, shown in staging",
            ),
            (
                "Rotation runbook with a rollback step",
                "The rotation runbook has a rollback step tested in 1 drill",
            ),
            (
                "Alert on 401s from {dependency}",
                "A page fires when 401 answers from {dependency} exceed 2% for 5 minutes",
            ),
        ),
    ),
    Scenario(
        name="manual failover",
        weight=2,
        titles=(
            "Manual failover sent writes to a stale {service} replica",
            "Failover drill took {service} down",
        ),
        summary="During a manual failover the {service} writes went to a replica 40 seconds "
        "behind; {percent}% of recent orders had to be replayed.",
        factors=(
            (
                "The failover runbook skipped the replication lag check",
                ("runbook-gap", "human-error-process"),
            ),
        ),
        detection_gap="Replication lag is graphed but not alerted on.",
        recovery=("Failed back to the old primary", "Replayed the lost writes from the WAL"),
        decision="Failed back rather than reconcile on the new primary",
        items=(
            (
                "Automate the replication lag check before failover",
                "Failover refuses to proceed with replication lag above 1 second",
            ),
            ("Failover drill every quarter", "A failover drill runs every 90 days with results"),
        ),
    ),
    Scenario(
        name="node capacity",
        weight=4,
        titles=(
            "Kubernetes node pool failed to scale for {service}",
            "Cluster quota exhausted while scaling {service}",
        ),
        summary="The node pool hit its cloud quota during a traffic spike; {service} pods stayed "
        "pending for {minutes} minutes.",
        factors=(
            ("The node pool hit its cloud quota of 200 nodes", ("capacity", "infrastructure")),
            ("Quota usage is not alerted on", ("alerting-gap",)),
        ),
        detection_gap="Pending pods were visible on the dashboard but nothing paged.",
        recovery=("Raised the cloud quota", "Moved batch jobs off the cluster"),
        decision="Evicted batch jobs to make room before the quota increase landed",
        items=(
            (
                "Alert at 80% of cloud quotas",
                "A ticket alert fires when any quota passes 80% of its limit",
            ),
            (
                "Reserve headroom for {service}",
                "The cluster keeps 30% spare capacity for {service} at peak",
            ),
        ),
    ),
    Scenario(
        name="cache stampede",
        weight=3,
        titles=(
            "Cache stampede after a {service} deploy flushed Redis",
            "Redis cache stampede overloaded {service}",
        ),
        summary="A deploy flushed the {service} cache; every instance refilled the same keys "
        "at once and the database saturated.",
        factors=(
            (
                "Every instance refilled the same keys at once after the cache flush",
                ("capacity", "deploy"),
            ),
        ),
        detection_gap="Cache hit ratio is not alerted on; the database CPU alert fired first.",
        recovery=("Rate limited cache fills", "Warmed the cache from a snapshot"),
        decision="Rate limited the fills instead of failing over the database",
        items=(
            (
                "Request coalescing for cache fills",
                "Concurrent misses for one key cause 1 database query in the load test",
            ),
            ("Stagger cache TTLs by 10%", "Cache TTLs carry 10% random jitter on every key"),
        ),
    ),
    Scenario(
        name="third-party outage",
        weight=3,
        titles=(
            "{dependency} outage failed {service} requests",
            "{service} degraded during a {dependency} incident",
        ),
        summary="{dependency} had an outage of its own; {service} had no fallback and "
        "{percent}% of requests failed.",
        factors=(
            ("No fallback when {dependency} is down", ("dependency",)),
            ("The vendor status page was the only signal", ("alerting-gap",)),
        ),
        detection_gap="We learned of the outage from the vendor status page, not our alerts.",
        recovery=("Switched to the secondary provider by hand",),
        decision="Switched providers by hand before the vendor confirmed the outage",
        items=(
            (
                "Automatic failover to the secondary provider",
                "Traffic moves to the secondary provider within 2 minutes of 20% errors",
            ),
            (
                "Synthetic check against {dependency}",
                "A synthetic check calls {dependency} every 60 seconds and pages after 3 failures",
            ),
        ),
    ),
)

GENERIC_ITEMS: tuple[tuple[str, str], ...] = (
    (
        "Runbook for {scenario} incidents on {service}",
        "The runbook covers detection, mitigation and rollback in 3 steps tested in a drill",
    ),
    (
        "Synthetic check for {service}",
        "A synthetic check runs every 60 seconds and pages after 3 failures",
    ),
    (
        "Game day for {scenario} on {service}",
        "A game day reproduces the failure in staging and the alert fires within 5 minutes",
    ),
    (
        "Status page template for {service}",
        "The template is published and used within 15 minutes in the next 2 incidents",
    ),
    (
        "Error budget dashboard for {service}",
        "The dashboard shows the 28-day error budget of every {service} SLO",
    ),
    (
        "Integration test for the {scenario} failure",
        "An integration test reproduces the failure and passes in CI on every merge",
    ),
    (
        "On-call handover checklist for {service}",
        "The checklist has 8 items and is used in 100% of handovers for 4 weeks",
    ),
    (
        "Escalation contact for {dependency}",
        "The {dependency} escalation contact is in the runbook and answered a test call",
    ),
    (
        "Capacity review for {service}",
        "Capacity for {service} is reviewed every 30 days with headroom above 40%",
    ),
    (
        "Alert routing test for {service}",
        "A test alert reaches the on-call pager within 2 minutes every week",
    ),
    (
        "Request ids in every {service} error log",
        "100% of {service} error logs carry the request id",
    ),
    (
        "Timeout and retry settings review for {service}",
        "Every {service} client has a timeout under 5 seconds and at most 2 retries",
    ),
)

DEPENDENCIES = (
    "payments-provider",
    "auth-service",
    "search-cluster",
    "redis-sessions",
    "kafka",
    "object-store",
    "fraud-api",
)

APPROVAL_COMMENTS = ("", "", "Clear timeline and good action items", "Thanks, well argued")
CHANGE_REASONS = (
    "The timeline is missing when the rollback decision was made",
    "Say how many customers were affected, in numbers",
    "Split the contributing factors: the config push and the missing canary are separate",
)
VERIFY_NOTES = (
    "Checked in staging: the criterion holds",
    "Saw it work in the drill",
    "Reviewed the dashboard and the test run",
    "",
)
REJECT_REASONS = (
    "The alert fires in staging but is not routed to the pager yet",
    "The load test ran at 1x peak, not 2x as the criterion says",
    "The runbook is missing the rollback step",
)
EXTENSION_REASONS = (
    "Blocked on the platform team's cluster migration",
    "The change needs a maintenance window next month",
    "Two of us were out; the load test needs another week",
)
RISK_REASONS = (
    "The service is retired next quarter; the risk is accepted until then",
    "The fix needs a vendor change that is not planned; the fallback covers the risk",
    "The change costs more than the risk at current traffic; reviewed again next quarter",
)
