"""Monitoring connectors: Datadog, SolarWinds Orion, Zabbix (issue 13)."""
