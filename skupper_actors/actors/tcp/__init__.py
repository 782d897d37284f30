"""Actors of the TCP adaptor."""
