"""Section 2: preferred inputs of every unit."""
