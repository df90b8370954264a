"""The JSON API of API.md. Shared plumbing (auth, parsing, validation, errors) lives here;
each resource has its own module of views."""
