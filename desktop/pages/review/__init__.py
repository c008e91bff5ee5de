"""The Review page: the queue, the ticket and its ranked runbooks side by side, decisions by key."""
