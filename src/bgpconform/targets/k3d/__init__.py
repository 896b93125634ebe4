"""The k3d target: k3s in Docker, a RouterOS CHR container and an outside client, for nightly CI."""
