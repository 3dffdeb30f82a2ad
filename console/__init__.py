"""The web console: server-rendered pages for every role over the same services as the API."""
