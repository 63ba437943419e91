"""Dashboard analysis: screenshots to Groq's vision model, back as a report."""
