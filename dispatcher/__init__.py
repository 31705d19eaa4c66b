"""Notification dispatcher for the customer self-service portal."""
