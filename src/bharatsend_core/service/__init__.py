"""Use cases (send, dispatch, receipts, webhooks), each one transaction through the ports."""
