"""The network observer: a vanflow collector, its REST API and metrics (docs/adr/0030, 0031).

Layered above ``protocol/``: it imports neither the actors nor the node.
"""
