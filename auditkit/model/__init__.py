"""The event model: events, the filter language, recordings (asciicast) and export formats."""
