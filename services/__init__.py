"""Start, stop and check the local services (Label Studio, SeaweedFS) for development and tests."""
