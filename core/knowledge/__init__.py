"""Knowledge articles (issue 14): ServiceNow Knowledge, Confluence and ServiceDesk Plus solutions as clean
Markdown, stored beside tickets and runbooks, matched, cited in drafts and adopted as runbooks."""
