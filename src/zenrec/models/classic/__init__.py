"""Classic recommenders: popularity, neighbourhood, linear autoencoder and factorisation models."""
