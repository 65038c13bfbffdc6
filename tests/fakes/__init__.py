"""In-memory fakes of the service ports (cosmicpython: fakes of our own ports, not mocks of SDKs)."""
