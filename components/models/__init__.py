"""Loading a base model (local folder or hub id) and knowing which one it is."""
