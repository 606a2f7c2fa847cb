"""The deployment: systemd units, Redis, Prometheus and Grafana files, and their check (``make
prod-check``); importable so the tests share its redis-server and certificate aids."""
