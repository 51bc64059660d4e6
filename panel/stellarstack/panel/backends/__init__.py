"""Where servers run, behind one interface (`base.ServerBackend`): Docker nodes (nodeproxy's
node API) and Kubernetes (the API server, the operator's runtime)."""
