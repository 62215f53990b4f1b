"""The servers the tests talk to, on 127.0.0.1 only.

Real programs where one exists (Prometheus, Alertmanager: Debian's packages, run by `daemon`);
our own small stand-ins where none does (`jira_server`, since no open-source Jira emulator
exists); and what they serve (`metrics_target`'s counters, `sli`'s synthetic SLI history).
"""
