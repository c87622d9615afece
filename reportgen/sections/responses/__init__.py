"""Section 3: activation responses."""
