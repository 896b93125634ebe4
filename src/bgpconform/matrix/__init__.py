"""The version matrix: the suite on the lab for each supported Cilium release and BGP API."""
