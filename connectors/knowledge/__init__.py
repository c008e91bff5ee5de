"""Knowledge connectors (issue 14): ServiceNow Knowledge, Confluence and ServiceDesk Plus solutions."""
