"""Section 4: clusterings (t-SNE map, nearest neighbours)."""
