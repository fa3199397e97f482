"""One router per resource: recommendations, items, model, health, admin, demo page."""
