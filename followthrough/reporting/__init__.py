"""Reporting: what the record says over a period, as numbers, charts, the digest and the report.

    metrics_view.measure(store, ...)   the metrics of a period, read from the record
    charts                             SVG charts for the dashboard and the report
    digest.build_digest(...)           the council digest
    report.quarterly_report(...)       the quarterly report (report_templates/: HTML and Markdown)

Nothing is imported here, so reading the digest does not load Jinja.
"""
