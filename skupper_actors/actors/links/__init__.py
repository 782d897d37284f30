"""Actors of inter-router links and routing."""
