"""Side-by-side benchmarks of Plinth against the tools it replaces (the anchors)."""
