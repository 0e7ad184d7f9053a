"""Undo by run: bring back what one sweep run disabled or deleted, planned and braked like the run itself."""
