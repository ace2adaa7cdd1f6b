"""The HTTP API: resources, auth, admin routes, lists, errors, OpenAPI, hostile input, readiness."""
