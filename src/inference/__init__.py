"""Face-level interface of served methods, and rebuilding a method from its checkpoint."""
