"""The chaos harness: real HTTP load on a 2-node cluster while nodes and app instances fail."""
