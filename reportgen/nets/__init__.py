"""The model plumbing every section stands on: data, architectures, training, checkpoints, layers."""
