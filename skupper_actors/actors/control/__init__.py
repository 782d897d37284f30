"""Actors of the control plane: controller, grant server, management, memory."""
