"""The data refinery: builders of AI-contaminated and synthetic-from-human data, and the
quality filters that synthetic data passes through (each with a reason code)."""
