"""The outside world's services, as the product calls them.

    outbound          calling out only where the policy allows; network failures in words
    prometheus        the one client of Prometheus's HTTP API (checks and SLO measurement)
    slo_measurement   what an incident cost an SLO's error budget, asked of Prometheus

The checkers (followthrough.checks) and Jira (followthrough.integrations.jira) build on these.
"""
