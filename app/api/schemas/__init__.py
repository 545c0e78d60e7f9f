"""Request and response bodies (the wire shapes), with OpenAPI examples, one module per route
group; ``base`` holds what every request body shares.

Limits that are settings (sentences per request, characters, top_k, documents per upsert) are
checked by the services, so they stay configurable; shapes and types are checked here.
"""
