"""Email: rendering notices from templates and delivering them (SMTP or the local outbox)."""
