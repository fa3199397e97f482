"""Serving: the FastAPI service, retrieval, request log and the load generator."""
