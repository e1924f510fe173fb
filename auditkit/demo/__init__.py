"""The embedded default: synthetic history (and, later, the simulated rack and scripted users) that make the demo."""
