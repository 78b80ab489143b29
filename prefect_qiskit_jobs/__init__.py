"""IBM Quantum jobs as first-class citizens of Prefect 3 flows."""
