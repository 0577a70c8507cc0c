"""``fonti eval``: metrics, the runner over the HTTP API, and the report files."""
