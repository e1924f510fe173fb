"""The synthetic history: a realistic, seeded audit log of any size."""
