"""Section 1: data, architectures, training and classification."""
