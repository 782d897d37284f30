"""Greenlet shells: one actor per link, listener, routing table, management endpoint."""
