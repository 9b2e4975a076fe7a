"""OpenAPI documents (LANGUAGE.md §3.1.6, §4.2): loading, the operation index, the
content-addressed cache, response and request validation, sample data and `reqon mock`.

Sits beside `reqon/http` at the bottom: imports `values` and `errors` only (and
`reqon/http` never), so the checker, the engine, the REPL and the mock server can all
use it. Fetching a URL document is the engine's job (through the HTTP client); this
package only ever sees its bytes.
"""
